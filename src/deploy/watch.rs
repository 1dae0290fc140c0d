//! The watcher: follows the deployments we started until each has a verdict.
//!
//! Receives the deployments to follow (one per service, all in one cluster: one watcher per
//! cluster serves every service of the run) and an [`Observer`] that turns one poll into
//! [`Snapshot`]s (the AWS-backed observer batches DescribeServices 10 at a time). Emits
//! progress, ECS service events (each once), stopped tasks and target health as [`Event`]s,
//! and hands on one [`Outcome`] per service. Every wait has a deadline and can be cancelled.
//!
//! Cadence adapts: a quick poll while something changes or a verdict is near, slower while
//! nothing moves, so that a verdict lands about a second after ECS decides while the API
//! budget stays small.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use serde::Serialize;

use futures_util::future::BoxFuture;

use super::core::outcome::{Outcome, Serving};
use super::core::poll::{Goal, Observation, Target};
use super::core::rollback::{judge_restored, judge_rollback};
use super::core::state::{DeploymentStatus, RolloutState, TargetState};
use super::core::verdict::{FastFail, Ours, Snapshot, StoppedTask, TargetView, Verdict, judge};
use super::event::{Emitter, Event};
use super::gate::{GateReport, GateSetup, Hooks, Tended};
use crate::error::Result;

/// One poll of the services a watch follows. Implementations batch API calls across them.
pub(crate) trait Observer {
    fn observe(
        &mut self,
        services: &[(String, Ours)],
    ) -> impl std::future::Future<Output = Result<Vec<Observation>>> + Send;

    /// API calls made so far (for the call budget); scripted observers make none.
    fn calls(&self) -> usize {
        0
    }

    /// A service joins a running watch (a release's next step) with what polls it;
    /// observers that know their services already need nothing.
    fn join(&mut self, _service: &str, _watcher: Watcher) {}

    /// The verdict on `target` from what the last poll saw of it. ECS's rules by default
    /// ([`judge_target`]); a controller whose deployments ECS does not judge answers here.
    fn judge(
        &self,
        target: &Target,
        snap: &Snapshot,
        rules: &FastFail,
        unhealthy_for: Duration,
    ) -> Verdict {
        judge_target(target, snap, rules, unhealthy_for)
    }
}

/// ECS's verdict on a target, by what the watch waits for.
pub(crate) fn judge_target(
    target: &Target,
    snap: &Snapshot,
    rules: &FastFail,
    unhealthy_for: Duration,
) -> Verdict {
    match target.goal {
        Goal::Deployed => judge(&target.ours, snap, rules, unhealthy_for),
        Goal::RolledBack(mode) => judge_rollback(&target.ours, snap, mode),
        Goal::Restores(mode) => judge_restored(&target.ours, snap, rules, unhealthy_for, mode),
    }
}

/// One deployment's own poller, for a controller whose deployments are not read from
/// DescribeServices batches (CodeDeploy). Boxed: the watch holds pollers of any controller.
pub trait ServiceObserver: Send {
    /// One poll of the deployment `ours`.
    fn observe<'a>(&'a mut self, ours: &'a Ours) -> BoxFuture<'a, Result<Observation>>;

    /// The verdict on `target` from the last poll ([`Observer::judge`]).
    fn judge(
        &self,
        target: &Target,
        snap: &Snapshot,
        rules: &FastFail,
        unhealthy_for: Duration,
    ) -> Verdict;

    /// API calls its polls made.
    fn calls(&self) -> usize;
}

/// What polls a service that joins a watch.
pub enum Watcher {
    /// The cluster's DescribeServices batches (ECS's own deployments).
    Cluster(String),
    /// A poller of its own.
    Own(Box<dyn ServiceObserver>),
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Watcher::Cluster(c) => write!(f, "Cluster({c})"),
            Watcher::Own(_) => f.write_str("Own"),
        }
    }
}

/// The run's API call budget for following deployments: at most [`CALLS_PER_SERVICE_MINUTE`]
/// calls per service-minute on average, with a small burst, and never more than
/// [`RUN_CALLS_PER_MINUTE`] for the whole run however many services it follows. A token
/// bucket: polls spend what they used, and the next poll waits until the bucket is positive
/// again. Pure (time is passed in).
///
/// Beneath it, every request also waits for its action category's token
/// ([`crate::aws::pace`]), so this budget decides how often a run polls, and the pacer that
/// no burst of the run exceeds what the account's buckets allow.
#[derive(Debug, Clone)]
pub(crate) struct CallBudget {
    tokens: f64,
    at: Instant,
    spent: usize,
}

/// The call budget per followed service and minute, in every phase (watch, rollback, wait).
pub(crate) const CALLS_PER_SERVICE_MINUTE: f64 = 60.0;
/// Calls a poll may spend beyond the average: the first full polls of a deployment (task
/// lookups, target health of a blue/green pair of groups, listener rules) and a gate's
/// answer must not wait for the bucket to refill.
const BURST_CALLS: f64 = 16.0;
/// The whole run's polling budget: 10 calls a second, half the sustained rate of ECS's read
/// buckets (DescribeServices, DescribeServiceDeployments, ListTasks/DescribeTasks: 20 a second
/// each), so that other jobs of the account keep room. A full poll of 200 services costs about
/// 30 calls (DescribeServices 10 at a time, DescribeServiceDeployments 20 at a time): one every
/// 3 s at this rate.
pub(crate) const RUN_CALLS_PER_MINUTE: f64 = 600.0;
/// The whole run's burst.
const RUN_BURST_CALLS: f64 = 100.0;

/// Calls a second and burst for `services` followed services.
fn budget_of(services: usize) -> (f64, f64) {
    let k = services.max(1) as f64;
    (
        (CALLS_PER_SERVICE_MINUTE * k).min(RUN_CALLS_PER_MINUTE) / 60.0,
        (BURST_CALLS * k).min(RUN_BURST_CALLS),
    )
}

impl CallBudget {
    /// A full bucket for `services` services; `calls_so_far` (the running total of calls
    /// made before, e.g. by decide and apply) are not charged.
    pub(crate) fn new(now: Instant, services: usize, calls_so_far: usize) -> Self {
        CallBudget {
            tokens: budget_of(services).1,
            at: now,
            spent: calls_so_far,
        }
    }

