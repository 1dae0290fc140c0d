//! Verification gates: cortado's own checks between the lifecycle stages of a blue/green,
//! canary or linear deployment.
//!
//! Receives, after every poll, what the watch saw of each followed service; when OUR service
//! deployment waits on a PAUSE hook (AWAITING_ACTION) at a stage the config has a gate for
//! (`rollout.verify`), runs the gate's command (argv, no shell) with the deployment's facts
//! in its environment, streams its output as events, and answers the hook with
//! ContinueServiceDeployment: CONTINUE on exit 0, ROLLBACK on anything else, on its timeout
//! and on a failure to start it. A hook no gate answers is reported once with the command
//! that answers it, or ends the run when it was asked to stop there (`--until`).
//!
//! Hands on: events, [`GateReport`]s, and [`Tended::Stop`] when the run stops at a stage.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::core::poll::{Observation, Target};
use super::core::spec::Gate;
use super::core::state::{LifecycleStage, ServiceDeploymentStatus};
use super::core::verdict::{Ours, ServiceDeploymentView, short_arn};
use super::event::{Emitter, Event};
use crate::aws::Clients;
use crate::error::Result;
use crate::untrusted::Untrusted;

/// Lines of a gate's output kept for the report.
const TAIL_LINES: usize = 20;
/// How long a gate has to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// Where a followed deployment should stop being followed (`deploy --until`, `--wait-until`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Until {
    /// Until it succeeds or fails (the default).
    #[default]
    Done,
    /// Until it waits on a PAUSE hook that no gate of this run answers.
    Pause,
    /// Until it reaches this lifecycle stage (or a later one).
    Stage(LifecycleStage),
    /// Until it is over with the old revision gone: for CodeDeploy, until the original task
    /// set is terminated (CodeDeploy's Succeeded); for ECS deployments the same as `Done`.
    Terminated,
}

/// The hook stage a waiting PAUSE hook belongs to, from the deployment's lifecycle stage. ECS
/// shows a hook before a production shift step at PRODUCTION_TRAFFIC_SHIFT; PAUSE hooks are not
/// allowed at the shift itself, so such a hook is a PRE_PRODUCTION_TRAFFIC_SHIFT one.
pub(crate) fn hook_stage(lifecycle: &LifecycleStage) -> LifecycleStage {
    match lifecycle {
        LifecycleStage::ProductionTrafficShift => LifecycleStage::PreProductionTrafficShift,
        other => other.clone(),
    }
}

/// How a gate ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    pub stage: String,
    pub command: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    /// "exit 0", "exit 1", "timed out after 120s", "cannot start: ...", "cancelled".
    pub detail: String,
    pub duration_seconds: f64,
    /// How cortado answered the hook: CONTINUE or ROLLBACK (or "none" when it could not).
    pub action: String,
    /// The last lines the command printed.
    pub tail: Vec<String>,
}

/// What tending a service after a poll asks of the watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tended {
    /// Nothing to change.
    Idle,
    /// A gate started or a hook was answered: poll again soon.
    Acted,
    /// The run stops following this service here (`--until`).
    Stop {
        stage: String,
        hook_id: Option<String>,
    },
}

/// The lifecycle-hook side of a watch. [`NoHooks`] for phases without gates.
pub(crate) trait Hooks {
    /// Called after every poll for each followed service, with what the poll saw.
    fn tend(
        &mut self,
        target: &Target,
        obs: &Observation,
        emitter: &Emitter,
    ) -> impl std::future::Future<Output = Tended> + Send;

    /// Resolves when a running gate has finished (so its answer need not wait for a poll).
    fn finished(&self) -> impl std::future::Future<Output = ()> + Send;

    /// Stops the running gate of `service`, if any (SIGTERM, then kill), and waits for it.
    fn stop(&mut self, service: &str) -> impl std::future::Future<Output = ()> + Send;

    /// A service joins a running watch with its gates (a release's next step).
    fn join(&mut self, _service: &str, _setup: GateSetup) {}

    /// The gates of `service` that ended (taken: each is reported once).
    fn take_reports(&mut self, _service: &str) -> Vec<GateReport> {
        Vec::new()
    }
}

/// No gates, no stops: rollbacks, waits, scaling.
pub(crate) struct NoHooks;

impl Hooks for NoHooks {
    async fn tend(&mut self, _: &Target, _: &Observation, _: &Emitter) -> Tended {
        Tended::Idle
    }

    async fn finished(&self) {
        std::future::pending::<()>().await
    }

    async fn stop(&mut self, _: &str) {}
}

