//! The poller of one CodeDeploy deployment: GetDeployment (and the rollback deployment's,
//! once there is one), the deployment target's lifecycle events and task sets, the stopped
//! tasks and target health of the replacement task set; one [`Observation`] per poll, with
//! the replacement as our PRIMARY deployment. It judges what it saw by CodeDeploy's rules
//! ([`super::rules`]).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::rules::{CodeDeployView, judge, judge_rollback};
use crate::aws::codedeploy::TaskSetFacts;
use crate::aws::types::ecs::DesiredStatus;
use crate::aws::{CallCounter, Clients, TaskFilter, counted};
use crate::deploy::core::poll::{Goal, Observation, Target, Traffic};
use crate::deploy::core::state::{DeploymentStatus, ServiceStatus, Strategy};
use crate::deploy::core::verdict::{
    DeploymentView, FastFail, Ours, Snapshot, StoppedTask, TargetView, Verdict,
};
use crate::deploy::observe::{TARGET_HEALTH_REFRESH, stopped_task, task_ips};
use crate::deploy::watch::{ServiceObserver, judge_target};
use crate::error::Result;

/// Polls one CodeDeploy deployment: GetDeployment (and the rollback deployment's, once
/// there is one), the deployment target's lifecycle events and task sets, and the stopped
/// tasks of the replacement task set. Those tasks were started by the replacement task set
/// CodeDeploy created: they are reported as started by our CodeDeploy deployment, so the
/// fast-fail rules and the stop counts apply to them unchanged.
pub(crate) struct CdObserver {
    clients: Clients,
    cluster: String,
    deployment_id: String,
    wait_terminated: bool,
    stopped: BTreeMap<String, StoppedTask>,
    /// The replacement's task counts last seen: stopped tasks are looked up when they move.
    counts: Option<(i64, i64, i64)>,
    /// Target group ARNs by name (task sets name their group).
    tg_arns: BTreeMap<String, Option<String>>,
    /// The replacement's running tasks' IPs, and the targets of its group.
    ips: Vec<String>,
    targets: Vec<TargetView>,
    health_at: Option<std::time::Instant>,
    /// The calls this observer's polls made.
    calls: CallCounter,
    /// What the last poll saw, for the verdict.
    last: Option<CodeDeployView>,
}

impl CdObserver {
    async fn running_ips(&self, task_set: &str) -> Result<Vec<String>> {
        let arns = self
            .clients
            .list_tasks(
                &self.cluster,
                &TaskFilter::StartedBy(task_set.to_string()),
                DesiredStatus::Running,
            )
            .await?;
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .clients
            .describe_tasks(&self.cluster, &arns)
            .await?
            .iter()
            .filter(|t| t.last_status() == Some("RUNNING"))
            .flat_map(task_ips)
            .collect())
    }

    async fn target_health(&self, arn: &str) -> Result<Vec<TargetView>> {
        Ok(self
            .clients
            .describe_target_health(arn)
            .await?
            .iter()
            .map(|d| {
                let health = d.target_health();
                TargetView {
                    target_group_arn: arn.to_string(),
                    id: d
                        .target()
                        .and_then(|t| t.id())
                        .unwrap_or_default()
                        .to_string(),
                    state: health.and_then(|h| h.state()).map(|s| s.as_str()).into(),
                    reason: health
                        .and_then(|h| h.reason())
                        .map(|r| r.as_str().to_string()),
                    description: health
                        .and_then(|h| h.description())
                        .map(crate::untrusted::one_line),
                }
            })
            .collect())
    }

    pub(crate) fn new(
        clients: &Clients,
        cluster: &str,
        deployment_id: &str,
        wait_terminated: bool,
    ) -> Self {
        CdObserver {
            clients: clients.clone(),
            cluster: cluster.to_string(),
            deployment_id: deployment_id.to_string(),
            wait_terminated,
            stopped: BTreeMap::new(),
            counts: None,
            tg_arns: BTreeMap::new(),
            ips: Vec::new(),
            targets: Vec::new(),
            health_at: None,
            calls: CallCounter::default(),
            last: None,
        }
    }

    async fn view(&mut self) -> Result<CodeDeployView> {
        let deployment = self
            .clients
            .codedeploy_deployment(&self.deployment_id)
            .await?;
        let rollback_status = match &deployment.rollback_deployment_id {
            Some(id) => Some(self.clients.codedeploy_deployment(id).await?.status),
            None => None,
        };
        let target = self.clients.codedeploy_target(&self.deployment_id).await?;
        let (events, sets) = target.map(|t| (t.events, t.task_sets)).unwrap_or_default();
        let label = |l: &str| {
            sets.iter()
                .find(|s| s.label.eq_ignore_ascii_case(l))
                .cloned()
        };
        let green = label("Green");
        let blue = label("Blue");
        if let Some(g) = &green {
            let counts = (g.desired, g.running, g.pending);
            let moved = self.counts != Some(counts);
            if moved && !g.id.is_empty() {
                self.counts = Some(counts);
                self.ips = self.running_ips(&g.id).await?;
                let arns = self
                    .clients
                    .list_tasks(
                        &self.cluster,
                        &TaskFilter::StartedBy(g.id.clone()),
                        DesiredStatus::Stopped,
                    )
                    .await?;
                let new: Vec<String> = arns
                    .into_iter()
                    .filter(|a| !self.stopped.contains_key(a))
                    .collect();
                if !new.is_empty() {
                    for t in self.clients.describe_tasks(&self.cluster, &new).await? {
                        if t.last_status() != Some("STOPPED") {
                            continue;
                        }
                        let mut st = stopped_task(&t);
                        st.started_by = Some(self.deployment_id.clone());
                        self.stopped.insert(st.task_arn.clone(), st);
                    }
                }
            }
            // The replacement's target group: asked when its tasks move, else every 10 s.
            let due = moved
                || self
                    .health_at
                    .is_none_or(|t| t.elapsed() >= TARGET_HEALTH_REFRESH);
            if let Some(name) = g.target_group.clone().filter(|_| due && g.running > 0) {
                if !self.tg_arns.contains_key(&name) {
                    let arn = self.clients.target_group_arn_by_name(&name).await?;
                    self.tg_arns.insert(name.clone(), arn);
                }
                if let Some(Some(arn)) = self.tg_arns.get(&name).cloned() {
                    self.targets = self.target_health(&arn).await?;
                    self.health_at = Some(std::time::Instant::now());
                }
            }
        }
        Ok(CodeDeployView {
            deployment,
            rollback_status,
            events,
            green,
            blue,
            wait_terminated: self.wait_terminated,
        })
    }
}

