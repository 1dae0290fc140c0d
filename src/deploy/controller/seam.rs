//! The seam between the engine and a deployment controller (ECS with its rolling, blue/green,
//! canary and linear strategies; CodeDeploy; Express Mode). The engine speaks to every
//! controller through [`Controller`]: decide (read-only), apply (the one write), observe and
//! judge (the [`Watcher`] of the deployment it started, polled by the run's one watch), plan
//! and carry out a rollback, and the same for `wait` and `rollback` of a live service.
//!
//! Receives the loaded service ([`Local`], which carries its controller) and the run's
//! context ([`Cx`]); hands back decisions, deployments to follow, and rollback ends worded
//! through the outcome table. Nothing here prints.

use std::fmt::Debug;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::watch as channel;
use tokio::time::Instant;

use crate::aws::Clients;
use crate::aws::types::ecs::Service;
use crate::aws::types::{CreateServiceInput, RegisterTaskDefinitionInput};
use crate::config::Config;
use crate::deploy::core::outcome::{Cause, RollbackEnd};
use crate::deploy::core::rollback::WaitRollback;
use crate::deploy::core::spec::Rollout;
use crate::deploy::core::verdict::Ours;
use crate::deploy::event::{Emitter, Event};
use crate::deploy::gate::Until;
use crate::deploy::result::{RollbackReport, ServiceResult};
use crate::deploy::watch::{Cadence, Watcher};
use crate::error::{Diagnostic, Error, Result};
use crate::plan::ServicePlan;
use crate::render::Secrets;

/// A service's deployment controller. One implementation per module of
/// `deploy::controller`; which one deploys a service is chosen in one place
/// (`deploy::controller::choose`).
pub trait Controller: Debug + Send + Sync {
    /// The `deploymentController.type` ECS knows it by (ECS, CODE_DEPLOY).
    fn deployment_controller(&self) -> &'static str;

    /// What a deploy would do, from the live service (None: it does not exist). Read-only.
    fn decide<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        live: Option<Service>,
        flags: &'a DeployFlags,
    ) -> BoxFuture<'a, Result<Decision>>;

    /// The one write (and the registration before it). Fills `r` (registration, task
    /// definition, deployment); returns the deployment to follow, or None when there is
    /// nothing to follow (then `r`'s outcome and detail say why).
    fn apply<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        decision: &'a Decision,
        flags: &'a DeployFlags,
        r: &'a mut ServiceResult,
    ) -> BoxFuture<'a, Result<Option<Follow>>>;

    /// Plans the rollback of a deploy that ended without success (by the controller's pure
    /// rules, after the outcome table's remedy) and carries it out, following it until
    /// `job.until`.
    fn roll_back<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        job: Undo<'a>,
    ) -> BoxFuture<'a, (RollbackEnd, Option<RollbackReport>)>;

    /// `wait`: the deployment in flight on the live service `svc`, and how to follow it.
    fn current<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        svc: &'a Service,
    ) -> BoxFuture<'a, Result<Current>>;

    /// `cortado rollback` of the live service `svc`: decides what to undo, does it, and
    /// follows it until `deadline` (unless `opts.no_wait`). The result's outcome and detail
    /// come from the outcome table.
    fn rollback<'a>(
        &'a self,
        cx: &'a Cx<'a>,
        local: &'a Local,
        svc: &'a Service,
        opts: RollbackOptions,
        deadline: Instant,
    ) -> BoxFuture<'a, Result<ServiceResult>>;
}

/// What every controller call shares: the clients, the event stream, cancellation, the
/// watch's cadence, and `--wait-rollback`.
pub struct Cx<'a> {
    pub clients: &'a Clients,
    pub emitter: &'a Emitter,
    pub cancel: channel::Receiver<bool>,
    pub cadence: &'a Cadence,
    /// `--wait-rollback` (else each config's `rollout.wait_rollback`).
    pub wait_rollback: Option<WaitRollback>,
}