/// Answers PAUSE hooks: the one mutating call of a gate.
pub(crate) trait HookAnswer: Sync {
    fn answer(
        &self,
        service_deployment_arn: &str,
        hook_id: &str,
        rollback: bool,
    ) -> impl std::future::Future<Output = Result<()>> + Send;

    /// The test listener's URL (protocol://host:port) of a listener rule, when it can be found.
    fn test_url(&self, rule_arn: &str) -> impl std::future::Future<Output = Option<String>> + Send;
}

impl HookAnswer for Clients {
    async fn answer(&self, arn: &str, hook_id: &str, rollback: bool) -> Result<()> {
        self.continue_service_deployment(arn, Some(hook_id), rollback)
            .await
    }

    async fn test_url(&self, rule_arn: &str) -> Option<String> {
        let listener = listener_of_rule(rule_arn)?;
        let (protocol, host, port) = self.listener_address(&listener).await.ok()??;
        Some(format!("{protocol}://{host}:{port}"))
    }
}

/// The listener ARN a listener rule ARN belongs to
/// (`...:listener-rule/app/LB/ID/LISTENER/RULE` -> `...:listener/app/LB/ID/LISTENER`).
pub(crate) fn listener_of_rule(rule_arn: &str) -> Option<String> {
    let (head, path) = rule_arn.split_once(":listener-rule/")?;
    let (listener, _rule) = path.rsplit_once('/')?;
    Some(format!("{head}:listener/{listener}"))
}

/// What a service's gates need to know besides the poll.
#[derive(Debug, Clone)]
pub(crate) struct GateSetup {
    pub cluster: String,
    pub gates: Vec<Gate>,
    pub until: Until,
    /// Hooks this run has answered already (`cortado continue`): never a pause to stop at.
    pub answered: Vec<String>,
}

struct Running {
    hook_id: String,
    sd_arn: String,
    stage: LifecycleStage,
    command: String,
    stop: watch::Sender<bool>,
    handle: JoinHandle<RunEnd>,
}

/// How a gate's process ended.
#[derive(Debug, Clone)]
struct RunEnd {
    exit_code: Option<i32>,
    passed: bool,
    detail: String,
    duration: Duration,
    tail: Vec<String>,
}

/// Runs the gates of a deploy and answers the hooks they guard.
pub(crate) struct Gatekeeper<'a, A: HookAnswer> {
    answer: &'a A,
    setup: BTreeMap<String, GateSetup>,
    running: BTreeMap<String, Running>,
    /// Hook ids answered or reported (each is acted on once).
    handled: BTreeSet<String>,
    reports: BTreeMap<String, Vec<GateReport>>,
    notify: Arc<Notify>,
}