    /// Records that `calls_so_far` calls have been made in all (a running total).
    pub(crate) fn spend(&mut self, calls_so_far: usize) {
        self.tokens -= calls_so_far.saturating_sub(self.spent) as f64;
        self.spent = calls_so_far.max(self.spent);
    }

    /// A service joins the watch: it brings the burst a watch of its own would start with
    /// (bounded by the run's), so its first polls are not held back by what the services
    /// already followed have spent.
    pub(crate) fn admit(&mut self, services: usize, now: Instant) {
        let (rate, burst) = budget_of(services);
        self.tokens = (self.tokens + (now - self.at).as_secs_f64() * rate).min(burst);
        self.at = now;
        self.tokens = (self.tokens + BURST_CALLS).min(burst);
    }

    /// How long to wait before the next poll, following `services` services, at `now`.
    pub(crate) fn wait(&mut self, services: usize, now: Instant) -> Duration {
        let (rate, burst) = budget_of(services);
        self.tokens = (self.tokens + (now - self.at).as_secs_f64() * rate).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / rate)
        }
    }
}

/// How the watcher polls.
#[derive(Debug, Clone)]
pub struct Cadence {
    /// Interval while things change or a verdict is near.
    pub fast: Duration,
    /// Interval when nothing has changed for a while.
    pub slow: Duration,
    /// Polls without change before slowing down.
    pub settle_after: u32,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            fast: Duration::from_millis(1000),
            slow: Duration::from_millis(4000),
            settle_after: 3,
        }
    }
}

/// Consecutive failed polls after which the watch gives up (the SDK already retried each).
pub(crate) const MAX_FAILED_POLLS: u32 = 5;

/// Fast-fail rules per service (each config has its own); services not named get `default`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    pub default: FastFail,
    pub per_service: BTreeMap<String, FastFail>,
}

impl Rules {
    pub(crate) fn of(&self, service: &str) -> &FastFail {
        self.per_service.get(service).unwrap_or(&self.default)
    }
}

impl From<FastFail> for Rules {
    fn from(default: FastFail) -> Self {
        Rules {
            default,
            per_service: BTreeMap::new(),
        }
    }
}

/// A service joining a running watch: its deployment, where it runs, how it is judged, its
/// gates, and until when it is followed.
#[derive(Debug)]
pub(crate) struct Joining {
    pub target: Target,
    /// What polls it (None: the observer already knows the service).
    pub watcher: Option<Watcher>,
    pub rules: FastFail,
    pub gates: Option<GateSetup>,
    pub deadline: Instant,
}

/// What the watch hands on for one service as soon as it has its outcome.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub service: String,
    pub outcome: Outcome,
    pub journey: Journey,
    /// The stopped tasks of the followed deployment, in the order seen.
    pub stopped: Vec<StoppedTask>,
    /// The PRIMARY deployment at the last poll: what serves when the service leaves the watch.
    pub serving: Option<Serving>,
    /// The last unhealthy state seen of our tasks' targets, one per target group (its
    /// reason code and description), to explain a failure of ELB health checks.
    pub unhealthy_targets: Vec<TargetView>,
}

/// The two ends of a watch: services join through `intake` while it runs (a release starts a
/// step when a slot frees), and each leaves through `out` with its outcome. The watch ends
/// when `intake` is closed and no service is left.
pub(crate) struct Feed {
    pub intake: mpsc::UnboundedReceiver<Joining>,
    pub out: mpsc::UnboundedSender<Finished>,
}

/// Follows `targets` until each has a verdict, the deadline passes, or `cancel` turns true:
/// [`follow`] with every service joined at the start.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn watch<O: Observer, H: Hooks>(
    observer: &mut O,
    hooks: &mut H,
    targets: Vec<Target>,
    rules: &Rules,
    cadence: &Cadence,
    deadline: Instant,
    cancel: watch::Receiver<bool>,
    emitter: &Emitter,
) -> Watched {
    let (join, intake) = mpsc::unbounded_channel();
    let (out, mut finished) = mpsc::unbounded_channel();
    for target in targets {
        let rules = rules.of(&target.service).clone();
        let _ = join.send(Joining {
            target,
            watcher: None,
            rules,
            gates: None,
            deadline,
        });
    }
    drop(join);
    follow(
        observer,
        hooks,
        Feed { intake, out },
        cadence,
        cancel,
        emitter,
    )
    .await;
    let mut watched = Watched::default();
    while let Ok(f) = finished.try_recv() {
        watched.outcomes.insert(f.service.clone(), f.outcome);
        watched.stopped.insert(f.service.clone(), f.stopped);
        if let Some(serving) = f.serving {
            watched.serving.insert(f.service.clone(), serving);
        }
        watched.journeys.insert(f.service, f.journey);
    }
    watched
}

/// Follows every service that joins through `feed` until each has a verdict, its deadline
/// passes, or `cancel` turns true; each leaves through `feed.out` at once. API errors are
/// retried by the SDK; one that still fails here is reported as a warning and the poll is
/// tried again, up to [`MAX_FAILED_POLLS`] in a row (then the services followed are lost).
/// Polls keep within the [`CallBudget`] whatever the cadence asks.
pub(crate) async fn follow<O: Observer, H: Hooks>(
    observer: &mut O,
    hooks: &mut H,
    feed: Feed,
    cadence: &Cadence,
    mut cancel: watch::Receiver<bool>,
    emitter: &Emitter,
) {
    let started = Instant::now();
    let budget = CallBudget::new(started, 1, observer.calls());
    let mut f = Follow {
        observer,
        hooks,
        feed,
        cadence,
        emitter,
        started,
        open: Vec::new(),
        deadlines: BTreeMap::new(),
        rules: Rules::default(),
        state: BTreeMap::new(),
        intake_open: true,
        quiet_polls: 0,
        failed_polls: 0,
        budget,
    };
    loop {
        f.take_joined();
        if f.open.is_empty() {
            if !f.intake_open {
                break;
            }
            // Nothing to follow until the next service joins.
            match f.feed.intake.recv().await {
                Some(j) => f.admit(j),
                None => f.intake_open = false,
            }
            continue;
        }
        let round = f.poll().await;
        f.announce(&round.outcomes);
        f.close(round.outcomes).await;
        if f.open.is_empty() {
            continue;
        }
        f.sleep(round.changed, round.near, round.acted, &mut cancel)
            .await;
        let cancelled = *cancel.borrow();
        let ended = f.ended(cancelled);
        f.close(ended).await;
    }
}