impl Cx<'_> {
    /// When a followed rollback of `local`'s service counts as done.
    pub fn wait_rollback_for(&self, local: &Local) -> WaitRollback {
        self.wait_rollback.unwrap_or(local.rollout.wait_rollback)
    }

    /// The cancellation a rollback is followed with: a cancelled run's rollback must not be
    /// cut short by the same cancellation, so it gets a receiver that stays quiet (bounded by
    /// its deadline) and the sender that keeps it open.
    pub fn cancel_for(&self, cancelled: bool) -> (channel::Receiver<bool>, channel::Sender<bool>) {
        let (quiet_tx, quiet_rx) = channel::channel(false);
        if cancelled {
            (quiet_rx, quiet_tx)
        } else {
            (self.cancel.clone(), quiet_tx)
        }
    }

    /// Announces how a rollback ended (not for one that was only started).
    pub fn rollback_finished(&self, service: &str, end: &RollbackEnd) {
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
}

/// A config whose definitions rendered and validated.
#[derive(Debug, Clone)]
pub struct Local {
    pub config: Config,
    pub task: RegisterTaskDefinitionInput,
    /// The task definition as camelCase JSON (for comparison with the live one).
    pub task_json: Value,
    pub service: Option<CreateServiceInput>,
    pub service_json: Option<Value>,
    /// An Express Mode service's definition (`express_definition:`): the
    /// CreateExpressGatewayService input as camelCase JSON, without `serviceName` and
    /// `cluster` (the config's). For such a service `task` is the task definition ECS derives
    /// from it (`deploy::local::express_task_json`): read by verify, cost and the sandbox, never registered.
    pub express: Option<Value>,
    pub rollout: Rollout,
    /// Who deploys it: chosen once, when the config was loaded ([`super::choose`]).
    pub controller: Arc<dyn Controller>,
    /// Warnings and notes worth showing (errors stop the run instead).
    pub warnings: Vec<Diagnostic>,
    /// The run's secret values (rendering registered them): plans hide them.
    pub secrets: Secrets,
    /// The rendered task and service definition files, to point a finding made after the
    /// deploy (a failure's diagnosis) at the line it is about. None for Express Mode.
    pub task_doc: Option<Arc<crate::render::Document>>,
    pub service_doc: Option<Arc<crate::render::Document>>,
}

impl Local {
    /// The service the config names, if it names one (a config for one-off tasks, as
    /// `cortado init --task-definition` writes, names none).
    pub fn service_opt(&self) -> Option<&str> {
        self.config.service.as_deref().filter(|s| !s.is_empty())
    }

    /// The service the config names; an input error naming the missing `service:` key for
    /// the commands that work on a service.
    pub fn service_name(&self) -> Result<&str> {
        self.config
            .service
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::input(
                    Diagnostic::error(
                        "this command works on a service, and the config has no `service:` key",
                    )
                    .at(self.config.document.locate(""))
                    .hint(
                        "add `service: NAME` to the config file; without one, only run, register, render, validate, verify, revisions, deregister, tasks (and tasks logs) and diff (task definition only) work",
                    ),
                )
            })
    }
}

/// Flags of `cortado deploy`.
#[derive(Debug, Clone, Default)]
pub struct DeployFlags {
    pub dry_run: bool,
    pub no_wait: bool,
    pub skip_task_definition: bool,
    pub latest_task_definition: bool,
    pub revision: Option<i32>,
    pub force_register: bool,
    pub force_new_deployment: bool,
    pub tasks: Option<i32>,
    pub no_update_service: bool,
    pub no_rollback: bool,
    /// Leave the service's attributes and desired count as they are, whatever the service
    /// definition says (ecspresso's `--no-update-service`, as `refresh` and `scale` use it).
    pub keep_attributes: bool,
    /// Where following the deployment stops (`--until`, `--wait-until`).
    pub until: Until,
    /// Log lines shown per failure (`--log-lines`; None: the default, 0: none).
    pub log_lines: Option<usize>,
}

/// Which task definition the deploy rolls out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskChoice {
    /// Register the rendered definition as a new revision.
    Register,
    /// Use an existing revision (unchanged, `--skip-task-definition`, `--revision`, ...).
    Existing(String),
}

/// What the deploy will do, decided from local and live state.
#[derive(Debug, Clone)]
pub struct Decision {
    pub plan: ServicePlan,
    pub choice: TaskChoice,
    /// The live service, when it exists.
    pub live: Option<Service>,
    /// The task definition the service runs before the deploy.
    pub previous_task_definition: Option<String>,
    /// Service attributes to send with the update (None: none changed).
    pub update_attributes: bool,
    pub desired_count: Option<i32>,
}