impl<'a, A: HookAnswer> Gatekeeper<'a, A> {
    pub(crate) fn new(answer: &'a A, setup: BTreeMap<String, GateSetup>) -> Self {
        let handled = setup
            .values()
            .flat_map(|s| s.answered.iter().cloned())
            .collect();
        Gatekeeper {
            answer,
            setup,
            running: BTreeMap::new(),
            handled,
            reports: BTreeMap::new(),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Answers the hook a finished gate guarded, and reports the gate.
    async fn conclude(&mut self, service: &str, emitter: &Emitter) {
        let Some(run) = self.running.remove(service) else {
            return;
        };
        let end = run.handle.await.unwrap_or_else(|e| RunEnd {
            exit_code: None,
            passed: false,
            detail: format!("the gate's task failed: {e}"),
            duration: Duration::ZERO,
            tail: Vec::new(),
        });
        let action = match self
            .answer
            .answer(&run.sd_arn, &run.hook_id, !end.passed)
            .await
        {
            Ok(()) => if end.passed { "CONTINUE" } else { "ROLLBACK" }.to_string(),
            Err(e) => {
                emitter.emit(Event::Warning {
                    message: format!(
                        "{service}: answering the hook at {} failed: {}",
                        run.stage,
                        e.to_string().lines().next().unwrap_or_default()
                    ),
                });
                "none".to_string()
            }
        };
        emitter.emit(Event::GateFinished {
            service: service.to_string(),
            stage: run.stage.to_string(),
            passed: end.passed,
            exit_code: end.exit_code,
            detail: end.detail.clone(),
            duration_secs: end.duration.as_secs_f64(),
            action: action.clone(),
        });
        self.reports
            .entry(service.to_string())
            .or_default()
            .push(GateReport {
                stage: run.stage.to_string(),
                command: run.command,
                passed: end.passed,
                exit_code: end.exit_code,
                detail: end.detail,
                duration_seconds: end.duration.as_secs_f64(),
                action,
                tail: end.tail,
            });
    }

    async fn start(
        &mut self,
        target: &Target,
        obs: &Observation,
        sd: &ServiceDeploymentView,
        hook_id: &str,
        gate: &Gate,
        emitter: &Emitter,
    ) {
        let service = &target.service;
        let stage = hook_stage(&sd.lifecycle_stage);
        let cluster = self
            .setup
            .get(service)
            .map(|s| s.cluster.clone())
            .unwrap_or_default();
        let test_rule = obs.pairs.iter().find_map(|p| p.test_rule.clone());
        let test_url = match &test_rule {
            Some(rule) => self.answer.test_url(rule).await,
            None => None,
        };
        let env = gate_env(&GateFacts {
            cluster: &cluster,
            service,
            ours: &target.ours,
            stage: &stage,
            hook_id,
            obs,
            test_url: test_url.as_deref(),
        });
        let command = gate.argv.join(" ");
        emitter.emit(Event::GateStarted {
            service: service.clone(),
            stage: stage.to_string(),
            command: gate.argv.clone(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let handle = tokio::spawn(run_gate(
            gate.clone(),
            env,
            service.clone(),
            emitter.clone(),
            stop_rx,
            self.notify.clone(),
        ));
        self.running.insert(
            service.clone(),
            Running {
                hook_id: hook_id.to_string(),
                sd_arn: sd.arn.clone(),
                stage,
                command,
                stop,
                handle,
            },
        );
    }
}

impl<A: HookAnswer> Hooks for Gatekeeper<'_, A> {
    async fn tend(&mut self, target: &Target, obs: &Observation, emitter: &Emitter) -> Tended {
        let service = target.service.as_str();
        if self
            .running
            .get(service)
            .is_some_and(|r| r.handle.is_finished())
        {
            self.conclude(service, emitter).await;
            return Tended::Acted;
        }
        let Some(sd) = obs.snapshot.service_deployment.clone() else {
            return Tended::Idle;
        };
        let until = self
            .setup
            .get(service)
            .map(|s| s.until.clone())
            .unwrap_or_default();
        let in_progress = sd.status == ServiceDeploymentStatus::InProgress;
        if let Until::Stage(stop_at) = &until
            && in_progress
            && !sd.lifecycle_stage.is_absent()
            && sd.lifecycle_stage >= *stop_at
        {
            return Tended::Stop {
                stage: sd.lifecycle_stage.to_string(),
                hook_id: sd.awaiting().map(|h| h.hook_id.clone()),
            };
        }
        let Some(hook) = sd.awaiting().cloned() else {
            return Tended::Idle;
        };
        if !in_progress
            || self.handled.contains(&hook.hook_id)
            || self.running.contains_key(service)
        {
            return Tended::Idle;
        }
        let stage = hook_stage(&sd.lifecycle_stage);
        let gate = self
            .setup
            .get(service)
            .and_then(|s| s.gates.iter().find(|g| g.stage == stage))
            .cloned();
        if let Some(gate) = gate {
            self.handled.insert(hook.hook_id.clone());
            self.start(target, obs, &sd, &hook.hook_id, &gate, emitter)
                .await;
            return Tended::Acted;
        }
        if until == Until::Pause {
            return Tended::Stop {
                stage: stage.to_string(),
                hook_id: Some(hook.hook_id),
            };
        }
        self.handled.insert(hook.hook_id.clone());
        emitter.emit(Event::HookWaiting {
            service: service.to_string(),
            stage: stage.to_string(),
            hook_id: hook.hook_id.clone(),
            continue_command: "cortado continue".into(),
        });
        Tended::Idle
    }

    async fn finished(&self) {
        if self.running.is_empty() {
            std::future::pending::<()>().await
        }
        self.notify.notified().await
    }

    async fn stop(&mut self, service: &str) {
        let Some(run) = self.running.remove(service) else {
            return;
        };
        let _ = run.stop.send(true);
        let end = run.handle.await.ok();
        self.reports
            .entry(service.to_string())
            .or_default()
            .push(GateReport {
                stage: run.stage.to_string(),
                command: run.command,
                passed: false,
                exit_code: end.as_ref().and_then(|e| e.exit_code),
                detail: end.as_ref().map_or("stopped".into(), |e| e.detail.clone()),
                duration_seconds: end.as_ref().map_or(0.0, |e| e.duration.as_secs_f64()),
                action: "none".into(),
                tail: end.map(|e| e.tail).unwrap_or_default(),
            });
    }

    fn join(&mut self, service: &str, setup: GateSetup) {
        self.handled.extend(setup.answered.iter().cloned());
        self.setup.insert(service.to_string(), setup);
    }

    fn take_reports(&mut self, service: &str) -> Vec<GateReport> {
        self.reports.remove(service).unwrap_or_default()
    }
}

/// The facts a gate's environment carries.
struct GateFacts<'a> {
    cluster: &'a str,
    service: &'a str,
    ours: &'a Ours,
    stage: &'a LifecycleStage,
    hook_id: &'a str,
    obs: &'a Observation,
    test_url: Option<&'a str>,
}

/// The environment of a gate: the deployment's facts as `CORTADO_*` variables (added to the
/// environment cortado runs in).
fn gate_env(f: &GateFacts<'_>) -> Vec<(String, String)> {
    let mut env = vec![
        ("CORTADO_CLUSTER", f.cluster.to_string()),
        ("CORTADO_SERVICE", f.service.to_string()),
        ("CORTADO_STAGE", f.stage.to_string()),
        ("CORTADO_HOOK_ID", f.hook_id.to_string()),
        ("CORTADO_DEPLOYMENT_ID", f.ours.deployment_id.clone()),
        (
            "CORTADO_SERVICE_DEPLOYMENT_ARN",
            f.ours.service_deployment_arn.clone().unwrap_or_default(),
        ),
        (
            "CORTADO_TASK_DEFINITION_ARN",
            f.ours.task_definition_arn.clone(),
        ),
        (
            "CORTADO_REVISION",
            short_arn(&f.ours.task_definition_arn).to_string(),
        ),
    ];
    let green: Vec<String> = f
        .obs
        .traffic
        .as_ref()
        .map(|t| t.green.clone())
        .unwrap_or_default();
    let all: BTreeSet<String> = f
        .obs
        .pairs
        .iter()
        .flat_map(|p| p.target_groups().cloned())
        .collect();
    let blue: Vec<String> = all.into_iter().filter(|t| !green.contains(t)).collect();
    env.push(("CORTADO_GREEN_TARGET_GROUP_ARN", green.join(",")));
    env.push(("CORTADO_BLUE_TARGET_GROUP_ARN", blue.join(",")));
    if let Some(url) = f.test_url {
        env.push(("CORTADO_TEST_URL", url.to_string()));
        if let Some((host, port)) = url
            .split_once("://")
            .and_then(|(_, rest)| rest.rsplit_once(':'))
        {
            env.push(("CORTADO_TEST_HOST", host.to_string()));
            env.push(("CORTADO_TEST_PORT", port.to_string()));
        }
    }
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The program to run: a relative path with a slash is taken from the gate's directory.
fn program(argv0: &str, dir: &Path) -> PathBuf {
    let p = Path::new(argv0);
    if p.is_relative() && argv0.contains('/') {
        dir.join(p)
    } else {
        p.to_path_buf()
    }
}

/// Runs one gate to its end: exit, timeout, or stop (SIGTERM, then kill after a grace).
async fn run_gate(
    gate: Gate,
    env: Vec<(String, String)>,
    service: String,
    emitter: Emitter,
    mut stop: watch::Receiver<bool>,
    notify: Arc<Notify>,
) -> RunEnd {
    let started = Instant::now();
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let end = |exit_code: Option<i32>, passed: bool, detail: String, tail: &Arc<Mutex<_>>| {
        let t: &Mutex<VecDeque<String>> = tail;
        RunEnd {
            exit_code,
            passed,
            detail,
            duration: started.elapsed(),
            tail: t
                .lock()
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default(),
        }
    };
    let mut cmd = tokio::process::Command::new(program(&gate.argv[0], &gate.dir));
    cmd.args(&gate.argv[1..])
        .current_dir(&gate.dir)
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            notify.notify_one();
            return end(
                None,
                false,
                format!("cannot start {}: {e}", gate.argv[0]),
                &tail,
            );
        }
    };
    let readers = [
        child
            .stdout
            .take()
            .map(|o| read_lines(o, "stdout", &service, &emitter, &tail)),
        child
            .stderr
            .take()
            .map(|o| read_lines(o, "stderr", &service, &emitter, &tail)),
    ];
    let timeout = tokio::time::sleep(gate.timeout);
    tokio::pin!(timeout);
    enum Ended {
        Exit(std::io::Result<std::process::ExitStatus>),
        TimedOut,
        Stopped,
    }
    let ended = tokio::select! {
        status = child.wait() => Ended::Exit(status),
        _ = &mut timeout => Ended::TimedOut,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => Ended::Stopped,
    };
    let result = match ended {
        Ended::Exit(Ok(s)) => match s.code() {
            Some(0) => (Some(0), true, "exit 0".to_string()),
            Some(c) => (Some(c), false, format!("exit {c}")),
            None => (None, false, "killed by a signal".to_string()),
        },
        Ended::Exit(Err(e)) => (None, false, format!("waiting for it failed: {e}")),
        Ended::TimedOut => {
            terminate(&mut child).await;
            (
                None,
                false,
                format!("timed out after {}s", gate.timeout.as_secs()),
            )
        }
        Ended::Stopped => {
            terminate(&mut child).await;
            (
                None,
                false,
                "stopped before it finished (the run was cancelled or the deployment ended)"
                    .to_string(),
            )
        }
    };
    for r in readers.into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(1), r).await;
    }
    notify.notify_one();
    end(result.0, result.1, result.2, &tail)
}

