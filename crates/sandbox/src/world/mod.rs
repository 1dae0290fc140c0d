//! The simulated world: clusters, task definitions, services, deployments, tasks, and the
//! event queue that moves them through time.
//!
//! Receives calls from the API handlers (`ecs/`) and virtual timestamps from the clock; hands
//! on state that the handlers render as AWS JSON. Time only moves in [`World::advance`], which
//! pops due events from a binary heap in time order: the work of one advance is proportional to
//! the events due, and nothing runs between requests.
//!
//! [`World`] holds the state of every emulated service; the ECS part of it is in [`model`].
//! [`events`] is the event loop and the task lifecycle, [`tasks`] starts and stops tasks,
//! [`scheduler`] runs a rolling deployment, [`strategy`] a blue/green, canary or linear one,
//! [`deployments`] fails and rolls them back.

mod deployments;
mod events;
pub mod model;
mod scheduler;
mod strategy;
mod tasks;

use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use deployments::cb_threshold;
pub use model::{
    BgState, Binding, Cluster, Container, Deployment, Ev, HookRun, Plan, Revision, Sched, Service,
    ServiceDeployment, Task,
};

use crate::autoscaling::AutoScaling;
use crate::cloudformation::CloudFormation;
use crate::codedeploy::CodeDeploy;
use crate::ecr::Ecr;
use crate::elbv2::Elbv2;
use crate::express::ExpressService;
use crate::faults::Faults;
use crate::iam::Iam;
use crate::logs::Logs;
use crate::s3::S3;
use crate::secretsmanager::Secrets;
use crate::ssm::Ssm;
use crate::util::{Rng, ts};

pub const ACCOUNT: &str = "123456789012";
pub const MAX_EVENTS: usize = 100;
/// Stopped tasks stay describable this long (virtual seconds), like ECS's hour.
pub const STOPPED_TASK_TTL: f64 = 3600.0;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct World {
    pub region: String,
    pub account: String,
    pub now: f64,
    pub rng: Rng,
    pub seq: u64,
    pub clusters: BTreeMap<String, Cluster>,
    /// Family -> revisions (index = revision - 1), each the described task definition.
    pub taskdefs: BTreeMap<String, Vec<Value>>,
    pub services: BTreeMap<String, Service>,
    pub tasks: BTreeMap<String, Task>,
    pub sds: BTreeMap<String, ServiceDeployment>,
    pub revisions: BTreeMap<String, Revision>,
    pub tags: BTreeMap<String, Vec<Value>>,
    pub queue: BinaryHeap<Sched>,
    pub faults: Faults,
    pub events_processed: u64,
    #[serde(default)]
    pub elbv2: Elbv2,
    #[serde(default)]
    pub ecr: Ecr,
    #[serde(default)]
    pub codedeploy: CodeDeploy,
    #[serde(default)]
    pub ssm: Ssm,
    #[serde(default)]
    pub logs: Logs,
    /// Express Mode services, by service key.
    #[serde(default)]
    pub express: BTreeMap<String, ExpressService>,
    #[serde(default)]
    pub autoscaling: AutoScaling,
    #[serde(default)]
    pub iam: Iam,
    #[serde(default)]
    pub secrets: Secrets,
    #[serde(default)]
    pub cloudformation: CloudFormation,
    #[serde(default)]
    pub s3: S3,
    /// RunTask client tokens by `cluster/token`: the request (without its token) and the
    /// answer, replayed for a retry with the same token (ECS's idempotency for RunTask).
    #[serde(default)]
    pub run_tokens: BTreeMap<String, (Value, Value)>,
    /// Access keys STS AssumeRole made, and the account of the role each belongs to: a
    /// request signed with one acts as that account (the ARNs it makes carry its id).
    #[serde(default)]
    pub caller_accounts: BTreeMap<String, String>,
}

/// Task ids as ECS lists them in service events: `(task a) (task b)`.
pub fn task_list(ids: &[String]) -> String {
    ids.iter()
        .map(|t| format!("(task {t})"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn service_key(cluster: &str, name: &str) -> String {
    format!("{cluster}/{name}")
}

impl World {
    pub fn new(region: &str, seed: u64, now: f64) -> Self {
        World {
            region: region.to_string(),
            account: ACCOUNT.to_string(),
            now,
            rng: Rng::new(seed),
            seq: 0,
            clusters: BTreeMap::new(),
            taskdefs: BTreeMap::new(),
            services: BTreeMap::new(),
            tasks: BTreeMap::new(),
            sds: BTreeMap::new(),
            revisions: BTreeMap::new(),
            tags: BTreeMap::new(),
            queue: BinaryHeap::new(),
            faults: Faults::default(),
            events_processed: 0,
            elbv2: Elbv2::new(region, ACCOUNT),
            ecr: Ecr::new(region, ACCOUNT),
            codedeploy: Default::default(),
            ssm: Default::default(),
            logs: Default::default(),
            express: Default::default(),
            autoscaling: Default::default(),
            run_tokens: Default::default(),
            iam: Default::default(),
            secrets: Default::default(),
            cloudformation: Default::default(),
            s3: Default::default(),
            caller_accounts: Default::default(),
        }
    }

    /// The same (empty) world standing in for `account`: its ARNs and its ECR registry.
    pub fn in_account(mut self, account: &str) -> Self {
        self.account = account.to_string();
        self.elbv2 = Elbv2::new(&self.region, account);
        self.ecr = Ecr::new(&self.region, account);
        self
    }

    /// The tasks of a service (through its index).
    pub fn svc_tasks<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a Task> + 'a {
        let ids: &'a [String] = self
            .services
            .get(key)
            .map(|s| s.task_ids.as_slice())
            .unwrap_or(&[]);
        ids.iter().filter_map(|id| self.tasks.get(id))
    }

    pub fn arn(&self, resource: &str) -> String {
        format!("arn:aws:ecs:{}:{}:{resource}", self.region, self.account)
    }

    pub fn new_event(&mut self, key: &str, message: String) {
        let id = format!(
            "{}-{}-{}-{}-{}",
            self.rng.hex(8),
            self.rng.hex(4),
            self.rng.hex(4),
            self.rng.hex(4),
            self.rng.hex(12)
        );
        let now = self.now;
        if let Some(s) = self.services.get_mut(key) {
            s.events
                .push_front(json!({"id": id, "createdAt": ts(now), "message": message}));
            s.events.truncate(MAX_EVENTS);
        }
    }

    pub(crate) fn svc_label(&self, key: &str) -> String {
        self.services
            .get(key)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    /// Hook for the ECR model: whether an image reference points at a missing ECR image.
    /// Fault segments in the tag are scenario notes, not part of the image's name.
    pub fn image_missing(&self, image: &str) -> bool {
        self.ecr.resolve(&crate::faults::without_faults(image)) == Some(false)
    }

    pub fn find_taskdef(&self, arn: &str) -> Option<&Value> {
        let rest = arn
            .rsplit_once(":task-definition/")
            .map(|(_, r)| r)
            .unwrap_or(arn);
        let (family, rev) = rest.rsplit_once(':')?;
        let rev: usize = rev.parse().ok()?;
        self.taskdefs.get(family)?.get(rev.checked_sub(1)?)
    }
}
