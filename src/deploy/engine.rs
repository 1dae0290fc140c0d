//! The deploy engine: the one place where a deploy (and a wait, a scale, a continue, a
//! rollback) lives, written once against the controller seam ([`Controller`]).
//!
//! Entry points, one per operation, each returning a [`RunResult`] (one [`ServiceResult`]
//! per config):
//!
//!   deploy:   decide -> apply (the controller's ONE write) -> the run's watch -> verdict ->
//!             roll back (the controller's)
//!   wait:     follow the service's current deployment to a verdict
//!   scale:    set the desired count, then follow
//!   continue: answer the waiting PAUSE hook, then follow
//!   rollback: the controller undoes the service's current deployment, and follows it
//!
//! Deploy, wait, scale and continue follow every service in one watch ([`follow`]: one
//! poller per cluster, batched reads, joins as services are ready); a service whose call
//! fails keeps its error beside the others' results. Receives validated [`Local`]s and
//! connected clients; emits [`Event`]s for live progress; never prints. How an operation
//! ended is worded once, by the outcome table ([`crate::deploy::core::outcome`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::sync::watch as channel;
use tokio::time::Instant;

use super::controller::ecs::{self, RollbackJob, awaiting_hook_at, carry_out, ours_from};
use super::controller::for_live;
use super::controller::seam::{
    Controller, Current, Cx, Decision, DeployFlags, Follow, Local, RollbackOptions, Undo,
    service_not_found,
};
use super::core::outcome::{Outcome, RunOutcome, cause_of, conclude, conclude_undone};
use super::core::poll::Target;
use super::core::rollback::{RollbackPlan, WaitRollback};
use super::core::verdict::{Failure, FastFail, Ours, StoppedTask, TargetView, short_arn};
use super::event::{Emitter, Event};
use super::gate::{GateSetup, Gatekeeper, Until};
use super::local::timeout;
use super::observe::ClusterObservers;
use super::result::{Operation, RunResult, ServiceResult, stop_counts};
use super::task;
use super::watch::{Cadence, Feed, Finished, Joining, Journey, follow};
use crate::aws::{Clients, ServiceUpdate};
use crate::error::{Error, ErrorKind, Result};
use crate::release::{Action, Ended, OnFailure, Schedule, Step, Wave};

/// How long a cancelled run follows the rollback it requested before it exits.
pub(crate) const CANCEL_FOLLOW: Duration = Duration::from_secs(8);
/// The longest a failure's explanation (log tail, ECR, target group reads) may take.
pub(crate) const EXPLAIN_BUDGET: Duration = Duration::from_secs(20);
/// The least time a rollback gets, even when the deploy used up its deadline.
pub(crate) const MIN_ROLLBACK_TIME: Duration = Duration::from_secs(300);

/// What every operation shares: the clients, the event stream, cancellation, and the
/// run-wide settings from flags.
pub(crate) struct Engine<'a> {
    pub clients: &'a Clients,
    pub emitter: &'a Emitter,
    pub cancel: channel::Receiver<bool>,
    pub cadence: Cadence,
    /// `--timeout` (else each config's `timeout`, else 10 minutes).
    pub timeout: Option<Duration>,
    /// `--wait-rollback` (else each config's `rollout.wait_rollback`).
    pub wait_rollback: Option<WaitRollback>,
    /// Where `wait`, `scale` and `continue` stop following: done (the default) or the first
    /// PAUSE hook no gate answers (`--wait-until paused`).
    pub until: Until,
    /// PAUSE hooks this run answered (`continue`): the watch never stops at them.
    answered: std::sync::Mutex<Vec<String>>,
}

/// A release to deploy: its steps, the loaded configs they name, and its policy.
pub(crate) struct ReleaseRun<'a> {
    pub steps: &'a [Step],
    pub locals: &'a [Local],
    pub parallel: usize,
    pub on_failure: OnFailure,
}

/// A step's result in the making (one-off tasks, settles).
type StepFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = (usize, ServiceResult)> + 'a>>;

/// How a deploy step began.
enum Begun {
    /// Nothing to follow (no change, dry run, `--no-wait`): its result.
    Done(ServiceResult),
    /// A deployment to follow, its controller, and the result so far.
    Follow(ServiceResult, Follow, Arc<dyn Controller>),
}

/// A service in the run's watch: what concluding it needs.
struct Followed<'a> {
    /// Its place in the run's results.
    step: usize,
    local: &'a Local,
    /// Who rolls it back (deploy only).
    controller: Option<Arc<dyn Controller>>,
    ours: Ours,
    created: bool,
    /// The result's words for a success.
    success: String,
    result: ServiceResult,
    deadline: Instant,
    /// When the service's operation started.
    since: Instant,
}

/// How a step's result counts for the steps that wait for it.
fn ended_as(r: &ServiceResult) -> Ended {
    if r.outcome.is_success() {
        Ended::Succeeded
    } else {
        Ended::Failed
    }
}