/// SIGTERM, a grace period, then SIGKILL.
async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(TERM_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// The longest line of a gate's output kept as one line; a longer one is cut into pieces of
/// this size, so a command that never prints a line break cannot fill the memory.
const MAX_LINE_BYTES: usize = 64 << 10;

/// The next line of `r` without its line break (`\n` or `\r\n`), at most [`MAX_LINE_BYTES`];
/// None at the end. Bytes that are not UTF-8 are kept for the caller to decode.
async fn next_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let chunk = match r.fill_buf().await {
            Ok(c) if !c.is_empty() => c,
            _ => return (!line.is_empty()).then_some(line),
        };
        let room = MAX_LINE_BYTES - line.len();
        let window = &chunk[..chunk.len().min(room)];
        if let Some(i) = window.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&window[..i]);
            r.consume(i + 1);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(line);
        }
        let n = window.len();
        line.extend_from_slice(window);
        r.consume(n);
        if line.len() >= MAX_LINE_BYTES {
            return Some(line);
        }
    }
}

/// Streams a gate's output as events, keeping the last lines. The output is untrusted: read
/// as bytes (what is not UTF-8 shows as U+FFFD), in lines of bounded length.
fn read_lines<R: AsyncRead + Unpin + Send + 'static>(
    out: R,
    stream: &'static str,
    service: &str,
    emitter: &Emitter,
    tail: &Arc<Mutex<VecDeque<String>>>,
) -> JoinHandle<()> {
    let service = service.to_string();
    let emitter = emitter.clone();
    let tail = tail.clone();
    tokio::spawn(async move {
        let mut reader = BufReader::new(out);
        while let Some(bytes) = next_line(&mut reader).await {
            let line = Untrusted::from_bytes(&bytes);
            if let Ok(mut t) = tail.lock() {
                if t.len() == TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line.as_str().to_string());
            }
            emitter.emit(Event::GateOutput {
                service: service.clone(),
                stream: stream.to_string(),
                line,
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_of_a_rule() {
        assert_eq!(
            listener_of_rule(
                "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
            )
            .as_deref(),
            Some(
                "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
            )
        );
        assert_eq!(listener_of_rule("arn:aws:x:listener/app/a/b/c"), None);
    }

    #[test]
    fn a_pause_hook_shown_at_the_production_shift_is_a_pre_shift_hook() {
        assert_eq!(
            hook_stage(&LifecycleStage::ProductionTrafficShift),
            LifecycleStage::PreProductionTrafficShift
        );
        assert_eq!(
            hook_stage(&LifecycleStage::PostTestTrafficShift),
            LifecycleStage::PostTestTrafficShift
        );
    }

    fn gate(argv: &[&str], timeout: Duration) -> Gate {
        Gate {
            stage: LifecycleStage::PostTestTrafficShift,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout,
            dir: std::env::temp_dir(),
        }
    }

    async fn run(g: Gate, stop_after: Option<Duration>) -> (RunEnd, Vec<String>) {
        let em = Emitter::new();
        let log = em.recorder();
        let (tx, rx) = watch::channel(false);
        if let Some(d) = stop_after {
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                let _ = tx.send(true);
            });
        } else {
            std::mem::forget(tx);
        }
        let end = run_gate(
            g,
            vec![("CORTADO_STAGE".into(), "POST_TEST_TRAFFIC_SHIFT".into())],
            "web".into(),
            em,
            rx,
            Arc::new(Notify::new()),
        )
        .await;
        let lines = log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match &e.event {
                Event::GateOutput { line, .. } => Some(line.as_str().to_string()),
                _ => None,
            })
            .collect();
        (end, lines)
    }

    #[tokio::test]
    async fn a_gate_passes_on_exit_0_and_sees_the_deployment_facts() {
        let (end, lines) = run(
            gate(
                &["sh", "-c", "echo stage=$CORTADO_STAGE; echo to-stderr >&2"],
                Duration::from_secs(10),
            ),
            None,
        )
        .await;
        assert!(end.passed, "{end:?}");
        assert_eq!(end.exit_code, Some(0));
        assert!(lines.contains(&"stage=POST_TEST_TRAFFIC_SHIFT".to_string()));
        assert!(lines.contains(&"to-stderr".to_string()));
        assert!(end.tail.contains(&"to-stderr".to_string()));
    }

    #[tokio::test]
    async fn output_that_is_not_utf8_or_has_no_line_break_keeps_streaming() {
        let script = "printf 'bad \\377\\376 bytes\\nnext\\r\\n'; head -c 200000 /dev/zero | tr '\\0' a; printf '\\nlast\\n'";
        let (end, lines) = run(gate(&["sh", "-c", script], Duration::from_secs(10)), None).await;
        assert!(end.passed, "{end:?}");
        assert_eq!(lines[0], "bad \u{fffd}\u{fffd} bytes");
        assert_eq!(lines[1], "next");
        assert!(
            lines.iter().all(|l| l.len() <= MAX_LINE_BYTES),
            "lines are bounded"
        );
        let long: Vec<&String> = lines.iter().filter(|l| l.starts_with("aaa")).collect();
        assert!(long.len() >= 2, "the long line is cut into pieces");
        assert_eq!(long.iter().map(|l| l.len()).sum::<usize>(), 200_000);
        assert_eq!(lines.last().map(String::as_str), Some("last"));
    }

    #[tokio::test]
    async fn a_gate_fails_on_a_nonzero_exit_and_arguments_reach_no_shell() {
        let (end, lines) = run(
            gate(&["echo", "$HOME;", "exit", "1"], Duration::from_secs(10)),
            None,
        )
        .await;
        // echo printed its arguments verbatim: nothing was expanded or run by a shell.
        assert_eq!(lines, vec!["$HOME; exit 1".to_string()]);
        assert!(end.passed);
        let (end, _) = run(gate(&["sh", "-c", "exit 3"], Duration::from_secs(10)), None).await;
        assert!(!end.passed);
        assert_eq!(end.exit_code, Some(3));
        assert_eq!(end.detail, "exit 3");
    }

    #[tokio::test]
    async fn a_gate_past_its_timeout_is_terminated_and_fails() {
        let (end, _) = run(gate(&["sleep", "30"], Duration::from_millis(300)), None).await;
        assert!(!end.passed);
        assert!(end.detail.starts_with("timed out"), "{}", end.detail);
        assert!(end.duration < Duration::from_secs(10), "{:?}", end.duration);
    }

    #[tokio::test]
    async fn a_stopped_gate_gets_sigterm() {
        let (end, lines) = run(
            gate(
                &[
                    "sh",
                    "-c",
                    "trap 'echo got-term; exit 143' TERM; echo ready; while :; do sleep 0.1; done",
                ],
                Duration::from_secs(30),
            ),
            Some(Duration::from_millis(500)),
        )
        .await;
        assert!(!end.passed);
        assert!(
            end.detail.starts_with("stopped before it finished"),
            "{}",
            end.detail
        );
        assert!(lines.contains(&"got-term".to_string()), "{lines:?}");
    }

    #[tokio::test]
    async fn a_gate_that_cannot_start_fails_with_the_reason() {
        let (end, _) = run(gate(&["./no-such-gate.sh"], Duration::from_secs(5)), None).await;
        assert!(!end.passed);
        assert!(
            end.detail.contains("cannot start ./no-such-gate.sh"),
            "{}",
            end.detail
        );
    }

    // ---- the gatekeeper inside a watch, against a scripted ECS ----

    use crate::deploy::core::outcome::Outcome;
    use crate::deploy::core::poll::Goal;
    use crate::deploy::core::state::{HookStatus, RolloutState, Strategy};
    use crate::deploy::core::verdict::{DeploymentView, Failure, HookView, Snapshot};
    use crate::deploy::watch::{Cadence, Observer, Rules, watch};

    /// What the scripted ECS was told: (hook id, rollback?).
    type Answers = Arc<Mutex<Vec<(String, bool)>>>;

    struct FakeEcs {
        answers: Answers,
    }

    impl HookAnswer for FakeEcs {
        async fn answer(&self, _arn: &str, hook_id: &str, rollback: bool) -> Result<()> {
            self.answers
                .lock()
                .unwrap()
                .push((hook_id.to_string(), rollback));
            Ok(())
        }
        async fn test_url(&self, _rule: &str) -> Option<String> {
            Some("http://test.example:8080".into())
        }
    }

    /// A blue/green deployment waiting at POST_TEST_TRAFFIC_SHIFT until its hook is
    /// answered; then SUCCESSFUL (CONTINUE) or ROLLBACK_SUCCESSFUL (ROLLBACK).
    struct PausedDeployment {
        answers: Answers,
    }

    fn bg_obs(sd_status: &str, hook: HookStatus, done: bool) -> Observation {
        let ours = DeploymentView {
            id: "ecs-svc/2".into(),
            status: "PRIMARY".into(),
            task_definition_arn: "td:2".into(),
            desired: 1,
            running: 1,
            rollout_state: if done {
                RolloutState::Completed
            } else {
                RolloutState::InProgress
            },
            ..DeploymentView::default()
        };
        Observation {
            snapshot: Snapshot {
                service_status: "ACTIVE".into(),
                deployments: vec![ours],
                strategy: Strategy::BlueGreen,
                service_deployment: Some(ServiceDeploymentView {
                    arn: "arn:sd/2".into(),
                    status: sd_status.into(),
                    lifecycle_stage: LifecycleStage::PostTestTrafficShift,
                    hooks: vec![HookView {
                        hook_id: "hook-1".into(),
                        target_type: "PAUSE".into(),
                        status: hook,
                        ..HookView::default()
                    }],
                    ..ServiceDeploymentView::default()
                }),
                ..Snapshot::default()
            },
            pairs: vec![crate::deploy::core::poll::LbPair {
                tg: "tg/blue".into(),
                alternate: Some("tg/green".into()),
                production_rule: Some("rule/prod".into()),
                test_rule: Some("rule/test".into()),
            }],
            ..Observation::default()
        }
    }

    impl Observer for PausedDeployment {
        async fn observe(&mut self, services: &[(String, Ours)]) -> Result<Vec<Observation>> {
            let answered = self.answers.lock().unwrap().last().cloned();
            let obs = match answered {
                None => bg_obs("IN_PROGRESS", HookStatus::AwaitingAction, false),
                Some((_, false)) => bg_obs("SUCCESSFUL", HookStatus::Succeeded, true),
                Some((_, true)) => bg_obs("ROLLBACK_SUCCESSFUL", HookStatus::Failed, false),
            };
            Ok(vec![obs; services.len()])
        }
    }

    async fn deploy_with(
        gates: Vec<Gate>,
        until: Until,
    ) -> (Outcome, Vec<(String, bool)>, Vec<Event>, Vec<GateReport>) {
        let answers: Answers = Arc::default();
        let fake = FakeEcs {
            answers: answers.clone(),
        };
        let mut ecs = PausedDeployment {
            answers: answers.clone(),
        };
        let mut keeper = Gatekeeper::new(
            &fake,
            [(
                "web".to_string(),
                GateSetup {
                    cluster: "c".into(),
                    gates,
                    until,
                    answered: Vec::new(),
                },
            )]
            .into(),
        );
        let em = Emitter::new();
        let log = em.recorder();
        let (_tx, rx) = watch::channel(false);
        let target = Target {
            service: "web".into(),
            ours: Ours {
                deployment_id: "ecs-svc/2".into(),
                service_deployment_arn: Some("arn:sd/2".into()),
                task_definition_arn: "td:2".into(),
            },
            goal: Goal::Deployed,
            history: Vec::new(),
        };
        let out = watch(
            &mut ecs,
            &mut keeper,
            vec![target],
            &Rules::default(),
            &Cadence {
                fast: Duration::from_millis(5),
                slow: Duration::from_millis(10),
                settle_after: 1,
            },
            Instant::now() + Duration::from_secs(20),
            rx,
            &em,
        )
        .await;
        let events = log
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event.clone())
            .collect();
        let answered = answers.lock().unwrap().clone();
        let gates = out
            .journeys
            .get("web")
            .map(|j| j.gates.clone())
            .unwrap_or_default();
        (out.outcome("web"), answered, events, gates)
    }

    fn post_test(argv: &[&str]) -> Gate {
        gate(argv, Duration::from_secs(10))
    }

    #[tokio::test]
    async fn a_passing_gate_continues_the_deployment_once() {
        let (outcome, answers, events, gates) = deploy_with(
            vec![post_test(&[
                "sh",
                "-c",
                "test \"$CORTADO_TEST_URL\" = http://test.example:8080",
            ])],
            Until::Done,
        )
        .await;
        assert_eq!(outcome, Outcome::Succeeded);
        assert_eq!(answers, vec![("hook-1".to_string(), false)]);
        assert_eq!(gates.len(), 1);
        assert!(gates[0].passed);
        assert_eq!(gates[0].action, "CONTINUE");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::GateStarted { .. }))
        );
    }

    #[tokio::test]
    async fn a_failing_gate_answers_rollback_and_the_deploy_fails() {
        let (outcome, answers, _, gates) = deploy_with(
            vec![post_test(&["sh", "-c", "echo nope; exit 2"])],
            Until::Done,
        )
        .await;
        assert_eq!(answers, vec![("hook-1".to_string(), true)]);
        assert!(
            matches!(outcome, Outcome::Failed(Failure::RolledBack { .. })),
            "{outcome:?}"
        );
        assert_eq!(gates[0].exit_code, Some(2));
        assert_eq!(gates[0].action, "ROLLBACK");
        assert_eq!(gates[0].tail, vec!["nope".to_string()]);
    }

    #[tokio::test]
    async fn without_a_gate_until_pause_stops_at_the_hook_and_answers_nothing() {
        let (outcome, answers, _, _) = deploy_with(vec![], Until::Pause).await;
        assert_eq!(
            outcome,
            Outcome::Paused {
                stage: "POST_TEST_TRAFFIC_SHIFT".into(),
                hook_id: Some("hook-1".into())
            }
        );
        assert!(answers.is_empty());
    }

    /// A deployment whose hook `cortado continue` answered, seen waiting on it for two more
    /// polls (a view that lags the answer), then done.
    struct LaggingAfterContinue {
        polls: usize,
    }

    impl Observer for LaggingAfterContinue {
        async fn observe(&mut self, services: &[(String, Ours)]) -> Result<Vec<Observation>> {
            self.polls += 1;
            let obs = if self.polls <= 2 {
                bg_obs("IN_PROGRESS", HookStatus::AwaitingAction, false)
            } else {
                bg_obs("SUCCESSFUL", HookStatus::Succeeded, true)
            };
            Ok(vec![obs; services.len()])
        }
    }

    /// `continue --wait-until paused`: the hook it answered is never the pause it stops at,
    /// however long the view shows it waiting; another hook would be.
    #[tokio::test]
    async fn until_pause_never_stops_at_a_hook_this_run_answered() {
        for (answered, paused) in [(vec!["hook-1".to_string()], false), (Vec::new(), true)] {
            let answers: Answers = Arc::default();
            let fake = FakeEcs {
                answers: answers.clone(),
            };
            let mut ecs = LaggingAfterContinue { polls: 0 };
            let setup = GateSetup {
                cluster: "c".into(),
                gates: Vec::new(),
                until: Until::Pause,
                answered,
            };
            let mut keeper = Gatekeeper::new(&fake, [("web".to_string(), setup)].into());
            let em = Emitter::new();
            let (_tx, rx) = watch::channel(false);
            let target = Target {
                service: "web".into(),
                ours: Ours {
                    deployment_id: "ecs-svc/2".into(),
                    service_deployment_arn: Some("arn:sd/2".into()),
                    task_definition_arn: "td:2".into(),
                },
                goal: Goal::Deployed,
                history: Vec::new(),
            };
            let cadence = Cadence {
                fast: Duration::from_millis(5),
                slow: Duration::from_millis(10),
                settle_after: 1,
            };
            let out = watch(
                &mut ecs,
                &mut keeper,
                vec![target],
                &Rules::default(),
                &cadence,
                Instant::now() + Duration::from_secs(20),
                rx,
                &em,
            )
            .await;
            let outcome = out.outcome("web");
            if paused {
                assert!(matches!(outcome, Outcome::Paused { .. }), "{outcome:?}");
            } else {
                assert_eq!(outcome, Outcome::Succeeded);
            }
            assert!(answers.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn until_a_stage_stops_there() {
        let (outcome, answers, _, _) =
            deploy_with(vec![], Until::Stage(LifecycleStage::PostScaleUp)).await;
        assert!(matches!(outcome, Outcome::Paused { .. }), "{outcome:?}");
        assert!(answers.is_empty());
    }

    #[tokio::test]
    async fn a_hook_no_gate_answers_is_reported_once_and_left_alone() {
        let answers: Answers = Arc::default();
        let fake = FakeEcs {
            answers: answers.clone(),
        };
        let mut keeper = Gatekeeper::new(&fake, BTreeMap::new());
        let em = Emitter::new();
        let log = em.recorder();
        let target = Target::deployed(
            "web",
            Ours {
                deployment_id: "ecs-svc/2".into(),
                service_deployment_arn: Some("arn:sd/2".into()),
                task_definition_arn: "td:2".into(),
            },
        );
        let obs = bg_obs("IN_PROGRESS", HookStatus::AwaitingAction, false);
        for _ in 0..3 {
            assert_eq!(keeper.tend(&target, &obs, &em).await, Tended::Idle);
        }
        let waiting = log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e.event, Event::HookWaiting { .. }))
            .count();
        assert_eq!(waiting, 1);
        assert!(answers.lock().unwrap().is_empty());
    }
}