/// One [`follow`] under way: the services followed and what the loop keeps between polls.
struct Follow<'a, O, H> {
    observer: &'a mut O,
    hooks: &'a mut H,
    feed: Feed,
    cadence: &'a Cadence,
    emitter: &'a Emitter,
    started: Instant,
    open: Vec<Target>,
    deadlines: BTreeMap<String, Instant>,
    rules: Rules,
    state: BTreeMap<String, ServiceState>,
    intake_open: bool,
    quiet_polls: u32,
    failed_polls: u32,
    budget: CallBudget,
}

/// What one poll found: the outcomes reached, and what says to poll again soon.
#[derive(Default)]
struct Round {
    outcomes: BTreeMap<String, Outcome>,
    changed: bool,
    near: bool,
    /// A gate started or a hook was answered: the deployment is about to move.
    acted: bool,
}

impl<O: Observer, H: Hooks> Follow<'_, O, H> {
    /// A service joins: its poller, its gates, its rules and its deadline.
    fn admit(&mut self, j: Joining) {
        let service = j.target.service.clone();
        if let Some(w) = j.watcher {
            self.observer.join(&service, w);
        }
        if let Some(g) = j.gates {
            self.hooks.join(&service, g);
        }
        self.rules.per_service.insert(service.clone(), j.rules);
        self.deadlines.insert(service, j.deadline);
        self.open.push(j.target);
    }

    /// Admits the services that joined since the last poll.
    fn take_joined(&mut self) {
        loop {
            match self.feed.intake.try_recv() {
                Ok(j) => self.admit(j),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.intake_open = false;
                    break;
                }
            }
        }
    }

    /// One poll of every open service: verdicts, reports, gates.
    async fn poll(&mut self) -> Round {
        let mut round = Round::default();
        let handles: Vec<(String, Ours)> = self
            .open
            .iter()
            .map(|t| (t.service.clone(), t.ours.clone()))
            .collect();
        let polled = self.observer.observe(&handles).await;
        self.budget.spend(self.observer.calls());
        match polled {
            Ok(observations) => {
                self.failed_polls = 0;
                let open = std::mem::take(&mut self.open);
                for (t, obs) in open.iter().zip(observations) {
                    self.judge_one(t, &obs, &mut round).await;
                }
                self.open = open;
            }
            Err(e) => self.poll_failed(&e.to_string(), &mut round),
        }
        round
    }

    /// The verdict on one service from its observation; reports what it newly shows and
    /// tends its gates and hooks while it is pending.
    async fn judge_one(&mut self, t: &Target, obs: &Observation, round: &mut Round) {
        let st = self.state.entry(t.service.clone()).or_default();
        let unhealthy_for = st.unhealthy_for(&obs.snapshot);
        let verdict =
            self.observer
                .judge(t, &obs.snapshot, self.rules.of(&t.service), unhealthy_for);
        st.serving = obs
            .snapshot
            .deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary)
            .map(|d| Serving {
                deployment_id: d.id.clone(),
                task_definition_arn: d.task_definition_arn.clone(),
            });
        match &verdict {
            Verdict::Pending(waiting) => {
                round.near |= is_near(&obs.snapshot, &t.ours);
                if &st.waiting != waiting {
                    st.waiting = waiting.clone();
                    round.changed = true;
                }
            }
            Verdict::Succeeded => st.waiting = "done".into(),
            Verdict::Failed(_) => st.waiting = "failed".into(),
        }
        if !st.first_poll_done {
            st.seen_events.extend(t.history.iter().cloned());
        }
        round.changed |= st.report(&t.service, obs, self.emitter, self.started);
        // Stages, traffic and hooks belong to the deployment being rolled out (a followed
        // rollback's are ECS's undoing of it).
        if t.goal == Goal::Deployed {
            round.changed |= st.report_stages(&t.service, obs, self.emitter, self.started);
        }
        let outcome = match verdict {
            Verdict::Pending(_) if t.goal == Goal::Deployed => {
                match self.hooks.tend(t, obs, self.emitter).await {
                    Tended::Idle => None,
                    Tended::Acted => {
                        round.changed = true;
                        round.near = true;
                        round.acted = true;
                        None
                    }
                    Tended::Stop { stage, hook_id } => Some(Outcome::Paused { stage, hook_id }),
                }
            }
            Verdict::Pending(_) => None,
            Verdict::Succeeded => Some(Outcome::Succeeded),
            Verdict::Failed(f) => Some(Outcome::Failed(f)),
        };
        if let Some(outcome) = outcome {
            round.outcomes.insert(t.service.clone(), outcome);
        }
    }

    /// A poll failed (after the SDK's retries): a warning, or after [`MAX_FAILED_POLLS`] in a
    /// row every open service is lost.
    fn poll_failed(&mut self, error: &str, round: &mut Round) {
        self.failed_polls += 1;
        let error = first_line(error).to_string();
        if self.failed_polls >= MAX_FAILED_POLLS {
            self.failed_polls = 0;
            for t in &self.open {
                round.outcomes.insert(
                    t.service.clone(),
                    Outcome::Lost {
                        error: error.clone(),
                    },
                );
            }
        } else {
            let failed_polls = self.failed_polls;
            self.emitter.emit(Event::Warning {
                message: format!(
                    "poll failed ({failed_polls}/{MAX_FAILED_POLLS}), retrying: {error}"
                ),
            });
        }
    }

    /// Announces the deploy verdicts reached; a rollback's end is the engine's to report.
    fn announce(&self, outcomes: &BTreeMap<String, Outcome>) {
        for t in self.open.iter().filter(|t| t.goal == Goal::Deployed) {
            if let Some(outcome) = outcomes.get(&t.service) {
                let (success, detail) = match outcome {
                    Outcome::Succeeded => (true, "deployment completed".to_string()),
                    Outcome::Failed(f) => (false, f.to_string()),
                    _ => continue,
                };
                self.emitter.emit(Event::Verdict {
                    service: t.service.clone(),
                    success,
                    detail,
                });
            }
        }
    }

    /// Waits until the next poll is due (cadence, call budget, first deadline), cancelled,
    /// or a gate finishes. A service that joins meanwhile is admitted and polled as a watch
    /// of its own would poll it: at once (as far as the budget allows), and at the fast
    /// cadence from there.
    async fn sleep(
        &mut self,
        changed: bool,
        near: bool,
        acted: bool,
        cancel: &mut watch::Receiver<bool>,
    ) {
        self.quiet_polls = if changed { 0 } else { self.quiet_polls + 1 };
        let interval = if near || self.quiet_polls < self.cadence.settle_after {
            self.cadence.fast
        } else {
            self.cadence.slow
        };
        let now = Instant::now();
        // After cortado itself moved the deployment (a hook answered), the next poll comes at
        // the fast cadence even when the budget is spent: one poll of debt per answer, repaid
        // by the waits after it.
        let budget_wait = self.budget.wait(self.open.len(), now);
        let wait = if acted {
            interval
        } else {
            interval.max(budget_wait)
        };
        let first_deadline = self
            .open
            .iter()
            .filter_map(|t| self.deadlines.get(&t.service))
            .min()
            .copied()
            .unwrap_or(now + wait);
        let mut wake = (now + wait).min(first_deadline);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => break,
                _ = cancel.changed() => break,
                _ = self.hooks.finished() => break,
                joined = self.feed.intake.recv(), if self.intake_open => match joined {
                    Some(j) => {
                        self.admit(j);
                        let now = Instant::now();
                        self.budget.admit(self.open.len(), now);
                        self.quiet_polls = 0;
                        wake = wake.min(now + self.budget.wait(self.open.len(), now));
                    }
                    None => self.intake_open = false,
                },
            }
        }
    }

    /// The services that end now without a verdict: all when cancelled, else those whose
    /// deadline has passed.
    fn ended(&self, cancelled: bool) -> BTreeMap<String, Outcome> {
        let mut ended = BTreeMap::new();
        let now = Instant::now();
        for t in &self.open {
            let last = self
                .state
                .get(&t.service)
                .map(|st| st.waiting.clone())
                .unwrap_or_default();
            if cancelled {
                ended.insert(t.service.clone(), Outcome::Cancelled { last });
            } else if self.deadlines.get(&t.service).is_some_and(|d| now >= *d) {
                ended.insert(t.service.clone(), Outcome::TimedOut { last });
            }
        }
        ended
    }

    async fn close(&mut self, outcomes: BTreeMap<String, Outcome>) {
        close(
            &mut self.open,
            outcomes,
            &mut self.state,
            self.hooks,
            &self.feed.out,
        )
        .await;
    }
}