/// A task set as a deployment entry, for the live view's counts.
fn set_view(s: &TaskSetFacts, id: &str, status: DeploymentStatus, td: &str) -> DeploymentView {
    DeploymentView {
        id: id.to_string(),
        status,
        task_definition_arn: td.to_string(),
        desired: s.desired as i32,
        pending: s.pending as i32,
        running: s.running as i32,
        ..DeploymentView::default()
    }
}

/// One observation from a CodeDeploy view: the replacement as our PRIMARY deployment, the
/// original beside it, the traffic split by task set, the stopped tasks.
pub(crate) fn observation(
    ours: &Ours,
    cd: CodeDeployView,
    stopped: Vec<StoppedTask>,
    (targets, our_task_ips): (Vec<TargetView>, Vec<String>),
) -> Observation {
    let has_load_balancer = !targets.is_empty();
    let mut deployments = Vec::new();
    if let Some(g) = &cd.green {
        deployments.push(set_view(
            g,
            &ours.deployment_id,
            DeploymentStatus::Primary,
            &ours.task_definition_arn,
        ));
    }
    if let Some(b) = &cd.blue {
        deployments.push(set_view(b, &b.id, DeploymentStatus::Active, ""));
    }
    let tg = |s: &Option<TaskSetFacts>| {
        s.as_ref()
            .map(|s| s.target_group.clone().unwrap_or_else(|| s.id.clone()))
    };
    let traffic = match (tg(&cd.green), &cd.green) {
        (Some(green_tg), Some(g)) => {
            let mut production = vec![(green_tg.clone(), g.traffic_weight.round() as i32)];
            if let (Some(blue_tg), Some(b)) = (tg(&cd.blue), &cd.blue) {
                production.push((blue_tg, b.traffic_weight.round() as i32));
            }
            Some(Traffic {
                production,
                test: Vec::new(),
                green: vec![green_tg],
            })
        }
        _ => None,
    };
    Observation {
        snapshot: Snapshot {
            service_status: ServiceStatus::Active,
            deployments,
            stopped_tasks: stopped,
            targets,
            our_task_ips,
            has_load_balancer,
            load_balancers: usize::from(has_load_balancer),
            strategy: Strategy::BlueGreen,
            ..Snapshot::default()
        },
        traffic,
        // A CodeDeploy deployment's stages are its lifecycle events.
        stage: cd.stage(),
        rollout: Some("CodeDeploy blue/green"),
        ..Observation::default()
    }
}

impl ServiceObserver for CdObserver {
    fn observe<'a>(&'a mut self, ours: &'a Ours) -> BoxFuture<'a, Result<Observation>> {
        Box::pin(async move {
            let calls = self.calls.clone();
            counted(&calls, async {
                let cd = self.view().await?;
                self.last = Some(cd.clone());
                let stopped = self.stopped.values().cloned().collect();
                Ok(observation(
                    ours,
                    cd,
                    stopped,
                    (self.targets.clone(), self.ips.clone()),
                ))
            })
            .await
        })
    }

    fn judge(
        &self,
        target: &Target,
        snap: &Snapshot,
        rules: &FastFail,
        unhealthy_for: Duration,
    ) -> Verdict {
        let Some(cd) = &self.last else {
            return Verdict::Pending("CodeDeploy not read yet".into());
        };
        match target.goal {
            Goal::Deployed => judge(&target.ours, snap, cd, rules, unhealthy_for),
            Goal::RolledBack(_) => judge_rollback(cd),
            Goal::Restores(_) => judge_target(target, snap, rules, unhealthy_for),
        }
    }

    fn calls(&self) -> usize {
        self.calls.get()
    }
}