/// A service's part of a wait, scale or continue before its watch: a result already, or a
/// deployment to follow.
enum Prepared {
    Done(ServiceResult),
    Follow(ServiceResult, Follow),
}

impl<'a> Engine<'a> {
    pub(crate) fn new(
        clients: &'a Clients,
        emitter: &'a Emitter,
        cancel: channel::Receiver<bool>,
    ) -> Self {
        Engine {
            clients,
            emitter,
            cancel,
            cadence: Cadence::default(),
            timeout: None,
            wait_rollback: None,
            until: Until::Done,
            answered: std::sync::Mutex::default(),
        }
    }

    /// The context every controller call receives.
    fn cx(&self) -> Cx<'_> {
        Cx {
            clients: self.clients,
            emitter: self.emitter,
            cancel: self.cancel.clone(),
            cadence: &self.cadence,
            wait_rollback: self.wait_rollback,
        }
    }

    fn deadline(&self, from: Instant, local: &Local) -> Instant {
        from + timeout(self.timeout, &local.config)
    }

    /// The live service (None when it does not exist) and the controller that deploys it.
    async fn live(
        &self,
        local: &Local,
    ) -> Result<(Option<crate::aws::types::ecs::Service>, Arc<dyn Controller>)> {
        let live = self
            .clients
            .describe_service(&local.config.cluster, local.service_name()?)
            .await?;
        let controller = for_live(local, live.as_ref());
        Ok((live, controller))
    }

    /// What a deploy of `local` would do (read-only, as `diff` shows it), by the controller
    /// of the service as it is live.
    pub(crate) async fn plan(&self, local: &Local, flags: &DeployFlags) -> Result<Decision> {
        let (live, controller) = self.live(local).await?;
        controller.decide(&self.cx(), local, live, flags).await
    }

    /// [`Engine::plan`], tried again while AWS answers with a transient error (throttled, or
    /// a server error) after the SDK's retries, and the deadline allows: deciding only reads,
    /// so another try is safe, and a run should not fail before its first write for what a
    /// few seconds cure. Waits 1, 2, 4, 8, 16, 16... s, with a warning each time; a cancel
    /// ends the wait.
    async fn decide_patiently(
        &self,
        local: &Local,
        flags: &DeployFlags,
        deadline: Instant,
    ) -> Result<(Decision, Arc<dyn Controller>)> {
        let mut wait = Duration::from_secs(1);
        let mut cancel = self.cancel.clone();
        loop {
            let tried = async {
                let (live, controller) = self.live(local).await?;
                let decision = controller.decide(&self.cx(), local, live, flags).await?;
                Ok::<_, Error>((decision, controller))
            };
            let err = match tried.await {
                Err(e) if e.kind == ErrorKind::AwsTransient => e,
                done => return done,
            };
            if Instant::now() + wait >= deadline || *cancel.borrow() {
                return Err(err);
            }
            self.emitter.emit(Event::Warning {
                message: format!(
                    "{}; reading again in {} s (nothing was changed yet)",
                    super::controller::seam::first_line(&err),
                    wait.as_secs()
                ),
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.changed() => return Err(err),
            }
            wait = (wait * 2).min(Duration::from_secs(16));
        }
    }

    /// `cortado deploy`: the release's steps as a pool ([`Schedule`]): a step starts as soon as
    /// the steps it waits for succeeded and fewer than `parallel` are in flight. A deploy step
    /// is decided and applied by its controller, then joins the one watch of the run
    /// ([`follow`]: one poller per cluster, batched reads); when the watch hands it back with
    /// its outcome it is settled (rolled back when it failed) while the others go on. One-off
    /// task steps run beside them. A failure skips its dependents and, under `stop` or
    /// `rollback-all`, everything not started; `rollback-all` then returns every service the
    /// run changed to the revision it ran before. One result per step, in step order.
    pub(crate) async fn deploy(
        &self,
        release: &ReleaseRun<'_>,
        flags: &DeployFlags,
    ) -> Result<RunResult> {
        let mut schedule = schedule_of(release)?;
        let (join, intake) = mpsc::unbounded_channel();
        let (out, finished) = mpsc::unbounded_channel();
        let mut observer = ClusterObservers::new(self.clients, &[]);
        let mut gatekeeper = Gatekeeper::new(self.clients, BTreeMap::new());
        let watching = follow(
            &mut observer,
            &mut gatekeeper,
            Feed { intake, out },
            &self.cadence,
            self.cancel.clone(),
            self.emitter,
        );
        let scheduling = self.schedule(release, flags, &mut schedule, join, finished);
        let ((), results) = tokio::join!(watching, scheduling);
        let mut services: Vec<ServiceResult> = results?.into_iter().flatten().collect();
        if release.on_failure == OnFailure::RollbackAll
            && let Some(failed) = services
                .iter()
                .find(|r| !r.outcome.is_success() && r.outcome != RunOutcome::Skipped)
        {
            let failed = failed.service.clone();
            self.roll_back_release(&mut services, release, &failed)
                .await;
        }
        Ok(RunResult::new(Operation::Deploy, services))
    }

    /// The scheduling half of [`Engine::deploy`]: starts what is ready, hands followed steps
    /// to the watch through `join`, settles each as the watch hands it back on `finished`.
    async fn schedule<'r>(
        &'r self,
        release: &'r ReleaseRun<'r>,
        flags: &'r DeployFlags,
        schedule: &mut Schedule<'_>,
        join: mpsc::UnboundedSender<Joining>,
        mut finished: mpsc::UnboundedReceiver<Finished>,
    ) -> Result<Vec<Option<ServiceResult>>> {
        let mut results: Vec<Option<ServiceResult>> = vec![None; release.steps.len()];
        // Followed deploy steps by service: what settling them needs.
        let mut followed: BTreeMap<String, Followed<'r>> = BTreeMap::new();
        // Settles and one-off tasks in progress, each ending in its step's result.
        let mut busy = FuturesUnordered::new();
        let mut first_error: Option<Error> = None;
        loop {
            // Start what is ready (a step that ends at once can make others ready).
            loop {
                let wave = if first_error.is_none() {
                    schedule.next_wave()
                } else {
                    Wave::default()
                };
                if wave.start.is_empty() && wave.skip.is_empty() {
                    break;
                }
                for (i, why) in wave.skip {
                    let step = &release.steps[i];
                    results[i] = Some(self.skipped(step, local_of(release, step)?, why));
                }
                for i in wave.start {
                    let started = self.start_step(release, i, flags, &join).await?;
                    match started {
                        Started::Ended(r, how) => {
                            schedule.ended(i, how);
                            results[i] = Some(*r);
                        }
                        Started::Failed(e) => {
                            // Nothing new starts; what is in flight is still followed.
                            schedule.ended(i, Ended::Failed);
                            first_error.get_or_insert(e);
                        }
                        Started::Busy(fut) => busy.push(fut),
                        Started::Followed(fw) => {
                            followed.insert(fw.result.service.clone(), *fw);
                        }
                    }
                }
            }
            if followed.is_empty() && busy.is_empty() {
                break;
            }
            tokio::select! {
                Some(f) = finished.recv() => {
                    if let Some(fw) = followed.remove(&f.service) {
                        let fut: StepFuture<'r> = Box::pin(async move {
                            (fw.step, self.conclude(fw, f, flags).await)
                        });
                        busy.push(fut);
                    }
                }
                Some((i, r)) = busy.next() => {
                    schedule.ended(i, ended_as(&r));
                    results[i] = Some(r);
                }
            }
        }
        // Nothing more joins: the watch ends.
        drop(join);
        match first_error {
            Some(e) => Err(e),
            None => Ok(results),
        }
    }

    /// Starts step `i` of the release: a one-off task (or its dry run), or a deploy step
    /// decided and applied, which joins the run's watch when there is a deployment to follow.
    async fn start_step<'r>(
        &'r self,
        release: &'r ReleaseRun<'r>,
        i: usize,
        flags: &'r DeployFlags,
        join: &mpsc::UnboundedSender<Joining>,
    ) -> Result<Started<'r>> {
        let step = &release.steps[i];
        let local = local_of(release, step)?;
        let since = Instant::now();
        let deadline = self.deadline(since, local);
        if *self.cancel.borrow() {
            let why = "not started: the run was cancelled".to_string();
            let mut r = self.skipped(step, local, why);
            r.outcome = RunOutcome::Cancelled;
            let how = Ended::Skipped(r.detail.clone());
            return Ok(Started::Ended(Box::new(r), how));
        }
        let r = match &step.action {
            Action::Run(_) if flags.dry_run => {
                let mut r =
                    ServiceResult::new(Operation::Deploy, &local.config.cluster, &step.name);
                r.outcome = RunOutcome::DryRun;
                r.detail = "dry run: the one-off task would run here".into();
                return Ok(Started::Ended(Box::new(r), Ended::Succeeded));
            }
            Action::Run(run) => {
                let cancel = self.cancel.clone();
                return Ok(Started::Busy(Box::pin(async move {
                    let step = (step, run);
                    let r = task::release_step(
                        self.clients,
                        self.emitter,
                        step,
                        local,
                        deadline,
                        cancel,
                    );
                    (i, r.await)
                })));
            }
            Action::Deploy => match self.begin(local, flags, deadline).await {
                Err(e) => return Ok(Started::Failed(e)),
                Ok(Begun::Done(r)) => r,
                Ok(Begun::Follow(r, follow, controller)) => {
                    let gates = follow.gates.then(|| GateSetup {
                        cluster: local.config.cluster.clone(),
                        gates: local.rollout.verify.clone(),
                        until: flags.until.clone(),
                        answered: Vec::new(),
                    });
                    let judged = (local.rollout.fast_fail.clone(), gates);
                    let fw = self.join(join, local, r, follow, judged, deadline, since, i);
                    return Ok(Started::Followed(Box::new(Followed {
                        controller: Some(controller),
                        ..fw
                    })));
                }
            },
        };
        let how = ended_as(&r);
        Ok(Started::Ended(Box::new(r), how))
    }

    /// Hands `follow` to the run's watch, judged by `rules` with `gates`; what concluding it
    /// will need.
    #[allow(clippy::too_many_arguments)]
    fn join<'l>(
        &self,
        join: &mpsc::UnboundedSender<Joining>,
        local: &'l Local,
        result: ServiceResult,
        follow: Follow,
        (rules, gates): (FastFail, Option<GateSetup>),
        deadline: Instant,
        since: Instant,
        step: usize,
    ) -> Followed<'l> {
        let service = result.service.clone();
        let Follow {
            ours,
            created,
            history,
            watcher,
            success,
            ..
        } = follow;
        let _ = join.send(Joining {
            target: Target {
                history,
                ..Target::deployed(&service, ours.clone())
            },
            watcher: Some(watcher),
            rules,
            gates,
            deadline,
        });
        Followed {
            step,
            local,
            controller: None,
            ours,
            created,
            success,
            result,
            deadline,
            since,
        }
    }

    /// A deploy step up to its one write: decided and applied by its controller, and either
    /// done (nothing to follow: no change, dry run, `--no-wait`) or a deployment to follow.
    async fn begin(&self, local: &Local, flags: &DeployFlags, deadline: Instant) -> Result<Begun> {
        let since = Instant::now();
        let service = local.service_name()?.to_string();
        let (decision, controller) = self.decide_patiently(local, flags, deadline).await?;
        self.emitter.emit(Event::Plan {
            service: service.clone(),
            cluster: local.config.cluster.clone(),
            register: decision.plan.new_revision,
            create_service: decision.plan.create_service,
            summary: decision.plan.summary(),
        });
        let mut r = ServiceResult::new(Operation::Deploy, &local.config.cluster, &service);
        r.previous_task_definition_arn = decision.previous_task_definition.clone();
        r.plan = Some(decision.plan.clone());
        if flags.dry_run {
            r.outcome = RunOutcome::DryRun;
            r.detail = "dry run: nothing was changed".into();
            return Ok(Begun::Done(r));
        }
        let cx = self.cx();
        match controller
            .apply(&cx, local, &decision, flags, &mut r)
            .await?
        {
            Some(follow) => Ok(Begun::Follow(r, follow, controller)),
            None => {
                r.duration = since.elapsed();
                Ok(Begun::Done(r))
            }
        }
    }

    /// A followed deploy step the watch handed back: its journey and stopped tasks recorded,
    /// then settled (rolled back by its controller when it failed).
    async fn conclude(&self, fw: Followed<'_>, f: Finished, flags: &DeployFlags) -> ServiceResult {
        let outcome = blame_gate(f.outcome, &f.journey);
        let mut result = fw.result;
        result.journey = (!f.journey.is_empty()).then_some(f.journey);
        result.stopped_tasks = stop_counts(&f.stopped, &fw.ours.deployment_id);
        if !matches!(
            outcome,
            Outcome::Succeeded | Outcome::Paused { .. } | Outcome::Cancelled { .. }
        ) {
            let lines = flags.log_lines.unwrap_or(super::explain::DEFAULT_LOG_LINES);
            self.explain_into(
                &mut result,
                fw.local,
                (&f.stopped, &f.unhealthy_targets),
                &fw.ours.deployment_id,
                lines,
            )
            .await;
        }
        let ended = outcome;
        let end = match (cause_of(&ended), &fw.controller) {
            (Some(cause), Some(controller)) => {
                let cancelled = cause == super::core::outcome::Cause::Cancelled;
                let until = if cancelled {
                    Instant::now() + CANCEL_FOLLOW
                } else {
                    Instant::now()
                        + fw.deadline
                            .saturating_duration_since(Instant::now())
                            .max(MIN_ROLLBACK_TIME)
                };
                let job = Undo {
                    local: fw.local,
                    cause: &cause,
                    ours: &fw.ours,
                    created: fw.created,
                    previous: result.previous_task_definition_arn.as_deref(),
                    rollback_enabled: fw.local.rollout.rollback && !flags.no_rollback,
                    waiting_hook: result
                        .journey
                        .as_ref()
                        .and_then(|j| j.waiting_hook.as_deref()),
                    deploy_until: &flags.until,
                    until,
                    cancelled,
                };
                Some(controller.roll_back(&self.cx(), job).await)
            }
            _ => None,
        };
        let (o, detail) = conclude(&ended, end.as_ref().map(|e| &e.0), &fw.success);
        result.outcome = o;
        result.detail = detail;
        result.rollback = end.and_then(|e| e.1);
        result.duration = fw.since.elapsed();
        result
    }

    /// Why our deployment's tasks failed (`explain`), into the result, each failure also as
    /// an event (the Actions annotation, the plain log line).
    async fn explain_into(
        &self,
        result: &mut ServiceResult,
        local: &Local,
        (stopped, targets): (&[StoppedTask], &[TargetView]),
        deployment: &str,
        log_lines: usize,
    ) {
        let explained = tokio::time::timeout(
            EXPLAIN_BUDGET,
            super::explain::explain(self.clients, local, stopped, deployment, targets, log_lines),
        )
        .await;
        result.failures = match explained {
            Ok(failures) => failures,
            Err(_) => {
                self.emitter.emit(Event::Warning {
                    message: format!(
                        "{}: the failed tasks could not be explained within {}s (AWS answered too slowly)",
                        result.service,
                        EXPLAIN_BUDGET.as_secs()
                    ),
                });
                Vec::new()
            }
        };
        for x in &result.failures {
            self.emitter.emit(Event::Explained {
                service: result.service.clone(),
                failure: x.heading(),
                diagnosis: x.diagnosis.as_ref().map(|d| d.summary.clone()),
                fix: x.diagnosis.as_ref().map(|d| d.fix.clone()),
                at: x.diagnosis.as_ref().and_then(|d| d.at.clone()),
            });
        }
    }

    /// The result of a step that never started.
    fn skipped(&self, step: &Step, local: &Local, why: String) -> ServiceResult {
        let name = match step.action {
            Action::Deploy => local
                .config
                .service
                .clone()
                .unwrap_or_else(|| step.name.clone()),
            Action::Run(_) => step.name.clone(),
        };
        let mut r = ServiceResult::new(Operation::Deploy, &local.config.cluster, &name);
        r.outcome = RunOutcome::Skipped;
        r.detail = why.clone();
        self.emitter.emit(Event::Warning {
            message: format!("{name}: {why}"),
        });
        r
    }

    /// `--on-failure rollback-all`: every service this run changed and that succeeded goes
    /// back to the task definition it ran before, all followed together (an UpdateService,
    /// as ECS does it).
    async fn roll_back_release(
        &self,
        services: &mut [ServiceResult],
        release: &ReleaseRun<'_>,
        failed: &str,
    ) {
        let wait_rollback = self.wait_rollback.unwrap_or_default();
        let mut undo = Vec::new();
        for (i, r) in services.iter().enumerate() {
            if r.outcome != RunOutcome::Succeeded || r.deployment_id.is_none() {
                continue;
            }
            let Some(local) = release.locals.iter().find(|l| {
                l.config.service.as_deref() == Some(r.service.as_str())
                    && l.config.cluster == r.cluster
            }) else {
                continue;
            };
            let ours = Ours {
                deployment_id: r.deployment_id.clone().unwrap_or_default(),
                service_deployment_arn: r.service_deployment_arn.clone(),
                task_definition_arn: r.task_definition_arn.clone().unwrap_or_default(),
            };
            let plan = undo_plan(r);
            let until =
                Instant::now() + timeout(self.timeout, &local.config).max(MIN_ROLLBACK_TIME);
            let previous = r.previous_task_definition_arn.clone();
            let cluster = local.config.cluster.clone();
            let service = r.service.clone();
            undo.push(async move {
                let cx = self.cx();
                let end = carry_out(
                    &cx,
                    RollbackJob {
                        cluster: &cluster,
                        service: &service,
                        failed: &ours,
                        previous: previous.as_deref(),
                        origin: None,
                        plan,
                        mode: wait_rollback,
                        until: Some(until),
                        cancelled: false,
                        history: Vec::new(),
                    },
                )
                .await;
                (i, end)
            });
        }
        for (i, (end, report)) in futures_util::future::join_all(undo).await {
            let r = &mut services[i];
            (r.outcome, r.detail) = conclude_undone(failed, &end);
            r.rollback = report;
        }
    }

    /// `cortado wait`: follows each service's current deployment to a verdict.
    pub(crate) async fn wait(&self, locals: &[Local]) -> Result<RunResult> {
        self.follow_each(locals, Operation::Wait, |local| {
            self.current(local, Operation::Wait)
        })
        .await
    }

    /// `cortado scale --tasks N`: sets the desired count and follows the deployment.
    /// `tasks` is checked by the command, before anything is loaded or called.
    pub(crate) async fn scale(
        &self,
        locals: &[Local],
        tasks: Option<i32>,
        no_wait: bool,
    ) -> Result<RunResult> {
        self.follow_each(locals, Operation::Scale, |local| {
            self.scaled(local, tasks, no_wait)
        })
        .await
    }

    /// `cortado continue`: answers the PAUSE hook the service's current deployment waits on
    /// with CONTINUE, then follows the deployment (its later gates included) to a verdict.
    /// (`continue --rollback` is `rollback`: it answers the hook with ROLLBACK.)
    pub(crate) async fn continue_deployment(
        &self,
        locals: &[Local],
        no_wait: bool,
    ) -> Result<RunResult> {
        self.follow_each(locals, Operation::Continue, |local| {
            self.continued(local, no_wait)
        })
        .await
    }

    /// Prepares each service (`prepare`), follows those with a deployment in one watch, and
    /// concludes each as the watch hands it back (cortado rolls nothing back here; a
    /// deployment ECS rolled back counts as rolled back). A service whose preparation fails
    /// keeps its error; the others' results stand.
    async fn follow_each<'l, F, Fut>(
        &self,
        locals: &'l [Local],
        operation: Operation,
        prepare: F,
    ) -> Result<RunResult>
    where
        F: Fn(&'l Local) -> Fut,
        Fut: std::future::Future<Output = Result<Prepared>>,
    {
        let (join, intake) = mpsc::unbounded_channel();
        let (out, mut finished) = mpsc::unbounded_channel();
        let mut observer = ClusterObservers::new(self.clients, &[]);
        let mut gatekeeper = Gatekeeper::new(self.clients, BTreeMap::new());
        let watching = follow(
            &mut observer,
            &mut gatekeeper,
            Feed { intake, out },
            &self.cadence,
            self.cancel.clone(),
            self.emitter,
        );
        let joining = async {
            let join = join;
            let mut results: Vec<Option<Result<ServiceResult>>> =
                (0..locals.len()).map(|_| None).collect();
            let mut followed: BTreeMap<String, Followed<'l>> = BTreeMap::new();
            for (i, local) in locals.iter().enumerate() {
                let since = Instant::now();
                let deadline = self.deadline(since, local);
                match prepare(local).await {
                    Err(e) => results[i] = Some(Err(e)),
                    Ok(Prepared::Done(mut r)) => {
                        r.duration = since.elapsed();
                        results[i] = Some(Ok(r));
                    }
                    Ok(Prepared::Follow(r, f)) => {
                        // The config's gates answer the hooks of the deployment followed.
                        let gates = f.gates.then(|| GateSetup {
                            cluster: local.config.cluster.clone(),
                            gates: local.rollout.verify.clone(),
                            until: self.until.clone(),
                            answered: self
                                .answered
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .clone(),
                        });
                        // No fast-fail: cortado follows what it did not start.
                        let rules = FastFail {
                            enabled: false,
                            ..FastFail::default()
                        };
                        let fw = self.join(&join, local, r, f, (rules, gates), deadline, since, i);
                        followed.insert(fw.result.service.clone(), fw);
                    }
                }
            }
            drop(join);
            while let Some(f) = finished.recv().await {
                if let Some(fw) = followed.remove(&f.service) {
                    let i = fw.step;
                    let (local, deployment) = (fw.local, fw.ours.deployment_id.clone());
                    let failed = !matches!(
                        f.outcome,
                        Outcome::Succeeded | Outcome::Paused { .. } | Outcome::Cancelled { .. }
                    );
                    let seen = failed.then(|| (f.stopped.clone(), f.unhealthy_targets.clone()));
                    let mut r = followed_result(fw, f);
                    // The definition is the config's: a revision the service runs that the
                    // config no longer renders is explained from the config's container facts.
                    if let Some((stopped, targets)) = seen {
                        let lines = super::explain::DEFAULT_LOG_LINES;
                        let seen = (stopped.as_slice(), targets.as_slice());
                        self.explain_into(&mut r, local, seen, &deployment, lines)
                            .await;
                    }
                    results[i] = Some(Ok(r));
                }
            }
            results
        };
        let (_, results) = tokio::join!(watching, joining);
        RunResult::gather(operation, results.into_iter().flatten().collect())
    }

    /// `wait` (and what `continue` follows): the live service's current deployment, as its
    /// controller finds it.
    async fn current(&self, local: &Local, operation: Operation) -> Result<Prepared> {
        let service = local.service_name()?.to_string();
        let cluster = local.config.cluster.clone();
        let svc = self
            .clients
            .describe_service(&cluster, &service)
            .await?
            .ok_or_else(|| service_not_found(&service, &cluster, self.clients.region()))?;
        let controller = for_live(local, Some(&svc));
        let mut r = ServiceResult::new(operation, &cluster, &service);
        match controller.current(&self.cx(), local, &svc).await? {
            Current::Settled {
                detail,
                task_definition_arn,
            } => {
                r.outcome = RunOutcome::Succeeded;
                r.detail = detail;
                r.task_definition_arn = Some(task_definition_arn);
                Ok(Prepared::Done(r))
            }
            Current::Follow(f) => Ok(Prepared::Follow(r, f)),
        }
    }

    /// `scale`: sets the desired count; what ECS then does is followed (unless `no_wait`):
    /// the PRIMARY deployment (ECS scales it; no deployment starts). Without a count
    /// (`scale --suspend-auto-scaling` alone), nothing is called.
    async fn scaled(&self, local: &Local, tasks: Option<i32>, no_wait: bool) -> Result<Prepared> {
        let service = local.service_name()?.to_string();
        let cluster = local.config.cluster.clone();
        let Some(tasks) = tasks else {
            let mut r = ServiceResult::new(Operation::Scale, &cluster, &service);
            r.outcome = RunOutcome::NoChange;
            r.detail = "desired count left as it is (no --tasks)".into();
            return Ok(Prepared::Done(r));
        };
        let svc = self
            .clients
            .update_service(&ServiceUpdate {
                cluster: cluster.clone(),
                service: service.clone(),
                desired_count: Some(tasks),
                ..ServiceUpdate::default()
            })
            .await?;
        let td = svc.task_definition().unwrap_or_default().to_string();
        if no_wait {
            let mut r = ServiceResult::new(Operation::Scale, &cluster, &service);
            r.outcome = RunOutcome::NotFollowed;
            r.detail = format!("desired count set to {tasks}, not followed (--no-wait)");
            r.task_definition_arn = Some(td);
            return Ok(Prepared::Done(r));
        }
        let (ours, history) = ecs::scaled(self.clients, &svc, &td).await?;
        let success = format!(
            "{tasks} task(s) running on {} (deployment {})",
            short_arn(&td),
            ours.deployment_id
        );
        let follow = Follow {
            ours,
            created: false,
            history,
            watcher: super::watch::Watcher::Cluster(cluster.clone()),
            gates: true,
            success,
        };
        Ok(Prepared::Follow(
            ServiceResult::new(Operation::Scale, &cluster, &service),
            follow,
        ))
    }

    /// `continue`: answers the waiting PAUSE hook with CONTINUE, then follows the current
    /// deployment.
    async fn continued(&self, local: &Local, no_wait: bool) -> Result<Prepared> {
        let service = local.service_name()?.to_string();
        let cluster = local.config.cluster.clone();
        let svc = self
            .clients
            .describe_service(&cluster, &service)
            .await?
            .ok_or_else(|| service_not_found(&service, &cluster, self.clients.region()))?;
        let td = svc.task_definition().unwrap_or_default().to_string();
        let ours = ours_from(&svc, &td)?;
        let Some(arn) = ours.service_deployment_arn.clone() else {
            return Err(Error::conflict(format!(
                "{service} has no current service deployment to continue"
            )));
        };
        let Some((hook, stage)) = awaiting_hook_at(self.clients, &arn).await? else {
            return Err(Error::conflict(format!(
                "the current deployment of {service} waits on no PAUSE hook: nothing to continue"
            ))
            .with_hint("`cortado status` shows the deployment and its lifecycle stage"));
        };
        self.clients
            .continue_service_deployment(&arn, Some(&hook), false)
            .await?;
        self.emitter.emit(Event::Hook {
            service: service.clone(),
            hook_id: hook.clone(),
            stage,
            target_type: "PAUSE".into(),
            status: "answered CONTINUE".into(),
        });
        self.answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook.clone());
        if no_wait {
            let mut r = ServiceResult::new(Operation::Continue, &cluster, &service);
            r.outcome = RunOutcome::NotFollowed;
            r.detail =
                format!("answered the PAUSE hook {hook} with CONTINUE, not followed (--no-wait)");
            r.task_definition_arn = Some(td);
            r.service_deployment_arn = Some(arn);
            return Ok(Prepared::Done(r));
        }
        Ok(match self.current(local, Operation::Continue).await? {
            Prepared::Done(mut r) => {
                r.detail = format!("continued; {}", r.detail);
                Prepared::Done(r)
            }
            Prepared::Follow(r, mut f) => {
                f.success = format!("continued; {}", f.success);
                Prepared::Follow(r, f)
            }
        })
    }

    /// `cortado rollback`: each service's controller undoes its current deployment (stops the
    /// deployment in flight, follows a rollback ECS carries out, or returns to the revision
    /// that last ran successfully before the running one) and follows it; every service at
    /// once, each keeping its own result or error.
    pub(crate) async fn rollback(
        &self,
        locals: &[Local],
        opts: RollbackOptions,
    ) -> Result<RunResult> {
        let each = locals.iter().map(|local| self.rollback_one(local, opts));
        let results = futures_util::future::join_all(each).await;
        RunResult::gather(Operation::Rollback, results)
    }

    async fn rollback_one(&self, local: &Local, opts: RollbackOptions) -> Result<ServiceResult> {
        let service = local.service_name()?.to_string();
        let cluster = local.config.cluster.clone();
        let started_at = Instant::now();
        let deadline = self.deadline(started_at, local);
        let svc = self
            .clients
            .describe_service(&cluster, &service)
            .await?
            .ok_or_else(|| service_not_found(&service, &cluster, self.clients.region()))?;
        let controller = for_live(local, Some(&svc));
        let mut r = controller
            .rollback(&self.cx(), local, &svc, opts, deadline)
            .await?;
        let current = svc.task_definition().unwrap_or_default().to_string();
        if opts.deregister && r.outcome == RunOutcome::DryRun {
            r.detail = format!(
                "{}; then deregister {}",
                r.detail,
                short_arn(svc.task_definition().unwrap_or_default())
            );
        }
        if opts.deregister && r.outcome == RunOutcome::Succeeded {
            self.clients.deregister_task_definition(&current).await?;
            self.emitter.emit(Event::Warning {
                message: format!(
                    "deregistered the rolled-back revision {}",
                    short_arn(&current)
                ),
            });
        }
        r.duration = started_at.elapsed();
        Ok(r)
    }
}