/// Hands on each service of `open` that has an outcome (its gate stopped if one still runs,
/// its journey and stopped tasks with it) and takes it out of `open`.
async fn close<H: Hooks>(
    open: &mut Vec<Target>,
    outcomes: BTreeMap<String, Outcome>,
    state: &mut BTreeMap<String, ServiceState>,
    hooks: &mut H,
    out: &mpsc::UnboundedSender<Finished>,
) {
    if outcomes.is_empty() {
        return;
    }
    open.retain(|t| !outcomes.contains_key(&t.service));
    for (service, outcome) in outcomes {
        // A gate still running when its service ends (cancelled, deadline) is stopped.
        hooks.stop(&service).await;
        let st = state.remove(&service).unwrap_or_default();
        let mut journey = st.journey;
        journey.gates = hooks.take_reports(&service);
        if let Outcome::Paused { stage, hook_id } = &outcome {
            journey.paused_at = Some(PausedAt {
                stage: stage.clone(),
                hook_id: hook_id.clone(),
            });
        }
        let _ = out.send(Finished {
            service,
            outcome,
            journey,
            stopped: st.stopped,
            serving: st.serving,
            unhealthy_targets: st.unhealthy_seen.into_values().collect(),
        });
    }
}

/// What a blue/green, canary or linear deployment went through, for the reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Journey {
    /// The strategy in words ("blue/green", "canary", "linear"); empty for rolling.
    pub strategy: String,
    /// Lifecycle stages reached, in order, with seconds since the watch began.
    pub stages: Vec<StageMark>,
    /// Each traffic split seen, in order.
    pub traffic: Vec<TrafficMark>,
    pub gates: Vec<GateReport>,
    /// Where the run stopped following (`--until`).
    pub paused_at: Option<PausedAt>,
    /// The PAUSE hook our deployment waited on at the last poll (for a rollback that answers
    /// it).
    #[serde(skip)]
    pub waiting_hook: Option<String>,
}

