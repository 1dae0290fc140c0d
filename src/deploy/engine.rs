//! The deploy engine: the one place where a deploy (and a wait, a scale, a rollback) lives.
//!
//! Entry points, one per operation, each returning a [`RunResult`] (one [`ServiceResult`]
//! per config):
//!
//!   deploy:   decide -> apply (ONE Create/UpdateService) -> watch -> verdict -> roll back
//!   wait:     follow the service's current deployment to a verdict
//!   scale:    set the desired count, then wait
//!   rollback: stop the deployment in flight, or return to the revision before; follow
//!
//! Receives validated [`Local`]s and connected clients; emits [`Event`]s for live progress;
//! never prints. Rollback decisions are the pure [`rollback_plan`] and [`rollback_target`];
//! when a rollback is done is the pure [`super::core::rollback::judge_rollback`]; both run inside
//! the same budgeted watch as the deploy. How an operation ended is worded once, by the
//! outcome table ([`super::core::outcome`]).

use std::time::Duration;

use std::collections::BTreeMap;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::sync::watch as channel;
use tokio::time::Instant;

use super::apply::{self, DeployFlags, Started};
use super::core::outcome::{
    Cause, Outcome, RollbackEnd, RunOutcome, Serving, cause_of, conclude, conclude_rollback,
    conclude_undone, end_text, rollback_end,
};
use super::core::rollback::{
    RollbackFacts, RollbackPlan, WaitRollback, ecs_returns_to, rollback_plan, rollback_target,
};
use super::core::state::{DeploymentStatus, RolloutState, ServiceDeploymentStatus};
use super::core::verdict::{
    DeploymentView, Failure, FastFail, Ours, ServiceDeploymentView, StoppedTask, short_arn,
};
use super::event::{Emitter, Event};
use super::gate::{GateSetup, Gatekeeper, NoHooks, Until};
use super::local::{Local, OnCancel, timeout};
use super::observe::{AwsObserver, ClusterObservers, deployment_views};
use super::result::{Operation, RollbackReport, RunResult, ServiceResult, StopCount};
use super::watch::{Cadence, Feed, Finished, Goal, Joining, Journey, Target, follow, watch};
use crate::aws::{Clients, ServiceDeploymentStop, ServiceUpdate};
use crate::error::{Diagnostic, Error, ErrorKind, Result};
use crate::release::{Action, Ended, OnFailure, RunStep, Schedule, Step, Wave};

/// How long a cancelled run follows the rollback it requested before it exits.
pub(super) const CANCEL_FOLLOW: Duration = Duration::from_secs(8);
/// The least time a rollback gets, even when the deploy used up its deadline.
pub(super) const MIN_ROLLBACK_TIME: Duration = Duration::from_secs(300);

/// What every operation shares: the clients, the event stream, cancellation, and the
/// run-wide settings from flags.
pub struct Engine<'a> {
    pub clients: &'a Clients,
    pub emitter: &'a Emitter,
    pub cancel: channel::Receiver<bool>,
    pub cadence: Cadence,
    /// `--timeout` (else each config's `timeout`, else 10 minutes).
    pub timeout: Option<Duration>,
    /// `--wait-rollback` (else each config's `rollout.wait_rollback`).
    pub wait_rollback: Option<WaitRollback>,
}

/// A release to deploy: its steps, the loaded configs they name, and its policy.
pub struct ReleaseRun<'a> {
    pub steps: &'a [Step],
    pub locals: &'a [Local],
    pub parallel: usize,
    pub on_failure: OnFailure,
}

/// Runs the one-off task steps of a release (`cortado run`'s machinery, which prints the
/// task's logs as they come): one result per step, succeeded when the task exited 0.
pub trait OneOffTasks {
    fn run(
        &self,
        step: &Step,
        run: &RunStep,
        local: &Local,
        deadline: Instant,
        cancel: channel::Receiver<bool>,
    ) -> impl std::future::Future<Output = ServiceResult>;
}

/// A step's result in the making (one-off tasks, settles).
type StepFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = (usize, ServiceResult)> + 'a>>;

/// How a deploy step began.
enum Begun {
    /// Nothing to follow (no change, dry run, `--no-wait`): its result.
    Done(ServiceResult),
    /// A deployment to follow, and the result so far.
    Follow(ServiceResult, Started),
}

/// A deploy step in the watch: what settling it needs.
struct Followed<'a> {
    step: usize,
    local: &'a Local,
    started: Started,
    result: ServiceResult,
    deadline: Instant,
    /// When the step started.
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

/// Options of `rollback`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RollbackOptions {
    pub no_wait: bool,
    pub deregister: bool,
    /// `--revision N`: return to this revision of the family, whatever ECS's record says.
    pub revision: Option<i64>,
}

/// A rollback to carry out and follow ([`Engine::roll_back`]).
pub(super) struct RollbackJob<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    /// The deployment being undone.
    pub failed: &'a Ours,
    /// Where an UpdateService goes when the plan falls back to one.
    pub previous: Option<&'a str>,
    /// Why the target is what it is (which deployment of ECS's record vouches for it).
    pub origin: Option<String>,
    pub plan: RollbackPlan,
    pub mode: WaitRollback,
    /// None: the call is made and not followed (`rollback --no-wait`).
    pub until: Option<Instant>,
    /// A cancelled run's rollback: not cut short by the same cancellation.
    pub cancelled: bool,
    /// Service events known before the rollback began: not reported as its own.
    pub history: Vec<String>,
}

