//! Events: what the engine tells the world. The engine emits them into an [`Emitter`]; sinks
//! in `report` turn them into terminal lines, JSON lines or GitHub Actions output. The engine
//! never prints. Text that ECS, a container or a gate wrote is [`Untrusted`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::untrusted::Untrusted;

/// One thing that happened during a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// What the run is about to do.
    Plan {
        service: String,
        cluster: String,
        register: bool,
        create_service: bool,
        summary: String,
    },
    /// A new task definition revision was registered.
    Registered { task_definition_arn: String },
    /// The rendered task definition equals the one the service runs: nothing registered.
    RegistrationSkipped { task_definition_arn: String },
    /// We started a deployment (by CreateService or UpdateService).
    DeploymentStarted {
        service: String,
        deployment_id: String,
        service_deployment_arn: Option<String>,
        task_definition_arn: String,
        created: bool,
    },
    /// Counts of our deployment changed.
    Progress {
        service: String,
        deployment_id: String,
        desired: i32,
        running: i32,
        pending: i32,
        failed: i32,
        /// Tasks running in the service's other deployments (the revision being replaced,
        /// or, after a rollback, the one rolled back).
        other_running: i32,
        rollout_state: Option<String>,
        waiting_for: String,
        elapsed_secs: u64,
    },
    /// A service event from ECS (each printed once).
    ServiceEvent {
        service: String,
        at: Option<f64>,
        message: Untrusted,
    },
    /// A task of the service stopped.
    TaskStopped {
        service: String,
        task_arn: String,
        started_by: Option<String>,
        /// ECS's stop reason: anyone allowed to call StopTask writes it.
        reason: Untrusted,
        /// Whether the task failed ([`super::core::verdict::task_failed`]); scale-in and replacement
        /// are not failures.
        failed: bool,
    },
    /// Target health of the service's target groups changed.
    TargetHealth {
        service: String,
        healthy: usize,
        unhealthy: usize,
        other: usize,
    },
    /// Our blue/green, canary or linear deployment reached a lifecycle stage.
    Stage {
        service: String,
        stage: String,
        elapsed_secs: u64,
    },
    /// The traffic split changed: percent to the new (green) revision, and the weights by
    /// target group, of the production and test listener rules.
    Traffic {
        service: String,
        production_green: Option<i32>,
        test_green: Option<i32>,
        production: Vec<(String, i32)>,
        test: Vec<(String, i32)>,
    },
    /// A lifecycle hook invocation of our deployment changed status.
    Hook {
        service: String,
        hook_id: String,
        stage: String,
        target_type: String,
        status: String,
    },
    /// Our deployment waits on a PAUSE hook that no gate of this run answers.
    HookWaiting {
        service: String,
        stage: String,
        hook_id: String,
        /// How to answer it.
        continue_command: String,
    },
    /// A verification gate started (its command, without the environment).
    GateStarted {
        service: String,
        stage: String,
        command: Vec<String>,
    },
    /// A line the gate printed (stdout or stderr).
    GateOutput {
        service: String,
        stream: String,
        line: Untrusted,
    },
    /// A verification gate ended, and how cortado answered the hook.
    GateFinished {
        service: String,
        stage: String,
        passed: bool,
        exit_code: Option<i32>,
        detail: String,
        duration_secs: f64,
        action: String,
    },
    /// The verdict on our deployment.
    Verdict {
        service: String,
        success: bool,
        detail: String,
    },
    RollbackStarted {
        service: String,
        method: String,
        to_task_definition: Option<String>,
        /// Why that revision: which deployment of ECS's record vouches for it.
        #[serde(skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    RollbackFinished {
        service: String,
        success: bool,
        detail: String,
    },
    /// A warning that does not stop the run.
    Warning { message: String },
    /// A note that does not stop the run (a one-off task placed without its service).
    Note { message: String },
    /// Why our deployment's tasks failed, once per distinct failure (after the verdict; the
    /// result carries the whole explanation, log tail included).
    Explained {
        service: String,
        /// Tasks, container, exit code, stop code and reason, on one line.
        failure: String,
        diagnosis: Option<String>,
        fix: Option<String>,
        /// The definition line the fix is about.
        #[serde(skip_serializing_if = "Option::is_none")]
        at: Option<crate::deploy::core::diagnosis::Place>,
    },
    /// A one-off task started (`cortado run`, a release's `run:` step).
    TaskStarted {
        service: String,
        task_arn: String,
        task_definition_arn: String,
        container: String,
    },
    /// Where a one-off task's container logs are read; when they cannot be, why.
    #[serde(rename = "logs")]
    TaskLogs {
        service: String,
        log_group: Option<String>,
        log_stream: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A one-off task's status changed.
    TaskStatus {
        service: String,
        task_arn: String,
        last_status: String,
        desired_status: Option<String>,
    },
    /// A line a one-off task's container wrote (its CloudWatch Logs).
    #[serde(rename = "log")]
    TaskLog {
        service: String,
        container: String,
        timestamp: i64,
        message: Untrusted,
    },
    /// cortado asked ECS to stop a one-off task (its deadline, a cancel).
    TaskStopRequested {
        service: String,
        task_arn: String,
        reason: String,
    },
    /// A one-off task ended: its outcome, cortado's exit code for it, in words.
    TaskEnded {
        service: String,
        task_arn: String,
        outcome: String,
        exit_code: u8,
        detail: String,
    },
}