impl Decision {
    /// Whether an UpdateService/CreateService call is needed at all.
    pub fn needs_service_call(&self, flags: &DeployFlags) -> bool {
        self.live.is_none()
            || self.choice == TaskChoice::Register
            || matches!(&self.choice, TaskChoice::Existing(a) if Some(a) != self.previous_task_definition.as_ref())
            || self.update_attributes
            || flags.force_new_deployment
            || (self.desired_count.is_some()
                && self.desired_count != self.live.as_ref().map(|s| s.desired_count()))
    }
}

/// A deployment to follow to its verdict: its handles, what polls and judges it, and what
/// concluding it needs.
#[derive(Debug)]
pub struct Follow {
    pub ours: Ours,
    /// The deploy created the service.
    pub created: bool,
    /// Ids of service events from before the operation: never reported as its own.
    pub history: Vec<String>,
    /// What polls and judges it in the run's watch.
    pub watcher: Watcher,
    /// Whether the config's gates answer its PAUSE hooks (ECS lifecycle hooks).
    pub gates: bool,
    /// The result's words when it succeeds.
    pub success: String,
}

/// What `wait` follows on a live service.
#[derive(Debug)]
pub enum Current {
    /// Nothing in flight: the service is as it is (the result's detail, and the revision it
    /// runs).
    Settled {
        detail: String,
        task_definition_arn: String,
    },
    /// A deployment in flight.
    Follow(Follow),
}

/// The rollback of a deploy that ended without success ([`Controller::roll_back`]).
#[derive(Debug, Clone, Copy)]
pub struct Undo<'a> {
    pub local: &'a Local,
    pub cause: &'a Cause,
    /// The deployment being undone.
    pub ours: &'a Ours,
    /// The deploy created the service.
    pub created: bool,
    /// The task definition the service ran before the deploy.
    pub previous: Option<&'a str>,
    /// `rollout.rollback` and not `--no-rollback`.
    pub rollback_enabled: bool,
    /// The PAUSE hook our deployment was left waiting on (a cancel during a gate).
    pub waiting_hook: Option<&'a str>,
    /// Where following the deploy was to stop (CodeDeploy's `terminated` waits for the
    /// original task set's end).
    pub deploy_until: &'a Until,
    /// Until when the rollback is followed.
    pub until: Instant,
    /// A cancelled run's rollback: not cut short by the same cancellation.
    pub cancelled: bool,
}

/// Options of `rollback`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RollbackOptions {
    pub no_wait: bool,
    pub deregister: bool,
    /// `--revision N`: return to this revision of the family, whatever ECS's record says.
    pub revision: Option<i64>,
    /// Decide and report the rollback; change nothing (`--dry-run`).
    pub dry_run: bool,
    /// `--with-previous-task-definition`: the family's ACTIVE revision before the running
    /// one, whatever is in flight and whatever ECS's record says (ecspresso's legacy rule).
    pub with_previous: bool,
}

/// The first line of an error, for the warnings and details that quote it.
pub(crate) fn first_line(e: &Error) -> String {
    e.diagnostics
        .first()
        .map(|d| d.message.clone())
        .unwrap_or_default()
}

/// The service a command needs does not exist: an AWS-side condition (exit 7), like a
/// missing cluster.
pub(crate) fn service_not_found(service: &str, cluster: &str, region: &str) -> Error {
    Error::new(
        crate::error::ErrorKind::Aws,
        Diagnostic::error(format!(
            "service {service} not found in cluster {cluster} (region {region})"
        ))
        .hint(
            "deploy it first (cortado deploy), or check cluster, service and region in the config",
        ),
    )
}

/// The service definition an AppSpec or a plan reads: the config's, else the live one's.
pub(crate) fn service_json_or_live(local: &Local, live: Option<&Service>) -> Result<Option<Value>> {
    if let Some(s) = &local.service_json {
        return Ok(Some(s.clone()));
    }
    live.map(crate::aws::json::service_definition_json)
        .transpose()
}