impl<'a> Engine<'a> {
    pub fn new(
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
        }
    }

    fn deadline(&self, from: Instant, local: &Local) -> Instant {
        from + timeout(self.timeout, &local.config)
    }

    fn wait_rollback_for(&self, local: &Local) -> WaitRollback {
        self.wait_rollback.unwrap_or(local.rollout.wait_rollback)
    }

    /// [`apply::decide`], tried again while AWS answers with a transient error (throttled, or a
    /// server error) after the SDK's retries, and the deadline allows:
    /// deciding only reads, so another try is safe, and a run should not fail before its first
    /// write for what a few seconds cure. Waits 1, 2, 4, 8, 16, 16... s, with a warning each
    /// time; a cancel ends the wait.
    async fn decide_patiently(
        &self,
        local: &Local,
        flags: &DeployFlags,
        deadline: Instant,
    ) -> Result<apply::Decision> {
        let mut wait = Duration::from_secs(1);
        let mut cancel = self.cancel.clone();
        loop {
            let err = match apply::decide(self.clients, local, flags).await {
                Err(e) if e.kind == ErrorKind::AwsTransient => e,
                done => return done,
            };
            if Instant::now() + wait >= deadline || *cancel.borrow() {
                return Err(err);
            }
            let why = err
                .diagnostics
                .first()
                .map_or_else(String::new, |d| d.message.clone());
            self.emitter.emit(Event::Warning {
                message: format!(
                    "{why}; reading again in {} s (nothing was changed yet)",
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
    /// is decided and applied, then joins the one watch of the run ([`follow`]: one poller per
    /// cluster, batched reads); when the watch hands it back with its outcome it is settled
    /// (rolled back when it failed) while the others go on. One-off task steps run beside them.
    /// A failure skips its dependents and, under `stop` or `rollback-all`, everything not
    /// started; `rollback-all` then returns every service the run changed to the revision it
    /// ran before. One result per step, in step order.
    pub async fn deploy<T: OneOffTasks>(
        &self,
        release: &ReleaseRun<'_>,
        flags: &DeployFlags,
        tasks: &T,
    ) -> Result<RunResult> {
        let local_of = |step: &Step| -> Result<&Local> {
            release
                .locals
                .iter()
                .find(|l| l.config.path == step.config)
                .ok_or_else(|| {
                    Error::internal(format!("no loaded config for {}", step.config.display()))
                })
        };
        let deployed: Vec<&Local> = release
            .steps
            .iter()
            .filter(|s| s.action == Action::Deploy)
            .map(local_of)
            .collect::<Result<_>>()?;
        unique_services(&deployed)?;
        let names = release
            .steps
            .iter()
            .map(|s| {
                match (
                    &s.action,
                    local_of(s).ok().and_then(|l| l.config.service.clone()),
                ) {
                    (Action::Deploy, Some(service)) => service,
                    _ => s.name.clone(),
                }
            })
            .collect();
        let mut schedule =
            Schedule::new(release.steps, names, release.parallel, release.on_failure);
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
        let scheduling = async {
            let join = join;
            let mut results: Vec<Option<ServiceResult>> = vec![None; release.steps.len()];
            // Followed deploy steps by service: what settling them needs.
            let mut followed: BTreeMap<String, Followed<'_>> = BTreeMap::new();
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
                        results[i] = Some(self.skipped(
                            &release.steps[i],
                            local_of(&release.steps[i])?,
                            why,
                        ));
                    }
                    for i in wave.start {
                        let step = &release.steps[i];
                        let local = local_of(step)?;
                        let deadline = self.deadline(Instant::now(), local);
                        if *self.cancel.borrow() {
                            let why = "not started: the run was cancelled".to_string();
                            let mut r = self.skipped(step, local, why);
                            r.outcome = RunOutcome::Cancelled;
                            schedule.ended(i, Ended::Skipped(r.detail.clone()));
                            results[i] = Some(r);
                            continue;
                        }
                        match &step.action {
                            Action::Run(_) if flags.dry_run => {
                                let mut r = ServiceResult::new(
                                    Operation::Deploy,
                                    &local.config.cluster,
                                    &step.name,
                                );
                                r.outcome = RunOutcome::DryRun;
                                r.detail = "dry run: the one-off task would run here".into();
                                schedule.ended(i, Ended::Succeeded);
                                results[i] = Some(r);
                            }
                            Action::Run(run) => {
                                let cancel = self.cancel.clone();
                                let fut: StepFuture<'_> = Box::pin(async move {
                                    (i, tasks.run(step, run, local, deadline, cancel).await)
                                });
                                busy.push(fut);
                            }
                            Action::Deploy => match self.begin(local, flags, deadline).await {
                                Err(e) => {
                                    // Nothing new starts; what is in flight is still followed.
                                    schedule.ended(i, Ended::Failed);
                                    first_error.get_or_insert(e);
                                }
                                Ok(Begun::Done(r)) => {
                                    schedule.ended(i, ended_as(&r));
                                    results[i] = Some(r);
                                }
                                Ok(Begun::Follow(r, started)) => {
                                    let service = r.service.clone();
                                    let _ = join.send(Joining {
                                        target: Target::deployed(&service, started.ours.clone()),
                                        cluster: local.config.cluster.clone(),
                                        rules: local.rollout.fast_fail.clone(),
                                        gates: Some(GateSetup {
                                            cluster: local.config.cluster.clone(),
                                            gates: local.rollout.verify.clone(),
                                            until: flags.until.clone(),
                                        }),
                                        deadline,
                                    });
                                    followed.insert(
                                        service,
                                        Followed {
                                            step: i,
                                            local,
                                            started,
                                            result: r,
                                            deadline,
                                            since: Instant::now(),
                                        },
                                    );
                                }
                            },
                        }
                    }
                }
                if followed.is_empty() && busy.is_empty() {
                    break;
                }
                tokio::select! {
                    Some(f) = finished.recv() => {
                        if let Some(fw) = followed.remove(&f.service) {
                            let fut: StepFuture<'_> = Box::pin(async move {
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
        };
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
        Ok(RunResult {
            operation: Operation::Deploy,
            services,
        })
    }

    /// A deploy step up to its one write: decided, applied, and either done (nothing to
    /// follow: no change, dry run, `--no-wait`) or a deployment to follow.
    async fn begin(&self, local: &Local, flags: &DeployFlags, deadline: Instant) -> Result<Begun> {
        let since = Instant::now();
        let service = local.service_name()?.to_string();
        let mut decision = self.decide_patiently(local, flags, deadline).await?;
        super::codedeploy::plan_rollout(self.clients, local, &mut decision).await;
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
        // CodeDeploy blue/green: its own deployment, followed and settled by its strategy
        // (while it runs, the steps already in the run's watch go on; no new step starts).
        if super::codedeploy::controls(&decision) {
            let r = self
                .deploy_by_codedeploy(local, &decision, flags, r, since, deadline)
                .await?;
            return Ok(Begun::Done(r));
        }
        let (td_arn, started) =
            apply::apply(self.clients, local, &decision, flags, self.emitter).await?;
        r.registered = decision.choice == apply::TaskChoice::Register;
        r.task_definition_arn = Some(td_arn);
        match started {
            None if flags.no_update_service => {
                r.outcome = RunOutcome::NotFollowed;
                r.detail = "registered only (--no-update-service)".into();
            }
            None => {
                r.outcome = RunOutcome::NoChange;
                r.detail = "nothing differs from what runs: no deployment started".into();
            }
            Some(started) => {
                r.deployment_id = Some(started.ours.deployment_id.clone());
                r.service_deployment_arn = started.ours.service_deployment_arn.clone();
                if !flags.no_wait {
                    return Ok(Begun::Follow(r, started));
                }
                r.outcome = RunOutcome::NotFollowed;
                r.detail = "deployment started (--no-wait)".into();
            }
        }
        r.duration = since.elapsed();
        Ok(Begun::Done(r))
    }

    /// A followed deploy step the watch handed back: its journey and stopped tasks recorded,
    /// then settled (rolled back when it failed).
    async fn conclude(&self, fw: Followed<'_>, f: Finished, flags: &DeployFlags) -> ServiceResult {
        let Followed {
            local,
            started,
            mut result,
            deadline,
            since,
            ..
        } = fw;
        let outcome = blame_gate(f.outcome, &f.journey);
        result.journey = (!f.journey.is_empty()).then_some(f.journey);
        result.stopped_tasks = stop_counts(&f.stopped, &started.ours.deployment_id);
        let facts = Settle {
            local,
            ours: &started.ours,
            created: started.created,
            previous: result.previous_task_definition_arn.clone(),
            rollback_enabled: local.rollout.rollback && !flags.no_rollback,
            waiting_hook: result.journey.as_ref().and_then(|j| j.waiting_hook.clone()),
        };
        let (o, detail, rollback) = self.settle(&facts, outcome, deadline).await;
        result.outcome = o;
        result.detail = detail;
        result.rollback = rollback;
        result.duration = since.elapsed();
        result
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
    /// back to the task definition it ran before, all followed together.
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
            let plan = match r
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
            };
            let until =
                Instant::now() + timeout(self.timeout, &local.config).max(MIN_ROLLBACK_TIME);
            let previous = r.previous_task_definition_arn.clone();
            let cluster = local.config.cluster.clone();
            let service = r.service.clone();
            undo.push(async move {
                let end = self
                    .roll_back(RollbackJob {
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
                    })
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

    /// Decides what a watch outcome means for one service, rolls back when the plan says so,
    /// and words the end through the outcome table ([`conclude`]).
    async fn settle(
        &self,
        f: &Settle<'_>,
        outcome: Outcome,
        deadline: Instant,
    ) -> (RunOutcome, String, Option<RollbackReport>) {
        let ended = outcome;
        let Some(cause) = cause_of(&ended) else {
            let (o, detail) = conclude(&ended, None, "deployment completed");
            return (o, detail, None);
        };
        let plan = rollback_plan(&RollbackFacts {
            cause: &cause,
            rollback_enabled: f.rollback_enabled,
            rollback_on_cancel: f.local.rollout.on_cancel == OnCancel::Rollback,
            created_service: f.created,
            previous: f.previous.as_deref(),
            ours: f.ours,
            waiting_hook: f.waiting_hook.as_deref(),
        });
        let (end, report) = match plan {
            RollbackPlan::Leave { why } => (RollbackEnd::NotPossible(why.to_string()), None),
            plan => {
                let cancelled = cause == Cause::Cancelled;
                let until = if cancelled {
                    Instant::now() + CANCEL_FOLLOW
                } else {
                    Instant::now()
                        + deadline
                            .saturating_duration_since(Instant::now())
                            .max(MIN_ROLLBACK_TIME)
                };
                self.roll_back(RollbackJob {
                    cluster: &f.local.config.cluster,
                    service: f.local.config.service.as_deref().unwrap_or_default(),
                    failed: f.ours,
                    previous: f.previous.as_deref(),
                    origin: None,
                    plan,
                    mode: self.wait_rollback_for(f.local),
                    until: Some(until),
                    cancelled,
                    history: Vec::new(),
                })
                .await
            }
        };
        let (o, detail) = conclude(&ended, Some(&end), "deployment completed");
        (o, detail, report)
    }

    /// Makes a plan's request: a waiting hook is answered ROLLBACK, an in-flight deployment
    /// stopped with ROLLBACK. When that fails (the deployment may have moved on meanwhile) the
    /// plan falls back to an UpdateService to `job.previous`, or to leaving it. Returns the plan
    /// that stands.
    async fn request_rollback(&self, job: &RollbackJob<'_>) -> RollbackPlan {
        let mut plan = job.plan.clone();
        if let RollbackPlan::AnswerHook {
            service_deployment_arn,
            hook_id,
        } = &plan
            && let Err(e) = self
                .clients
                .continue_service_deployment(service_deployment_arn, Some(hook_id), true)
                .await
        {
            self.emitter.emit(Event::Warning {
                message: format!(
                    "ContinueServiceDeployment ROLLBACK failed ({}); stopping the deployment \
                     with ROLLBACK instead",
                    first_line(&e)
                ),
            });
            plan = RollbackPlan::StopDeployment {
                service_deployment_arn: service_deployment_arn.clone(),
            };
        }
        let RollbackPlan::StopDeployment {
            service_deployment_arn,
        } = &plan
        else {
            return plan;
        };
        let Err(e) = self
            .clients
            .stop_service_deployment(service_deployment_arn, ServiceDeploymentStop::Rollback)
            .await
        else {
            return plan;
        };
        self.emitter.emit(Event::Warning {
            message: format!(
                "StopServiceDeployment failed ({}); updating to the previous revision instead",
                first_line(&e)
            ),
        });
        match job
            .previous
            .filter(|p| *p != job.failed.task_definition_arn)
        {
            Some(p) => RollbackPlan::UpdateToPrevious {
                task_definition_arn: p.to_string(),
            },
            None => RollbackPlan::Leave {
                why: "the rollback request failed and there is no previous revision",
            },
        }
    }

    /// Carries out a rollback plan and follows it (through the same budgeted watch) until the
    /// earlier revision serves as `job.mode` asks, it fails, or `job.until`. What it follows is
    /// a matter of identity: the deployment ECS undoes (judged by [`judge_rollback`]), or the
    /// deployment an UpdateService back to the earlier revision starts (judged like any
    /// deployment, so a broken target ends as soon as ECS rolls it back in turn).
    async fn roll_back(&self, job: RollbackJob<'_>) -> (RollbackEnd, Option<RollbackReport>) {
        let t0 = Instant::now();
        let service = job.service;
        let plan = self.request_rollback(&job).await;
        let method = match &plan {
            RollbackPlan::FollowEcs => "following the rollback ECS started",
            RollbackPlan::StopDeployment { .. } => "StopServiceDeployment ROLLBACK",
            RollbackPlan::AnswerHook { .. } => "ContinueServiceDeployment ROLLBACK",
            RollbackPlan::UpdateToPrevious { .. } => "UpdateService to the previous revision",
            RollbackPlan::Leave { why } => {
                self.emitter.emit(Event::Warning {
                    message: format!("cannot roll back {service}: {why}"),
                });
                return (RollbackEnd::NotPossible((*why).to_string()), None);
            }
        };
        let to = match &plan {
            RollbackPlan::UpdateToPrevious {
                task_definition_arn,
            } => Some(task_definition_arn.clone()),
            _ => job.previous.map(str::to_string),
        };
        self.emitter.emit(Event::RollbackStarted {
            service: service.to_string(),
            method: method.to_string(),
            to_task_definition: to.clone(),
            source: job.origin.clone(),
        });
        let report = |end: &RollbackEnd, serving: Option<&Serving>| RollbackReport {
            method: method.to_string(),
            to_task_definition_arn: to.clone(),
            source: job.origin.clone(),
            done: matches!(end, RollbackEnd::Done(_)),
            detail: end_text(end),
            deployment_id: serving.map(|s| s.deployment_id.clone()),
            seconds: t0.elapsed().as_secs_f64(),
        };
        let target = match &plan {
            RollbackPlan::UpdateToPrevious {
                task_definition_arn,
            } => match self
                .update_to(job.cluster, service, task_definition_arn)
                .await
            {
                Ok(ours) => Target {
                    service: service.to_string(),
                    ours,
                    goal: Goal::Restores(job.mode),
                    history: job.history.clone(),
                },
                Err(e) => {
                    let end =
                        RollbackEnd::Failed(format!("UpdateService failed: {}", first_line(&e)));
                    self.finished(service, &end);
                    return (end.clone(), Some(report(&end, None)));
                }
            },
            _ => Target {
                service: service.to_string(),
                ours: job.failed.clone(),
                goal: Goal::RolledBack(job.mode),
                history: job.history.clone(),
            },
        };
        let Some(until) = job.until else {
            let end = RollbackEnd::Started;
            return (end.clone(), Some(report(&end, None)));
        };
        // A cancelled run's rollback must not be cut short by the same cancellation: it is
        // followed with a receiver that stays quiet, bounded by `until`.
        let (_quiet_tx, quiet_rx) = channel::channel(false);
        let cancel = if job.cancelled {
            quiet_rx
        } else {
            self.cancel.clone()
        };
        let mut observer = AwsObserver::new(self.clients, job.cluster);
        let watched = watch(
            &mut observer,
            &mut NoHooks,
            vec![target],
            &FastFail::default().into(),
            &self.cadence,
            until,
            cancel,
            self.emitter,
        )
        .await;
        let serving = watched.serving.get(service);
        let end = match rollback_end(watched.outcome(service), serving) {
            RollbackEnd::Done(s) => RollbackEnd::Done(match &job.origin {
                Some(o) => format!("{s}; {o}"),
                None => s,
            }),
            e => e,
        };
        self.finished(service, &end);
        let r = report(&end, serving);
        (end, Some(r))
    }

    /// The UpdateService of a rollback to `task_definition_arn`: the handles of the deployment
    /// it starts.
    async fn update_to(
        &self,
        cluster: &str,
        service: &str,
        task_definition_arn: &str,
    ) -> Result<Ours> {
        let svc = self
            .clients
            .update_service(&ServiceUpdate {
                cluster: cluster.to_string(),
                service: service.to_string(),
                task_definition: Some(task_definition_arn.to_string()),
                ..ServiceUpdate::default()
            })
            .await?;
        apply::ours_from(&svc, task_definition_arn)
    }

    pub(super) fn finished(&self, service: &str, end: &RollbackEnd) {
        let (success, detail) = match end {
            RollbackEnd::Done(s) => (true, s.clone()),
            RollbackEnd::NotPossible(s) | RollbackEnd::Failed(s) | RollbackEnd::Unsettled(s) => {
                (false, s.clone())
            }
            RollbackEnd::Started => return,
        };
        self.emitter.emit(Event::RollbackFinished {
            service: service.to_string(),
            success,
            detail,
        });
    }

    /// `cortado wait`: follows each service's current PRIMARY deployment to a verdict.
    pub async fn wait(&self, locals: &[Local]) -> Result<RunResult> {
        let mut services = Vec::new();
        for local in locals {
            services.push(self.follow_current(local, None, Operation::Wait).await?);
        }
        Ok(RunResult {
            operation: Operation::Wait,
            services,
        })
    }

    /// `cortado scale --tasks N`: sets the desired count and follows the deployment.
    /// `tasks` is checked by the command, before anything is loaded or called.
    pub async fn scale(&self, locals: &[Local], tasks: i32) -> Result<RunResult> {
        let mut services = Vec::new();
        for local in locals {
            services.push(
                self.follow_current(local, Some(tasks), Operation::Scale)
                    .await?,
            );
        }
        Ok(RunResult {
            operation: Operation::Scale,
            services,
        })
    }

    async fn follow_current(
        &self,
        local: &Local,
        scale_to: Option<i32>,
        operation: Operation,
    ) -> Result<ServiceResult> {
        let service = local.service_name()?.to_string();
        let cluster = local.config.cluster.clone();
        let started_at = Instant::now();
        let deadline = self.deadline(started_at, local);
        let svc = match scale_to {
            Some(n) => {
                self.clients
                    .update_service(&ServiceUpdate {
                        cluster: cluster.clone(),
                        service: service.clone(),
                        desired_count: Some(n),
                        ..ServiceUpdate::default()
                    })
                    .await?
            }
            None => self
                .clients
                .describe_service(&cluster, &service)
                .await?
                .ok_or_else(|| service_not_found(&service, &cluster, self.clients.region()))?,
        };
        // `wait` on a CodeDeploy service follows its CodeDeploy deployment in flight.
        if scale_to.is_none() && super::codedeploy::controlled(&svc) {
            return self
                .wait_codedeploy(local, &svc, started_at, deadline)
                .await;
        }
        let td = svc.task_definition().unwrap_or_default().to_string();
        let (ours, history) = match operation {
            Operation::Scale => self.scaled(&svc, &td).await?,
            _ => (apply::ours_from(&svc, &td)?, Vec::new()),
        };
        let mut observer = AwsObserver::new(self.clients, &cluster);
        // The config's gates answer the hooks of the deployment followed here too.
        let mut gatekeeper = Gatekeeper::new(
            self.clients,
            [(
                service.clone(),
                GateSetup {
                    cluster: cluster.clone(),
                    gates: local.rollout.verify.clone(),
                    until: Until::Done,
                },
            )]
            .into(),
        );
        let mut watched = watch(
            &mut observer,
            &mut gatekeeper,
            vec![Target {
                history,
                ..Target::deployed(&service, ours.clone())
            }],
            &FastFail {
                enabled: false,
                ..FastFail::default()
            }
            .into(),
            &self.cadence,
            deadline,
            self.cancel.clone(),
            self.emitter,
        )
        .await;
        let mut r = ServiceResult::new(operation, &cluster, &service);
        let journey = watched.journeys.remove(&service).unwrap_or_default();
        let outcome = blame_gate(watched.outcome(&service), &journey);
        r.journey = (!journey.is_empty()).then_some(journey);
        let success = match scale_to {
            Some(n) => format!(
                "{n} task(s) running on {} (deployment {})",
                short_arn(&td),
                ours.deployment_id
            ),
            None => "steady on the current deployment".to_string(),
        };
        // cortado rolls nothing back here; a deployment ECS rolled back counts as rolled back.
        (r.outcome, r.detail) = conclude(&outcome, None, &success);
        r.stopped_tasks = stop_counts(
            watched.stopped.get(&service).map_or(&[][..], |v| v),
            &ours.deployment_id,
        );
        r.task_definition_arn = Some(td);
        r.deployment_id = Some(ours.deployment_id);
        r.service_deployment_arn = ours.service_deployment_arn;
        r.duration = started_at.elapsed();
        Ok(r)
    }

    /// What a scale follows: the PRIMARY deployment (ECS scales it; no deployment starts), and
    /// the current service deployment only while it is in flight — one that ended before the
    /// scale (say, one ECS rolled back) never decides its verdict, and neither do the events
    /// before it (returned as history).
    async fn scaled(
        &self,
        svc: &crate::aws::types::ecs::Service,
        td: &str,
    ) -> Result<(Ours, Vec<String>)> {
        let mut ours = apply::ours_from(svc, td)?;
        if let Some(arn) = ours.service_deployment_arn.clone()
            && !self
                .service_deployment(&arn)
                .await?
                .is_some_and(|v| in_flight(&v.status))
        {
            ours.service_deployment_arn = None;
        }
        Ok((ours, event_ids(svc)))
    }

    /// A service deployment as DescribeServiceDeployments shows it (None when ECS does not
    /// know it).
    async fn service_deployment(&self, arn: &str) -> Result<Option<ServiceDeploymentView>> {
        Ok(self
            .clients
            .describe_service_deployments(&[arn.to_string()])
            .await?
            .iter()
            .map(super::observe::service_deployment_view)
            .next())
    }

    /// The PAUSE hook a service deployment waits on, and the hook stage it waits at.
    async fn awaiting_hook_at(
        &self,
        service_deployment_arn: &str,
    ) -> Result<Option<(String, String)>> {
        Ok(self
            .service_deployment(service_deployment_arn)
            .await?
            .and_then(|v| {
                v.awaiting().map(|h| {
                    (
                        h.hook_id.clone(),
                        super::gate::hook_stage(&v.lifecycle_stage).to_string(),
                    )
                })
            }))
    }

    /// `cortado continue`: answers the PAUSE hook the service's current deployment waits on
    /// with CONTINUE, then follows the deployment (its later gates included) to a verdict.
    /// (`continue --rollback` is `rollback`: it answers the hook with ROLLBACK.)
    pub async fn continue_deployment(&self, locals: &[Local]) -> Result<RunResult> {
        let mut services = Vec::new();
        for local in locals {
            let service = local.service_name()?.to_string();
            let cluster = local.config.cluster.clone();
            let svc = self
                .clients
                .describe_service(&cluster, &service)
                .await?
                .ok_or_else(|| service_not_found(&service, &cluster, self.clients.region()))?;
            let td = svc.task_definition().unwrap_or_default().to_string();
            let ours = apply::ours_from(&svc, &td)?;
            let Some(arn) = ours.service_deployment_arn.clone() else {
                return Err(Error::conflict(format!(
                    "{service} has no current service deployment to continue"
                )));
            };
            let Some((hook, stage)) = self.awaiting_hook_at(&arn).await? else {
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
            let mut r = self
                .follow_current(local, None, Operation::Continue)
                .await?;
            r.detail = format!("continued; {}", r.detail);
            services.push(r);
        }
        Ok(RunResult {
            operation: Operation::Continue,
            services,
        })
    }

    /// `cortado rollback`: stops the deployment in flight (ECS returns to the source
    /// revision), follows a rollback ECS carries out, or updates the service to the revision
    /// that last ran successfully before the running one (`decide_rollback`).
    pub async fn rollback(&self, locals: &[Local], opts: RollbackOptions) -> Result<RunResult> {
        let mut services = Vec::new();
        for local in locals {
            services.push(self.rollback_one(local, opts).await?);
        }
        Ok(RunResult {
            operation: Operation::Rollback,
            services,
        })
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
        // CodeDeploy blue/green: its deployments are CodeDeploy's to stop or to make.
        if super::codedeploy::controlled(&svc) {
            return self
                .rollback_by_codedeploy(local, &svc, opts, started_at, deadline)
                .await;
        }
        let current = svc.task_definition().unwrap_or_default().to_string();
        let ours = apply::ours_from(&svc, &current)?;
        let decided = self
            .decide_rollback(&cluster, &service, &svc, &ours, opts.revision)
            .await?;
        let mut r = ServiceResult::new(Operation::Rollback, &cluster, &service);
        r.previous_task_definition_arn = Some(current.clone());
        r.task_definition_arn = decided.previous.clone();
        r.deployment_id = Some(ours.deployment_id.clone());
        r.service_deployment_arn = ours.service_deployment_arn.clone();
        let (end, report) = self
            .roll_back(RollbackJob {
                cluster: &cluster,
                service: &service,
                failed: &decided.failed,
                previous: decided.previous.as_deref(),
                origin: decided.origin,
                plan: decided.plan,
                mode: self.wait_rollback_for(local),
                until: (!opts.no_wait).then_some(deadline),
                cancelled: false,
                history: event_ids(&svc),
            })
            .await;
        // The summary names the deployment that serves at the end, whichever it is.
        if let Some(id) = report.as_ref().and_then(|r| r.deployment_id.clone()) {
            r.deployment_id = Some(id);
        }
        r.rollback = report;
        (r.outcome, r.detail) = conclude_rollback(&end);
        if opts.deregister && matches!(end, RollbackEnd::Done(_)) {
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

    /// What `cortado rollback` does, by the identity of the service's current deployment:
    /// `--revision N` goes there; a rollback ECS is carrying out is followed; a deployment in
    /// flight is stopped with ROLLBACK (its waiting PAUSE hook answered ROLLBACK), ECS then
    /// returning to what last succeeded; otherwise an UpdateService to the revision that last
    /// ran successfully before the current one, from ECS's record ([`rollback_target`]).
    async fn decide_rollback(
        &self,
        cluster: &str,
        service: &str,
        svc: &crate::aws::types::ecs::Service,
        ours: &Ours,
        revision: Option<i64>,
    ) -> Result<Decided> {
        let current = &ours.task_definition_arn;
        if let Some(n) = revision {
            let family = crate::aws::ecs::arn_family(current).unwrap_or_default();
            let (td, _) = self
                .clients
                .describe_task_definition(&format!("{family}:{n}"))
                .await?;
            let arn = td.task_definition_arn().unwrap_or_default().to_string();
            if short_arn(&arn) == short_arn(current) {
                return Err(Error::conflict(format!(
                    "{service} already runs {}",
                    short_arn(current)
                )));
            }
            return Ok(Decided::update(
                ours,
                arn,
                format!("asked for with --revision {n}"),
            ));
        }
        let sd = match &ours.service_deployment_arn {
            Some(arn) => self.service_deployment(arn).await?,
            None => None,
        };
        let records = super::observe::deployment_record(self.clients, cluster, service).await?;
        let deployments = deployment_views(svc);
        match sd.as_ref() {
            Some(v)
                if matches!(
                    v.status,
                    ServiceDeploymentStatus::RollbackRequested
                        | ServiceDeploymentStatus::RollbackInProgress
                ) =>
            {
                if let Some(d) = follow_ecs(&deployments, ours) {
                    return Ok(d);
                }
            }
            Some(v) if in_flight(&v.status) => return Ok(stop_in_flight(ours, v, &records)),
            _ => {}
        }
        // No service-deployment API: a PRIMARY in progress beside another is in flight.
        if sd.is_none()
            && let Some(other) = deployments.iter().find(|d| {
                d.status != DeploymentStatus::Primary && d.task_definition_arn != *current
            })
            && deployments.iter().any(|d| {
                d.status == DeploymentStatus::Primary && d.rollout_state == RolloutState::InProgress
            })
        {
            let to = other.task_definition_arn.clone();
            return Ok(Decided::update(
                ours,
                to,
                format!("deployment {} ran it", other.id),
            ));
        }
        match rollback_target(&records, current) {
            Some(t) => Ok(Decided::update(ours, t.task_definition_arn.clone(), t.origin())),
            None => Err(Error::conflict(format!(
                "{service} runs {}, and ECS's record of its deployments names no earlier revision \
                 that served",
                short_arn(current)
            ))
            .with_hint(
                "`cortado rollback --revision N` returns to a revision you choose; `cortado history` lists the deployments",
            )),
        }
    }
}

/// ECS is rolling back already: follow it. What it undoes is the newest FAILED deployment
/// beside the PRIMARY (ECS made the earlier one PRIMARY again); None when that one has left.
fn follow_ecs(deployments: &[DeploymentView], ours: &Ours) -> Option<Decided> {
    let f = deployments
        .iter()
        .filter(|d| {
            d.status != DeploymentStatus::Primary && d.rollout_state == RolloutState::Failed
        })
        .max_by(|a, b| {
            a.created_at
                .unwrap_or(0.0)
                .total_cmp(&b.created_at.unwrap_or(0.0))
        })?;
    Some(Decided {
        plan: RollbackPlan::FollowEcs,
        failed: Ours {
            deployment_id: f.id.clone(),
            service_deployment_arn: ours.service_deployment_arn.clone(),
            task_definition_arn: f.task_definition_arn.clone(),
        },
        previous: Some(ours.task_definition_arn.clone()),
        origin: Some(format!("ECS is rolling back deployment {} already", f.id)),
    })
}

/// A deployment in flight: its waiting PAUSE hook answered ROLLBACK, else the deployment
/// stopped with ROLLBACK; ECS then returns to what last succeeded before it.
fn stop_in_flight(
    ours: &Ours,
    sd: &ServiceDeploymentView,
    records: &[super::core::rollback::DeploymentRecord],
) -> Decided {
    let arn = sd.arn.clone();
    let back = ecs_returns_to(records, &arn);
    let plan = match sd.awaiting() {
        Some(h) => RollbackPlan::AnswerHook {
            service_deployment_arn: arn,
            hook_id: h.hook_id.clone(),
        },
        None => RollbackPlan::StopDeployment {
            service_deployment_arn: arn,
        },
    };
    Decided {
        plan,
        failed: ours.clone(),
        previous: back.as_ref().map(|t| t.task_definition_arn.clone()),
        origin: back.map(|t| {
            format!(
                "ECS returns to {}, {}",
                short_arn(&t.task_definition_arn),
                t.origin()
            )
        }),
    }
}

/// A rollback `cortado rollback` decided on.
struct Decided {
    plan: RollbackPlan,
    /// The deployment being undone.
    failed: Ours,
    /// The task definition it returns to, when known.
    previous: Option<String>,
    /// Why that one (which deployment of ECS's record vouches for it).
    origin: Option<String>,
}

impl Decided {
    /// An UpdateService to `to`, because of `origin`.
    fn update(ours: &Ours, to: String, origin: String) -> Self {
        Decided {
            plan: RollbackPlan::UpdateToPrevious {
                task_definition_arn: to.clone(),
            },
            failed: ours.clone(),
            origin: Some(format!("{}: {origin}", short_arn(&to))),
            previous: Some(to),
        }
    }
}

/// Whether a service deployment is still going (it may yet succeed or fail).
fn in_flight(status: &ServiceDeploymentStatus) -> bool {
    matches!(
        status,
        ServiceDeploymentStatus::Pending | ServiceDeploymentStatus::InProgress
    )
}

/// The ids of the service's events: history for an operation that begins now.
fn event_ids(svc: &crate::aws::types::ecs::Service) -> Vec<String> {
    svc.events()
        .iter()
        .filter_map(|e| e.id().map(str::to_string))
        .collect()
}

/// The facts `settle` needs about one followed deployment.
struct Settle<'a> {
    local: &'a Local,
    ours: &'a Ours,
    created: bool,
    previous: Option<String>,
    rollback_enabled: bool,
    /// The PAUSE hook our deployment was left waiting on (a cancel during a gate).
    waiting_hook: Option<String>,
}

/// The stop reasons of our deployment's failed tasks ([`super::core::verdict::task_failed`]), most
/// frequent first. Tasks ECS stopped as surplus ("Scaling activity initiated by ...") or
/// replaced did not fail and are not counted.
pub(super) fn stop_counts(stopped: &[StoppedTask], deployment: &str) -> Vec<StopCount> {
    let mut counts: Vec<StopCount> = Vec::new();
    for t in stopped {
        if t.started_by.as_deref() != Some(deployment) || !super::core::verdict::task_failed(t) {
            continue;
        }
        let reason = t
            .stopped_reason
            .clone()
            .or_else(|| t.containers.iter().find_map(|c| c.1.clone()))
            .unwrap_or_else(|| "no reason given".into());
        match counts.iter_mut().find(|c| c.reason == reason) {
            Some(c) => c.count += 1,
            None => counts.push(StopCount {
                reason: reason.into(),
                count: 1,
            }),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.count));
    counts
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

/// The service a command needs does not exist: an AWS-side condition (exit 7), like a
/// missing cluster.
pub fn service_not_found(service: &str, cluster: &str, region: &str) -> Error {
    Error::new(
        ErrorKind::Aws,
        Diagnostic::error(format!(
            "service {service} not found in cluster {cluster} (region {region})"
        ))
        .hint(
            "deploy it first (cortado deploy), or check cluster, service and region in the config",
        ),
    )
}

fn first_line(e: &Error) -> String {
    e.diagnostics
        .first()
        .map(|d| d.message.clone())
        .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_counts_skip_other_deployments_and_scale_in() {
        let t = |by: &str, reason: &str| StoppedTask {
            task_arn: format!("{by}{reason}"),
            started_by: Some(by.into()),
            stopped_reason: Some(reason.into()),
            ..StoppedTask::default()
        };
        let tasks = vec![
            t("ecs-svc/2", "Essential container in task exited"),
            StoppedTask {
                task_arn: "b".into(),
                ..t("ecs-svc/2", "Essential container in task exited")
            },
            t(
                "ecs-svc/2",
                "Scaling activity initiated by (deployment ecs-svc/2)",
            ),
            StoppedTask {
                stop_code: Some("ServiceSchedulerInitiated".into()),
                ..t("ecs-svc/2", "Task replaced by deployment ecs-svc/3")
            },
            StoppedTask {
                stop_code: Some("TaskFailedToStart".into()),
                ..t("ecs-svc/2", "Timeout waiting for network interface")
            },
            t("ecs-svc/1", "CannotPullContainerError"),
            t("ecs-svc/2", "CannotPullContainerError"),
        ];
        let c = stop_counts(&tasks, "ecs-svc/2");
        assert_eq!(
            c,
            vec![
                StopCount {
                    reason: "Essential container in task exited".into(),
                    count: 2
                },
                StopCount {
                    reason: "Timeout waiting for network interface".into(),
                    count: 1
                },
                StopCount {
                    reason: "CannotPullContainerError".into(),
                    count: 1
                },
            ]
        );
    }
}