/// How a deploy step started ([`Engine::start_step`]).
enum Started<'r> {
    /// It ended at once, and how that counts for the steps after it.
    Ended(Box<ServiceResult>, Ended),
    /// It could not begin (an error before or at its write).
    Failed(Error),
    /// A one-off task in progress.
    Busy(StepFuture<'r>),
    /// In the run's watch.
    Followed(Box<Followed<'r>>),
}

/// The result of a service followed without a rollback (wait, scale, continue).
fn followed_result(fw: Followed<'_>, f: Finished) -> ServiceResult {
    let mut r = fw.result;
    let outcome = blame_gate(f.outcome, &f.journey);
    r.journey = (!f.journey.is_empty()).then_some(f.journey);
    (r.outcome, r.detail) = conclude(&outcome, None, &fw.success);
    r.stopped_tasks = stop_counts(&f.stopped, &fw.ours.deployment_id);
    r.task_definition_arn = Some(fw.ours.task_definition_arn);
    r.deployment_id = Some(fw.ours.deployment_id);
    r.service_deployment_arn = fw.ours.service_deployment_arn;
    r.duration = fw.since.elapsed();
    r
}

/// What `--on-failure rollback-all` does for a service that succeeded: back to the revision
/// it ran before, when there is one.
fn undo_plan(r: &ServiceResult) -> RollbackPlan {
    match r
        .previous_task_definition_arn
        .as_deref()
        .filter(|p| Some(*p) != r.task_definition_arn.as_deref())
    {
        Some(p) => RollbackPlan::UpdateToPrevious {
            task_definition_arn: p.to_string(),
        },
        None if r.previous_task_definition_arn.is_none() => RollbackPlan::Leave {
            why: "this deploy created the service, so there is no previous revision to return to",
        },
        None => RollbackPlan::Leave {
            why: "it runs the same task definition as before the release",
        },
    }
}

/// The loaded config a release step names.
fn local_of<'r>(release: &'r ReleaseRun<'r>, step: &Step) -> Result<&'r Local> {
    release
        .locals
        .iter()
        .find(|l| l.config.path == step.config)
        .ok_or_else(|| Error::internal(format!("no loaded config for {}", step.config.display())))
}

/// The release's schedule, once its deployed services are known to be unique.
fn schedule_of<'r>(release: &'r ReleaseRun<'r>) -> Result<Schedule<'r>> {
    let deployed: Vec<&Local> = release
        .steps
        .iter()
        .filter(|s| s.action == Action::Deploy)
        .map(|s| local_of(release, s))
        .collect::<Result<_>>()?;
    unique_services(&deployed)?;
    let names = release
        .steps
        .iter()
        .map(|s| {
            match (
                &s.action,
                local_of(release, s)
                    .ok()
                    .and_then(|l| l.config.service.clone()),
            ) {
                (Action::Deploy, Some(service)) => service,
                _ => s.name.clone(),
            }
        })
        .collect();
    Ok(Schedule::new(
        release.steps,
        names,
        release.parallel,
        release.on_failure,
    ))
}

/// One run follows services by name: two configs naming the same service (in different
/// clusters) must deploy in separate runs.
fn unique_services(locals: &[&Local]) -> Result<()> {
    let mut seen = std::collections::BTreeMap::new();
    for l in locals {
        let name = l.service_name()?;
        if let Some(other) = seen.insert(name.to_string(), l.config.path.clone()) {
            return Err(Error::bad_input(format!(
                "service {name} is named by both {} and {}",
                other.display(),
                l.config.path.display()
            ))
            .with_hint("deploy services with the same name in separate runs"));
        }
    }
    Ok(())
}

/// A rollback that answers a failed gate is the gate's doing: say so instead of "a rollback
/// request".
fn blame_gate(outcome: Outcome, journey: &Journey) -> Outcome {
    match (outcome, journey.gates.iter().rev().find(|g| !g.passed)) {
        (Outcome::Failed(Failure::RolledBack { reason, .. }), Some(g))
            if g.action == "ROLLBACK" =>
        {
            Outcome::Failed(Failure::RolledBack {
                by: format!("the verification gate at {} ({})", g.stage, g.detail),
                reason,
            })
        }
        (o, _) => o,
    }
}