/// An event with its time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stamped {
    /// Seconds since the Unix epoch.
    pub time: f64,
    #[serde(flatten)]
    pub event: Event,
}

/// A subscriber to the event stream.
type Sink = Box<dyn FnMut(&Stamped) + Send>;

/// Where events go. Cheap to clone; every clone feeds the same sinks.
#[derive(Clone, Default)]
pub struct Emitter {
    sinks: Arc<Mutex<Vec<Sink>>>,
    /// Stopped tasks and service events already reported: a run reports each once, though a
    /// deploy's watch and its rollback's watch both see them.
    stopped: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

impl Emitter {
    pub fn new() -> Self {
        Emitter::default()
    }

    /// Subscribes a sink.
    pub fn subscribe(&self, sink: impl FnMut(&Stamped) + Send + 'static) {
        self.sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(sink));
    }

    pub fn emit(&self, event: Event) {
        let once = match &event {
            Event::TaskStopped { task_arn, .. } => Some(task_arn.clone()),
            Event::ServiceEvent {
                service,
                at,
                message,
            } => Some(format!("{service}\n{at:?}\n{message}")),
            _ => None,
        };
        if let Some(key) = once
            && !self
                .stopped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key)
        {
            return;
        }
        let time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        let stamped = Stamped { time, event };
        for sink in self
            .sinks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
        {
            sink(&stamped);
        }
    }

    /// A sink that records every event, for tests and summaries.
    pub fn recorder(&self) -> Arc<Mutex<Vec<Stamped>>> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        self.subscribe(move |e| l.lock().unwrap_or_else(|e| e.into_inner()).push(e.clone()));
        log
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscriber_sees_every_event_as_tagged_json() {
        let em = Emitter::new();
        let a = em.recorder();
        let b = em.clone().recorder();
        em.emit(Event::Registered {
            task_definition_arn: "arn:td/web:3".into(),
        });
        assert_eq!(a.lock().unwrap().len(), 1);
        assert_eq!(b.lock().unwrap().len(), 1);
        let j = serde_json::to_value(&a.lock().unwrap()[0]).unwrap();
        assert_eq!(j["event"], "registered");
        assert_eq!(j["task_definition_arn"], "arn:td/web:3");
        assert!(j["time"].as_f64().unwrap() > 1.7e9);
    }

    #[test]
    fn a_stopped_task_is_reported_once_per_run() {
        // A deploy's watch and its rollback's watch each see the task; the run reports it once.
        let em = Emitter::new();
        let log = em.recorder();
        let stop = |arn: &str| Event::TaskStopped {
            service: "web".into(),
            task_arn: arn.into(),
            started_by: Some("ecs-svc/2".into()),
            reason: "Essential container in task exited".into(),
            failed: true,
        };
        em.emit(stop("arn:task/a"));
        em.clone().emit(stop("arn:task/a"));
        em.emit(stop("arn:task/b"));
        assert_eq!(log.lock().unwrap().len(), 2);
    }
}