impl Journey {
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty() && self.traffic.is_empty() && self.gates.is_empty()
    }

    /// The journey in words, one line each: stages with times, production traffic steps,
    /// gates (for the text summary and the job summary).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.stages.is_empty() {
            out.push(format!(
                "{}: {}",
                self.strategy,
                self.stages
                    .iter()
                    .map(|m| format!("{} {:.0}s", m.stage, m.at_seconds))
                    .collect::<Vec<_>>()
                    .join(" → ")
            ));
        }
        let mut steps: Vec<i32> = self.traffic.iter().filter_map(|t| t.production).collect();
        steps.dedup();
        if !steps.is_empty() {
            out.push(format!(
                "production traffic on the new revision: {}",
                steps
                    .iter()
                    .map(|p| format!("{p}%"))
                    .collect::<Vec<_>>()
                    .join(" → ")
            ));
        }
        for g in &self.gates {
            out.push(format!(
                "gate at {} `{}`: {} ({}, {:.1}s), answered {}",
                g.stage,
                g.command,
                if g.passed { "passed" } else { "failed" },
                g.detail,
                g.duration_seconds,
                g.action
            ));
        }
        if let Some(p) = &self.paused_at {
            out.push(format!("paused at {}", p.stage));
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageMark {
    pub stage: String,
    pub at_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficMark {
    pub at_seconds: f64,
    /// Percent of production traffic on the new revision.
    pub production: Option<i32>,
    /// Percent of test traffic on the new revision.
    pub test: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PausedAt {
    pub stage: String,
    pub hook_id: Option<String>,
}

/// How a watch ended: an outcome per service, and the stopped tasks it saw of each.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watched {
    pub outcomes: BTreeMap<String, Outcome>,
    /// Per service, the stopped tasks of the followed deployment, in the order seen.
    pub stopped: BTreeMap<String, Vec<StoppedTask>>,
    /// Per service, the stages, traffic steps and gates of its deployment.
    pub journeys: BTreeMap<String, Journey>,
    /// Per service, the PRIMARY deployment at the last poll.
    pub serving: BTreeMap<String, Serving>,
}

impl Watched {
    /// The outcome of `service` (timed out when the watch never judged it).
    pub(crate) fn outcome(&self, service: &str) -> Outcome {
        self.outcomes
            .get(service)
            .cloned()
            .unwrap_or(Outcome::TimedOut {
                last: String::new(),
            })
    }
}

/// A verdict is near when our tasks are all running: the next change may be the last.
fn is_near(snap: &Snapshot, ours: &Ours) -> bool {
    snap.deployments
        .iter()
        .find(|d| d.id == ours.deployment_id)
        .is_some_and(|d| d.running >= d.desired && d.pending == 0)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// What the watcher remembers of a service between polls, to report changes once.
#[derive(Debug, Default)]
struct ServiceState {
    seen_events: BTreeSet<String>,
    first_poll_done: bool,
    seen_stopped: BTreeSet<String>,
    stopped: Vec<StoppedTask>,
    counts: Option<(i32, i32, i32, i32, i32, RolloutState)>,
    targets: Option<(usize, usize, usize)>,
    waiting: String,
    unhealthy_since: BTreeMap<String, Instant>,
    /// Per target group, the last unhealthy target of ours seen there.
    unhealthy_seen: BTreeMap<String, TargetView>,
    /// Hook invocations seen: the stage each was first seen at, and its last status.
    hooks: BTreeMap<String, (String, String)>,
    /// The target groups our tasks were last seen in (they leave on a rollback).
    green: Vec<String>,
    journey: Journey,
    /// The PRIMARY deployment at the last poll.
    serving: Option<Serving>,
}

impl ServiceState {
    /// Emits what is new in `obs`; true when anything changed.
    fn report(
        &mut self,
        service: &str,
        obs: &Observation,
        emitter: &Emitter,
        started: Instant,
    ) -> bool {
        let mut changed = self.report_events(service, obs, emitter);
        changed |= self.report_stopped(service, obs, emitter);
        changed |= self.report_progress(service, obs, emitter, started);
        changed |= self.report_targets(service, obs, emitter);
        changed
    }

    /// New ECS service events.
    fn report_events(&mut self, service: &str, obs: &Observation, emitter: &Emitter) -> bool {
        let mut changed = false;
        // Service events, oldest first. On the first poll, only those from our deployment on
        // (older ones, and the target's history, are history); later, every event not seen
        // yet.
        for ev in obs.events.iter().rev() {
            let ours = match (ev.at, obs.our_started_at) {
                (Some(at), Some(start)) => at >= start - 1.0,
                _ => false,
            };
            if self.seen_events.insert(ev.id.clone()) && (self.first_poll_done || ours) {
                emitter.emit(Event::ServiceEvent {
                    service: service.to_string(),
                    at: ev.at,
                    message: ev.message.clone(),
                });
                changed = true;
            }
        }
        self.first_poll_done = true;
        changed
    }

    /// Newly stopped tasks.
    fn report_stopped(&mut self, service: &str, obs: &Observation, emitter: &Emitter) -> bool {
        let mut changed = false;
        for t in &obs.snapshot.stopped_tasks {
            if self.seen_stopped.insert(t.task_arn.clone()) {
                self.stopped.push(t.clone());
                let reason = t
                    .stopped_reason
                    .clone()
                    .or_else(|| t.containers.iter().find_map(|c| c.1.clone()))
                    .unwrap_or_else(|| "no reason given".into());
                emitter.emit(Event::TaskStopped {
                    service: service.to_string(),
                    task_arn: t.task_arn.clone(),
                    started_by: t.started_by.clone(),
                    reason: reason.into(),
                    failed: super::core::verdict::task_failed(t),
                });
                changed = true;
            }
        }
        changed
    }

    /// The PRIMARY deployment's task counts, when they changed.
    fn report_progress(
        &mut self,
        service: &str,
        obs: &Observation,
        emitter: &Emitter,
        started: Instant,
    ) -> bool {
        let mut changed = false;
        if let Some(d) = obs
            .snapshot
            .deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary)
        {
            let other_running: i32 = obs
                .snapshot
                .deployments
                .iter()
                .filter(|o| o.id != d.id)
                .map(|o| o.running)
                .sum();
            let counts = (
                d.desired,
                d.running,
                d.pending,
                d.failed,
                other_running,
                d.rollout_state.clone(),
            );
            if self.counts.as_ref() != Some(&counts) {
                self.counts = Some(counts);
                emitter.emit(Event::Progress {
                    service: service.to_string(),
                    deployment_id: d.id.clone(),
                    desired: d.desired,
                    running: d.running,
                    pending: d.pending,
                    failed: d.failed,
                    other_running,
                    rollout_state: (!d.rollout_state.is_absent())
                        .then(|| d.rollout_state.to_string()),
                    waiting_for: self.waiting.clone(),
                    elapsed_secs: started.elapsed().as_secs(),
                });
                changed = true;
            }
        }
        changed
    }

    /// Target health counts, when they changed.
    fn report_targets(&mut self, service: &str, obs: &Observation, emitter: &Emitter) -> bool {
        let mut changed = false;
        if !obs.snapshot.targets.is_empty() {
            let healthy = obs
                .snapshot
                .targets
                .iter()
                .filter(|t| t.state == TargetState::Healthy)
                .count();
            let unhealthy = obs
                .snapshot
                .targets
                .iter()
                .filter(|t| t.state == TargetState::Unhealthy)
                .count();
            let other = obs.snapshot.targets.len() - healthy - unhealthy;
            if self.targets != Some((healthy, unhealthy, other)) {
                self.targets = Some((healthy, unhealthy, other));
                emitter.emit(Event::TargetHealth {
                    service: service.to_string(),
                    healthy,
                    unhealthy,
                    other,
                });
                changed = true;
            }
        }
        changed
    }

    /// Stages, traffic split and hooks of a blue/green, canary or linear deployment: each
    /// change once.
    fn report_stages(
        &mut self,
        service: &str,
        obs: &Observation,
        emitter: &Emitter,
        started: Instant,
    ) -> bool {
        if !obs.snapshot.strategy.shifts_traffic() {
            return false;
        }
        let mut changed = false;
        let at_seconds = started.elapsed().as_secs_f64();
        self.journey.strategy = obs
            .rollout
            .unwrap_or(obs.snapshot.strategy.words())
            .to_string();
        // A controller without ECS lifecycle stages names its own (CodeDeploy's events).
        if let Some(stage) = obs.stage.clone()
            && self.journey.stages.last().map(|m| &m.stage) != Some(&stage)
        {
            self.journey.stages.push(StageMark {
                stage: stage.clone(),
                at_seconds,
            });
            emitter.emit(Event::Stage {
                service: service.to_string(),
                stage,
                elapsed_secs: started.elapsed().as_secs(),
            });
            changed = true;
        }
        if let Some(sd) = &obs.snapshot.service_deployment {
            self.journey.waiting_hook = sd.awaiting().map(|h| h.hook_id.clone());
            let stage = sd.lifecycle_stage.to_string();
            if !stage.is_empty() && self.journey.stages.last().map(|m| &m.stage) != Some(&stage) {
                self.journey.stages.push(StageMark {
                    stage: stage.clone(),
                    at_seconds,
                });
                emitter.emit(Event::Stage {
                    service: service.to_string(),
                    stage: stage.clone(),
                    elapsed_secs: started.elapsed().as_secs(),
                });
                changed = true;
            }
            for h in &sd.hooks {
                let status = h.status.to_string();
                let (stage, last) = self.hooks.entry(h.hook_id.clone()).or_insert_with(|| {
                    (
                        super::gate::hook_stage(&sd.lifecycle_stage).to_string(),
                        String::new(),
                    )
                });
                if *last != status {
                    *last = status.clone();
                    emitter.emit(Event::Hook {
                        service: service.to_string(),
                        hook_id: h.hook_id.clone(),
                        stage: stage.clone(),
                        target_type: h.target_type.clone(),
                        status,
                    });
                    changed = true;
                }
            }
        }
        if let Some(t) = &obs.traffic {
            let mut t = t.clone();
            if t.green.is_empty() {
                t.green = self.green.clone();
            } else {
                self.green = t.green.clone();
            }
            let mark = TrafficMark {
                at_seconds,
                production: t.green_percent(&t.production),
                test: t.green_percent(&t.test),
            };
            let last = self.journey.traffic.last();
            if last.map(|m| (m.production, m.test)) != Some((mark.production, mark.test)) {
                emitter.emit(Event::Traffic {
                    service: service.to_string(),
                    production_green: mark.production,
                    test_green: mark.test,
                    production: t.production.clone(),
                    test: t.test.clone(),
                });
                self.journey.traffic.push(mark);
                changed = true;
            }
        }
        changed
    }

    /// How long the longest-unhealthy target of our tasks has been unhealthy.
    fn unhealthy_for(&mut self, snap: &Snapshot) -> Duration {
        let now = Instant::now();
        let ours: Vec<&TargetView> = snap
            .targets
            .iter()
            .filter(|t| t.state == TargetState::Unhealthy && snap.our_task_ips.contains(&t.id))
            .collect();
        for t in &ours {
            self.unhealthy_seen
                .insert(t.target_group_arn.clone(), (*t).clone());
        }
        let unhealthy: BTreeSet<String> = ours
            .iter()
            .map(|t| format!("{}|{}", t.target_group_arn, t.id))
            .collect();
        self.unhealthy_since.retain(|k, _| unhealthy.contains(k));
        for k in unhealthy {
            self.unhealthy_since.entry(k).or_insert(now);
        }
        self.unhealthy_since
            .values()
            .map(|since| now - *since)
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::core::poll::ServiceEvent;
    use crate::deploy::core::verdict::Failure;
    use crate::deploy::core::verdict::{DeploymentView, StoppedTask};
    use crate::deploy::gate::NoHooks;

    /// Plays back a script of observations, one per poll, repeating the last.
    struct Script {
        polls: Vec<Vec<Observation>>,
        calls: usize,
    }

    impl Observer for Script {
        async fn observe(&mut self, services: &[(String, Ours)]) -> Result<Vec<Observation>> {
            let i = self.calls.min(self.polls.len() - 1);
            self.calls += 1;
            Ok(self.polls[i].iter().take(services.len()).cloned().collect())
        }
    }

    fn ours() -> Ours {
        Ours {
            deployment_id: "ecs-svc/2".into(),
            service_deployment_arn: None,
            task_definition_arn: "td:2".into(),
        }
    }

    fn obs(running: i32, state: &str, events: &[(&str, &str)]) -> Observation {
        Observation {
            snapshot: Snapshot {
                service_status: "ACTIVE".into(),
                deployments: vec![DeploymentView {
                    id: "ecs-svc/2".into(),
                    status: "PRIMARY".into(),
                    task_definition_arn: "td:2".into(),
                    desired: 2,
                    running,
                    rollout_state: state.into(),
                    ..DeploymentView::default()
                }],
                ..Snapshot::default()
            },
            events: events
                .iter()
                .map(|(id, m)| ServiceEvent {
                    id: id.to_string(),
                    at: None,
                    message: (*m).into(),
                })
                .collect(),
            traffic: None,
            pairs: vec![],
            our_started_at: None,
            ..Observation::default()
        }
    }

    fn fast() -> Cadence {
        Cadence {
            fast: Duration::from_millis(1),
            slow: Duration::from_millis(2),
            settle_after: 1,
        }
    }

    #[tokio::test]
    async fn follows_to_success_and_reports_each_event_once() {
        let mut script = Script {
            polls: vec![
                vec![obs(0, "IN_PROGRESS", &[("old", "before our time")])],
                vec![obs(
                    1,
                    "IN_PROGRESS",
                    &[("e1", "has started 2 tasks"), ("old", "before our time")],
                )],
                vec![obs(
                    2,
                    "COMPLETED",
                    &[
                        ("e2", "reached a steady state"),
                        ("e1", "has started 2 tasks"),
                        ("old", "x"),
                    ],
                )],
            ],
            calls: 0,
        };
        let em = Emitter::new();
        let log = em.recorder();
        let (_tx, rx) = watch::channel(false);
        let out = watch(
            &mut script,
            &mut NoHooks,
            vec![Target::deployed("web", ours())],
            &FastFail::default().into(),
            &fast(),
            Instant::now() + Duration::from_secs(5),
            rx,
            &em,
        )
        .await;
        assert_eq!(out.outcomes["web"], Outcome::Succeeded);
        let log = log.lock().unwrap();
        let messages: Vec<String> = log
            .iter()
            .filter_map(|e| match &e.event {
                Event::ServiceEvent { message, .. } => Some(message.as_str().to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            messages,
            vec!["has started 2 tasks", "reached a steady state"]
        );
        assert!(matches!(
            log.last().unwrap().event,
            Event::Verdict { success: true, .. }
        ));
        assert_eq!(
            script.calls, 3,
            "one poll per observation, none after the verdict"
        );
    }

    #[tokio::test]
    async fn deadline_gives_timed_out_with_what_we_waited_for() {
        let mut script = Script {
            polls: vec![vec![obs(1, "IN_PROGRESS", &[])]],
            calls: 0,
        };
        let (_tx, rx) = watch::channel(false);
        let out = watch(
            &mut script,
            &mut NoHooks,
            vec![Target::deployed("web", ours())],
            &FastFail::default().into(),
            &fast(),
            Instant::now() + Duration::from_millis(30),
            rx,
            &Emitter::new(),
        )
        .await;
        match &out.outcomes["web"] {
            Outcome::TimedOut { last } => assert!(last.contains("1/2 running"), "{last}"),
            o => panic!("{o:?}"),
        }
    }

    #[tokio::test]
    async fn cancel_stops_the_watch_promptly() {
        let mut script = Script {
            polls: vec![vec![obs(1, "IN_PROGRESS", &[])]],
            calls: 0,
        };
        let (tx, rx) = watch::channel(false);
        let slow = Cadence {
            fast: Duration::from_secs(60),
            slow: Duration::from_secs(60),
            settle_after: 1,
        };
        let handle = tokio::spawn(async move {
            watch(
                &mut script,
                &mut NoHooks,
                vec![Target::deployed("web", ours())],
                &FastFail::default().into(),
                &slow,
                Instant::now() + Duration::from_secs(600),
                rx,
                &Emitter::new(),
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(true).unwrap();
        let out = tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .expect("cancel must end the watch at once")
            .unwrap();
        assert!(matches!(out.outcomes["web"], Outcome::Cancelled { .. }));
    }

    struct Broken(u32);

    impl Observer for Broken {
        async fn observe(&mut self, _: &[(String, Ours)]) -> Result<Vec<Observation>> {
            self.0 += 1;
            Err(crate::error::Error::aws("TargetGroupNotFound"))
        }
    }

    #[tokio::test]
    async fn persistent_poll_errors_end_the_watch_instead_of_waiting_for_the_deadline() {
        let mut broken = Broken(0);
        let (_tx, rx) = watch::channel(false);
        let out = watch(
            &mut broken,
            &mut NoHooks,
            vec![Target::deployed("web", ours())],
            &FastFail::default().into(),
            &fast(),
            Instant::now() + Duration::from_secs(600),
            rx,
            &Emitter::new(),
        )
        .await;
        assert!(
            matches!(&out.outcomes["web"], Outcome::Lost { error } if error.contains("TargetGroupNotFound"))
        );
        assert_eq!(broken.0, MAX_FAILED_POLLS);
    }

    #[tokio::test]
    async fn each_service_is_judged_by_its_own_fast_fail_rules() {
        let failing = || {
            let mut o = obs(0, "IN_PROGRESS", &[]);
            o.snapshot.stopped_tasks = (0..3)
                .map(|i| StoppedTask {
                    task_arn: format!("task/{i}"),
                    started_by: Some("ecs-svc/2".into()),
                    stopped_reason: Some("CannotPullContainerError: manifest unknown".into()),
                    ..StoppedTask::default()
                })
                .collect();
            o
        };
        // Same signals for both; only "strict" may fail fast.
        let mut script = Script {
            polls: vec![vec![failing(), failing()]],
            calls: 0,
        };
        let rules = Rules {
            default: FastFail::default(),
            per_service: [(
                "patient".to_string(),
                FastFail {
                    enabled: false,
                    ..FastFail::default()
                },
            )]
            .into(),
        };
        let (_tx, rx) = watch::channel(false);
        let out = watch(
            &mut script,
            &mut NoHooks,
            vec![
                Target::deployed("patient", ours()),
                Target::deployed("strict", ours()),
            ],
            &rules,
            &fast(),
            Instant::now() + Duration::from_millis(50),
            rx,
            &Emitter::new(),
        )
        .await;
        assert!(
            matches!(
                out.outcomes["strict"],
                Outcome::Failed(Failure::FastFail { .. })
            ),
            "{out:?}"
        );
        assert!(
            matches!(out.outcomes["patient"], Outcome::TimedOut { .. }),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn stopped_tasks_are_reported_and_fail_fast() {
        let mut o = obs(0, "IN_PROGRESS", &[]);
        o.snapshot.stopped_tasks = (0..3)
            .map(|i| StoppedTask {
                task_arn: format!("task/{i}"),
                started_by: Some("ecs-svc/2".into()),
                stopped_reason: Some("CannotPullContainerError: manifest unknown".into()),
                ..StoppedTask::default()
            })
            .collect();
        let mut script = Script {
            polls: vec![vec![o]],
            calls: 0,
        };
        let em = Emitter::new();
        let log = em.recorder();
        let (_tx, rx) = watch::channel(false);
        let out = watch(
            &mut script,
            &mut NoHooks,
            vec![Target::deployed("web", ours())],
            &FastFail::default().into(),
            &fast(),
            Instant::now() + Duration::from_secs(5),
            rx,
            &em,
        )
        .await;
        assert!(matches!(
            out.outcomes["web"],
            Outcome::Failed(Failure::FastFail { .. })
        ));
        let stopped = log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e.event, Event::TaskStopped { .. }))
            .count();
        assert_eq!(stopped, 3);
    }

    #[test]
    fn call_budget_holds_the_average_and_allows_a_burst() {
        let t0 = Instant::now();
        let mut b = CallBudget::new(t0, 1, 0);
        // The burst is available at once.
        assert_eq!(b.wait(1, t0), Duration::ZERO);
        b.spend(BURST_CALLS as usize);
        // Spent: the next call waits for a token (1 s at 60 calls/minute).
        let w = b.wait(1, t0);
        assert!(
            w > Duration::from_millis(900) && w <= Duration::from_secs(1),
            "{w:?}"
        );
        // Over 10 simulated minutes of polling as fast as allowed, 3 calls a poll, the
        // average stays within 60 per minute plus the burst.
        let mut now = t0;
        let mut total = BURST_CALLS as usize;
        while now < t0 + Duration::from_secs(600) {
            now += b.wait(1, now).max(Duration::from_millis(100));
            total += 3;
            b.spend(total);
        }
        assert!(
            total <= 600 + BURST_CALLS as usize + 3,
            "{total} calls in 10 minutes"
        );
        assert!(total >= 590, "the budget should not starve polls: {total}");
        // Two services get twice the rate.
        let mut b = CallBudget::new(t0, 2, 0);
        b.spend(2 * BURST_CALLS as usize);
        let w = b.wait(2, t0);
        assert!(w <= Duration::from_millis(500), "{w:?}");
    }

    #[test]
    fn a_large_run_polls_within_the_run_budget_not_per_service() {
        let t0 = Instant::now();
        let k = 200;
        let mut b = CallBudget::new(t0, k, 0);
        // Polls of 30 calls, as fast as the budget allows, for 10 simulated minutes.
        let mut now = t0;
        let mut total = 0usize;
        while now < t0 + Duration::from_secs(600) {
            now += b.wait(k, now).max(Duration::from_millis(100));
            total += 30;
            b.spend(total);
        }
        // 600 a minute and the run's burst (and the poll that ends past 10 minutes, and the
        // one that overdraws the bucket), not 60 per service-minute (120,000).
        assert!(
            total <= 6000 + RUN_BURST_CALLS as usize + 2 * 30,
            "{total} calls in 10 minutes"
        );
        assert!(total >= 5900, "the budget should not starve polls: {total}");
        // Small runs keep their per-service rate.
        assert_eq!(budget_of(1), (1.0, BURST_CALLS));
        assert_eq!(budget_of(5), (5.0, 5.0 * BURST_CALLS));
    }

    /// Each service's observation by name; every poll costs `per_poll` calls.
    struct ByService {
        of: BTreeMap<String, Observation>,
        per_poll: usize,
        calls: usize,
    }

    impl Observer for ByService {
        async fn observe(&mut self, services: &[(String, Ours)]) -> Result<Vec<Observation>> {
            self.calls += self.per_poll;
            Ok(services
                .iter()
                .map(|(s, _)| self.of.get(s).cloned().unwrap_or_default())
                .collect())
        }

        fn calls(&self) -> usize {
            self.calls
        }
    }

    #[tokio::test]
    async fn a_service_joining_a_quiet_watch_is_polled_as_if_alone() {
        // `slow` follows a rollout that never moves: its watch settles to the slow cadence
        // (a minute here) and has spent its call budget. A service that joins then must be
        // polled at once, as a watch of its own would poll it, not a minute later.
        let mut observer = ByService {
            of: BTreeMap::from([
                ("slow".to_string(), obs(1, "IN_PROGRESS", &[])),
                ("api".to_string(), obs(2, "COMPLETED", &[])),
            ]),
            per_poll: 40,
            calls: 0,
        };
        let cadence = Cadence {
            fast: Duration::from_millis(5),
            slow: Duration::from_secs(60),
            settle_after: 1,
        };
        let (join, intake) = mpsc::unbounded_channel();
        let (out, mut finished) = mpsc::unbounded_channel();
        let (_tx, rx) = watch::channel(false);
        let em = Emitter::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        let joining = |service: &str| Joining {
            target: Target::deployed(service, ours()),
            watcher: None,
            rules: FastFail::default(),
            gates: None,
            deadline,
        };
        join.send(joining("slow")).unwrap();
        let mut hooks = NoHooks;
        let following = follow(
            &mut observer,
            &mut hooks,
            Feed { intake, out },
            &cadence,
            rx,
            &em,
        );
        let scenario = async {
            // Let `slow` be polled a few times and settle.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let t0 = Instant::now();
            join.send(joining("api")).unwrap();
            let done = tokio::time::timeout(Duration::from_secs(10), finished.recv()).await;
            let took = t0.elapsed();
            drop(join);
            (done, took)
        };
        let ((done, took), ()) = tokio::select! {
            r = scenario => (r, ()),
            _ = following => panic!("the watch ended with `slow` still pending"),
        };
        let f = done
            .expect("api reaches its verdict while the watch is quiet")
            .unwrap();
        assert_eq!(f.service, "api");
        assert_eq!(f.outcome, Outcome::Succeeded);
        assert!(took < Duration::from_secs(5), "api waited {took:?}");
    }
}
