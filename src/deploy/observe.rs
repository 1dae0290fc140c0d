//! The AWS-backed [`Observer`]: one poll of a cluster for every service the run follows.
//!
//! Per poll: DescribeServices (10 services a call), DescribeServiceDeployments for our
//! service-deployment ARNs (20 a call), DescribeTargetHealth for the services' target groups.
//! ListTasks/DescribeTasks run only when a service's task counts changed since the last poll
//! (to name stopped tasks of our deployment and find our tasks' IPs), so a steady rollout
//! costs one or two calls a poll.
//!
//! API budget: DescribeServices runs at most [`DESCRIBE_SERVICES_PER_SERVICE_MINUTE`] times
//! per service-minute. Between those full polls, a poll asks only DescribeServiceDeployments
//! (the authoritative status of our deployment) and answers from the last full poll; when that
//! status changes, a full poll follows at once, so the verdict still lands within a poll.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{ActionTypeEnum, Rule};

use super::core::poll::Target;
use super::core::poll::{LbPair, Observation, ServiceEvent, Traffic};
use super::core::rollback::DeploymentRecord;
use super::core::state::{
    LifecycleStage, ServiceDeploymentStatus, ServiceStatus, Strategy, TargetState,
};
use super::core::verdict::{
    DeploymentView, HookView, Ours, ServiceDeploymentView, Snapshot, StoppedTask, TargetView,
};
use super::core::verdict::{FastFail, Verdict};
use super::watch::{Observer, ServiceObserver, Watcher, judge_target};
use crate::aws::types::ecs::{DesiredStatus, Service, ServiceDeployment, Task};
use crate::aws::{CallCounter, Clients, TaskFilter, counted};
use crate::error::Result;

/// The DescribeServices budget per service-minute. With DescribeServiceDeployments in every
/// poll and DescribeTargetHealth when it matters, a single service stays within the run's
/// budget of 60 calls per service-minute ([`super::watch::CALLS_PER_SERVICE_MINUTE`]) and
/// leaves room for the light polls that keep the verdict prompt.
pub(crate) const DESCRIBE_SERVICES_PER_SERVICE_MINUTE: f64 = 20.0;

/// Target health is asked again at least this often while nothing else moves (the
/// unhealthy-target rule counts minutes; the live view shows health changes).
pub(crate) const TARGET_HEALTH_REFRESH: Duration = Duration::from_secs(10);

/// The shortest gap between two full polls of `k` services (one DescribeServices call per 10).
pub(crate) fn full_poll_gap(k: usize) -> Duration {
    let k = k.max(1) as f64;
    let calls_per_poll = (k / 10.0).ceil();
    // calls_per_poll * polls_per_minute / k <= budget
    let polls_per_minute = DESCRIBE_SERVICES_PER_SERVICE_MINUTE * k / calls_per_poll;
    Duration::from_secs_f64(60.0 / polls_per_minute).max(Duration::from_millis(500))
}

/// Polls one cluster through the AWS SDK.
pub(crate) struct AwsObserver<'a> {
    pub clients: &'a Clients,
    pub cluster: String,
    /// Per service: the counts seen last, to fetch tasks only when they move.
    counts: BTreeMap<String, Vec<(String, i32, i32, i32)>>,
    /// Per service: stopped tasks already described, and our running tasks' IPs.
    stopped: BTreeMap<String, BTreeMap<String, StoppedTask>>,
    ips: BTreeMap<String, Vec<String>>,
    /// The last full poll: for which services, what it saw, and when.
    last_full: Option<(Vec<String>, Vec<Observation>, Instant)>,
    /// Per service: the targets seen last, when, and our service deployment's status then.
    targets: BTreeMap<String, (Vec<TargetView>, Instant, Option<ServiceDeploymentStatus>)>,
    /// Per service: the traffic split read last from the listener rules.
    traffic: BTreeMap<String, Traffic>,
    /// The calls this observer's polls made (not the run's other calls).
    calls: CallCounter,
}

impl<'a> AwsObserver<'a> {
    pub(crate) fn new(clients: &'a Clients, cluster: &str) -> Self {
        AwsObserver {
            clients,
            cluster: cluster.to_string(),
            counts: BTreeMap::new(),
            stopped: BTreeMap::new(),
            ips: BTreeMap::new(),
            last_full: None,
            targets: BTreeMap::new(),
            traffic: BTreeMap::new(),
            calls: CallCounter::default(),
        }
    }

    /// Between full polls: refreshes only our service deployments' status in the last full
    /// observation. None when a status changed (a full poll is due at once) or no cache fits.
    async fn light(&mut self, services: &[(String, Ours)]) -> Result<Option<Vec<Observation>>> {
        let names: Vec<String> = services.iter().map(|(s, _)| s.clone()).collect();
        let Some((cached_names, cached, at)) = &self.last_full else {
            return Ok(None);
        };
        if *cached_names != names || at.elapsed() >= full_poll_gap(names.len()) {
            return Ok(None);
        }
        let arns: Vec<String> = services
            .iter()
            .filter_map(|(_, o)| o.service_deployment_arn.clone())
            .collect();
        if arns.is_empty() {
            return Ok(Some(cached.clone()));
        }
        let sds = self.clients.describe_service_deployments(&arns).await?;
        let mut out = cached.clone();
        for (obs, (_, ours)) in out.iter_mut().zip(services) {
            let fresh = our_service_deployment(&sds, ours);
            // A new status, lifecycle stage or hook state is worth a full poll at once (the
            // traffic split and target health move with the stages).
            let key = |v: Option<&ServiceDeploymentView>| {
                v.map(|v| {
                    (
                        v.status.clone(),
                        v.lifecycle_stage.clone(),
                        v.hooks.iter().map(|h| h.status.clone()).collect::<Vec<_>>(),
                    )
                })
            };
            if key(fresh.as_ref()) != key(obs.snapshot.service_deployment.as_ref()) {
                return Ok(None);
            }
            obs.snapshot.service_deployment = fresh;
        }
        // While production traffic shifts in steps (canary, linear), each step is a rule
        // change within one stage: read the rules in light polls too, so no step is missed.
        for (obs, (name, _)) in out.iter_mut().zip(services) {
            let shifting = obs.snapshot.service_deployment.as_ref().is_some_and(|sd| {
                sd.lifecycle_stage == LifecycleStage::ProductionTrafficShift
                    && sd.status == ServiceDeploymentStatus::InProgress
            });
            let rules: Vec<String> = obs.pairs.iter().flat_map(LbPair::rules).cloned().collect();
            if !shifting || rules.is_empty() {
                continue;
            }
            let described = self.clients.describe_rules_by_arn(&rules).await?;
            let mut traffic = traffic_of(&obs.pairs, &described);
            if let Some(t) = &obs.traffic {
                traffic.green = t.green.clone();
            }
            self.traffic.insert(name.clone(), traffic.clone());
            obs.traffic = Some(traffic);
        }
        Ok(Some(out))
    }

    /// Refreshes stopped tasks of our deployment and the IPs of our running tasks.
    async fn refresh_tasks(&mut self, service: &str, ours: &Ours, has_lb: bool) -> Result<()> {
        let filter = TaskFilter::StartedBy(ours.deployment_id.clone());
        let stopped_arns = self
            .clients
            .list_tasks(&self.cluster, &filter, DesiredStatus::Stopped)
            .await?;
        let known = self.stopped.entry(service.to_string()).or_default();
        let new: Vec<String> = stopped_arns
            .into_iter()
            .filter(|a| !known.contains_key(a))
            .collect();
        let mut running_arns = Vec::new();
        if has_lb {
            running_arns = self
                .clients
                .list_tasks(&self.cluster, &filter, DesiredStatus::Running)
                .await?;
        }
        let wanted: Vec<String> = new.iter().chain(running_arns.iter()).cloned().collect();
        if wanted.is_empty() {
            self.ips.insert(service.to_string(), Vec::new());
            return Ok(());
        }
        let tasks = self.clients.describe_tasks(&self.cluster, &wanted).await?;
        let mut ips = Vec::new();
        for t in &tasks {
            let arn = t.task_arn().unwrap_or_default().to_string();
            // A stopping task already carries its reason; report it as soon as it has one.
            let stopped = t.last_status() == Some("STOPPED")
                || (t.desired_status() == Some("STOPPED") && t.stopped_reason().is_some());
            if new.contains(&arn) && stopped {
                self.stopped
                    .entry(service.to_string())
                    .or_default()
                    .insert(arn, stopped_task(t));
            } else if running_arns.contains(&arn) {
                ips.extend(task_ips(t));
            }
        }
        self.ips.insert(service.to_string(), ips);
        Ok(())
    }
}

impl AwsObserver<'_> {
    /// The health of every target of `target_groups`.
    async fn target_health(&self, target_groups: &BTreeSet<String>) -> Result<Vec<TargetView>> {
        let mut targets = Vec::new();
        for tg in target_groups {
            for d in self.clients.describe_target_health(tg).await? {
                let health = d.target_health();
                targets.push(TargetView {
                    target_group_arn: tg.clone(),
                    id: d
                        .target()
                        .and_then(|t| t.id())
                        .unwrap_or_default()
                        .to_string(),
                    state: health.and_then(|h| h.state()).map(|s| s.as_str()).into(),
                    reason: health
                        .and_then(|h| h.reason())
                        .map(|r| r.as_str().to_string()),
                    description: health.and_then(|h| h.description()).map(ecs_text),
                });
            }
        }
        Ok(targets)
    }
}

impl Observer for AwsObserver<'_> {
    fn calls(&self) -> usize {
        self.calls.get()
    }

    async fn observe(&mut self, services: &[(String, Ours)]) -> Result<Vec<Observation>> {
        let calls = self.calls.clone();
        counted(&calls, async {
            if let Some(obs) = self.light(services).await? {
                return Ok(obs);
            }
            let obs = self.full(services).await?;
            self.last_full = Some((
                services.iter().map(|(s, _)| s.clone()).collect(),
                obs.clone(),
                Instant::now(),
            ));
            Ok(obs)
        })
        .await
    }
}

impl AwsObserver<'_> {
    /// A full poll: DescribeServices, service deployments, target health, tasks on change.
    async fn full(&mut self, services: &[(String, Ours)]) -> Result<Vec<Observation>> {
        let names: Vec<String> = services.iter().map(|(s, _)| s.clone()).collect();
        // Service deployments first, then the services: the two reads are not one snapshot,
        // and in this order `deployments[]` is never older than the status. A service
        // deployment STOPPED because another actor started a newer one then always comes
        // with that newer deployment in the list (read the other way round, the verdict saw
        // "stopped" beside our own PRIMARY and took it for a rollback it then waited for).
        let arns: Vec<String> = services
            .iter()
            .filter_map(|(_, o)| o.service_deployment_arn.clone())
            .collect();
        let sds: Vec<ServiceDeployment> = if arns.is_empty() {
            Vec::new()
        } else {
            self.clients.describe_service_deployments(&arns).await?
        };
        let described = self
            .clients
            .describe_services(&self.cluster, &names)
            .await?;
        let mut out = Vec::new();
        for ((name, ours), svc) in services.iter().zip(described) {
            out.push(match svc {
                Some(svc) => self.observe_service(name, ours, &svc, &sds).await?,
                None => Observation {
                    snapshot: Snapshot {
                        service_status: ServiceStatus::Missing,
                        ..Snapshot::default()
                    },
                    ..Observation::default()
                },
            });
        }
        Ok(out)
    }

    /// What the full poll saw of one service, with the reads that only some polls need
    /// (tasks, target health, listener rules) made when they can tell something new.
    async fn observe_service(
        &mut self,
        name: &str,
        ours: &Ours,
        svc: &Service,
        sds: &[ServiceDeployment],
    ) -> Result<Observation> {
        let deployments = deployment_views(svc);
        let strategy = strategy_of(svc);
        let pairs = lb_pairs(svc, &strategy);
        let target_groups: BTreeSet<String> = pairs
            .iter()
            .flat_map(LbPair::target_groups)
            .cloned()
            .collect();
        let has_lb = !target_groups.is_empty();
        let moved = self
            .tasks_on_change(name, ours, &deployments, has_lb)
            .await?;
        let service_deployment = our_service_deployment(sds, ours);
        let sd_status = service_deployment.as_ref().map(|v| v.status.clone());
        let targets = self
            .targets_on_change(name, moved, sd_status, &target_groups)
            .await?;
        let traffic = self
            .traffic_on_change(name, &pairs, service_deployment.as_ref(), &targets)
            .await?;
        let mut stopped: Vec<StoppedTask> = self
            .stopped
            .get(name)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        stopped.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        Ok(Observation {
            snapshot: Snapshot {
                service_status: ServiceStatus::parse(svc.status().unwrap_or("ACTIVE")),
                deployments,
                service_deployment,
                stopped_tasks: stopped,
                targets,
                our_task_ips: self.ips.get(name).cloned().unwrap_or_default(),
                has_load_balancer: has_lb,
                load_balancers: pairs.len(),
                strategy,
                early_success: svc
                    .deployment_configuration()
                    .and_then(|c| c.early_success_criteria())
                    .is_some_and(|e| e.enable()),
            },
            events: svc
                .events()
                .iter()
                .map(|e| ServiceEvent {
                    id: e.id().unwrap_or_default().to_string(),
                    at: e.created_at().map(|t| t.as_secs_f64()),
                    message: e.message().unwrap_or_default().into(),
                })
                .collect(),
            traffic,
            pairs,
            our_started_at: svc
                .deployments()
                .iter()
                .find(|d| d.id() == Some(ours.deployment_id.as_str()))
                .and_then(|d| d.created_at())
                .map(|t| t.as_secs_f64()),
            stage: None,
            rollout: None,
        })
    }

    /// Refreshes the service's tasks when the counts say it can tell something new; returns
    /// whether the counts moved since the last poll.
    async fn tasks_on_change(
        &mut self,
        name: &str,
        ours: &Ours,
        deployments: &[DeploymentView],
        has_lb: bool,
    ) -> Result<bool> {
        let counts: Vec<(String, i32, i32, i32)> = deployments
            .iter()
            .map(|d| (d.id.clone(), d.running, d.pending, d.failed))
            .collect();
        // Fetch tasks when counts moved, or when ECS counts more failed tasks of ours than
        // we have reasons for (they may have been still stopping at the last look).
        let our_failed = deployments
            .iter()
            .find(|d| d.id == ours.deployment_id)
            .map_or(0, |d| d.failed.max(0) as usize);
        let known_stopped = self.stopped.get(name).map_or(0, |m| m.len());
        let before = self.counts.get(name);
        let moved = before != Some(&counts);
        // Without a load balancer the tasks only name our deployment's stopped tasks: ask
        // when one of ours may have left (running or running+pending fell, failed rose),
        // not while the rollout merely progresses (pending -> running, old tasks drain).
        let lost = lost_a_task(before, &counts, &ours.deployment_id);
        if (if has_lb { moved } else { lost }) || our_failed > known_stopped {
            self.refresh_tasks(name, ours, has_lb).await?;
        }
        self.counts.insert(name.to_string(), counts);
        Ok(moved)
    }

    /// The service's target health, read again only when it can tell something new: tasks
    /// moved, our deployment's status changed, a target is in flux (initial or unhealthy: the
    /// verdicts wait on those; draining and unused targets of the other revision are not), or
    /// the last look is TARGET_HEALTH_REFRESH old.
    async fn targets_on_change(
        &mut self,
        name: &str,
        moved: bool,
        sd_status: Option<ServiceDeploymentStatus>,
        target_groups: &BTreeSet<String>,
    ) -> Result<Vec<TargetView>> {
        let fresh = match self.targets.get(name) {
            None => true,
            Some((cached, at, status)) => {
                moved
                    || *status != sd_status
                    || cached
                        .iter()
                        .any(|t| matches!(t.state, TargetState::Initial | TargetState::Unhealthy))
                    || at.elapsed() >= TARGET_HEALTH_REFRESH
            }
        };
        if fresh {
            let targets = if target_groups.is_empty() {
                Vec::new()
            } else {
                self.target_health(target_groups).await?
            };
            self.targets
                .insert(name.to_string(), (targets, Instant::now(), sd_status));
        }
        Ok(self
            .targets
            .get(name)
            .map(|t| t.0.clone())
            .unwrap_or_default())
    }

    /// The traffic split, read while our deployment can move it (and once at the start), with
    /// the target groups our tasks are registered in.
    async fn traffic_on_change(
        &mut self,
        name: &str,
        pairs: &[LbPair],
        service_deployment: Option<&ServiceDeploymentView>,
        targets: &[TargetView],
    ) -> Result<Option<Traffic>> {
        let rules: Vec<String> = pairs.iter().flat_map(LbPair::rules).cloned().collect();
        let in_flight = service_deployment.is_some_and(|sd| {
            !matches!(
                sd.status,
                ServiceDeploymentStatus::Successful
                    | ServiceDeploymentStatus::RollbackSuccessful
                    | ServiceDeploymentStatus::Stopped
            )
        });
        if !rules.is_empty() && (in_flight || !self.traffic.contains_key(name)) {
            let described = self.clients.describe_rules_by_arn(&rules).await?;
            self.traffic
                .insert(name.to_string(), traffic_of(pairs, &described));
        }
        let our_ips = self.ips.get(name).cloned().unwrap_or_default();
        Ok(self.traffic.get(name).cloned().map(|mut t| {
            t.green = targets
                .iter()
                .filter(|t| our_ips.contains(&t.id))
                .map(|t| t.target_group_arn.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            t
        }))
    }
}

/// The observer of a run's one watch: each poll asks every cluster once (DescribeServices
/// batching that cluster's services), so a run deploying many services keeps one poll loop;
/// a deployment with a poller of its own (a controller that is not ECS, such as CodeDeploy)
/// is polled beside them and judged by it.
pub(crate) struct ClusterObservers<'a> {
    clients: &'a Clients,
    observers: Vec<AwsObserver<'a>>,
    /// The cluster of each service the run follows through DescribeServices.
    cluster_of: BTreeMap<String, String>,
    /// The services with a poller of their own.
    own: BTreeMap<String, Box<dyn ServiceObserver>>,
}

impl<'a> ClusterObservers<'a> {
    /// `services`: (service, cluster) pairs. Service names must be unique in the run.
    pub(crate) fn new(clients: &'a Clients, services: &[(String, String)]) -> Self {
        let mut o = ClusterObservers {
            clients,
            observers: Vec::new(),
            cluster_of: BTreeMap::new(),
            own: BTreeMap::new(),
        };
        for (service, cluster) in services {
            o.add(service, cluster);
        }
        o
    }

    /// A watch of one service polled by `watcher`.
    pub(crate) fn of(clients: &'a Clients, service: &str, watcher: Watcher) -> Self {
        let mut o = ClusterObservers::new(clients, &[]);
        o.join(service, watcher);
        o
    }

    fn add(&mut self, service: &str, cluster: &str) {
        if !self.observers.iter().any(|o| o.cluster == cluster) {
            self.observers.push(AwsObserver::new(self.clients, cluster));
        }
        self.own.remove(service);
        self.cluster_of
            .insert(service.to_string(), cluster.to_string());
    }
}

impl Observer for ClusterObservers<'_> {
    fn join(&mut self, service: &str, watcher: Watcher) {
        match watcher {
            Watcher::Cluster(cluster) => self.add(service, &cluster),
            Watcher::Own(poller) => {
                self.cluster_of.remove(service);
                self.own.insert(service.to_string(), poller);
            }
        }
    }

    fn calls(&self) -> usize {
        self.observers.iter().map(|o| o.calls()).sum::<usize>()
            + self.own.values().map(|o| o.calls()).sum::<usize>()
    }

    fn judge(
        &self,
        target: &Target,
        snap: &Snapshot,
        rules: &FastFail,
        unhealthy_for: Duration,
    ) -> Verdict {
        match self.own.get(&target.service) {
            Some(poller) => poller.judge(target, snap, rules, unhealthy_for),
            None => judge_target(target, snap, rules, unhealthy_for),
        }
    }

    async fn observe(&mut self, services: &[(String, Ours)]) -> Result<Vec<Observation>> {
        let mut out: Vec<Option<Observation>> = vec![None; services.len()];
        for (i, (service, ours)) in services.iter().enumerate() {
            if let Some(poller) = self.own.get_mut(service) {
                out[i] = Some(poller.observe(ours).await?);
            }
        }
        for observer in &mut self.observers {
            let (indices, subset): (Vec<usize>, Vec<(String, Ours)>) = services
                .iter()
                .enumerate()
                .filter(|(_, (s, _))| self.cluster_of.get(s) == Some(&observer.cluster))
                .map(|(i, t)| (i, t.clone()))
                .unzip();
            if subset.is_empty() {
                continue;
            }
            for (i, obs) in indices.into_iter().zip(observer.observe(&subset).await?) {
                out[i] = Some(obs);
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }
}

/// Whether our deployment may have lost a task between two polls' counts
/// (deployment id, running, pending, failed): its running count or its running and pending
/// tasks together fell, or its failed count rose. A first sight counts failed tasks only.
fn lost_a_task(
    before: Option<&Vec<(String, i32, i32, i32)>>,
    now: &[(String, i32, i32, i32)],
    ours: &str,
) -> bool {
    let find =
        |v: &[(String, i32, i32, i32)]| v.iter().find(|c| c.0 == ours).map(|c| (c.1, c.2, c.3));
    match (before.and_then(|b| find(b)), find(now)) {
        (Some((r0, p0, f0)), Some((r1, p1, f1))) => r1 < r0 || r1 + p1 < r0 + p0 || f1 > f0,
        (None, Some((_, _, f))) => f > 0,
        _ => false,
    }
}

/// The deployments of a service as the verdict reads them.
pub(crate) fn deployment_views(svc: &Service) -> Vec<DeploymentView> {
    svc.deployments()
        .iter()
        .map(|d| DeploymentView {
            id: d.id().unwrap_or_default().to_string(),
            status: d.status().into(),
            task_definition_arn: d.task_definition().unwrap_or_default().to_string(),
            desired: d.desired_count(),
            pending: d.pending_count(),
            running: d.running_count(),
            failed: d.failed_tasks(),
            rollout_state: d.rollout_state().map(|s| s.as_str()).into(),
            rollout_state_reason: d.rollout_state_reason().map(ecs_text),
            created_at: d.created_at().map(|t| t.as_secs_f64()),
        })
        .collect()
}

/// Our service deployment among those DescribeServiceDeployments returned.
fn our_service_deployment(sds: &[ServiceDeployment], ours: &Ours) -> Option<ServiceDeploymentView> {
    let arn = ours.service_deployment_arn.as_deref()?;
    sds.iter()
        .find(|sd| sd.service_deployment_arn() == Some(arn))
        .map(service_deployment_view)
}

pub(crate) fn service_deployment_view(sd: &ServiceDeployment) -> ServiceDeploymentView {
    ServiceDeploymentView {
        arn: sd.service_deployment_arn().unwrap_or_default().to_string(),
        status: sd.status().map(|s| s.as_str()).into(),
        status_reason: sd.status_reason().map(ecs_text),
        lifecycle_stage: sd.lifecycle_stage().map(|s| s.as_str()).into(),
        rollback_reason: sd.rollback().and_then(|r| r.reason()).map(ecs_text),
        circuit_breaker: sd.deployment_circuit_breaker().map(|c| {
            (
                c.status().map(|s| s.as_str()).into(),
                c.failure_count(),
                c.threshold(),
            )
        }),
        alarms: sd.alarms().map(|a| {
            (
                a.status().map(|s| s.as_str()).into(),
                a.triggered_alarm_names().to_vec(),
            )
        }),
        hooks: sd
            .lifecycle_hook_details()
            .iter()
            .map(|h| HookView {
                hook_id: h.hook_id().unwrap_or_default().to_string(),
                target_type: h
                    .target_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                status: h.status().map(|s| s.as_str()).into(),
                expires_at: h.expires_at().map(|t| t.secs()),
                timeout_action: h.timeout_action().map(|a| a.as_str().to_string()),
            })
            .collect(),
    }
}

/// How many of a service's newest deployments [`deployment_record`] describes: enough to
/// find the last one that succeeded after a run of failures.
pub(crate) const RECORD_DEPTH: usize = 20;

/// ECS's record of a service's deployments, newest first: the newest [`RECORD_DEPTH`] that
/// ListServiceDeployments lists, each with its status and the task definitions of its target
/// and source revisions (DescribeServiceDeployments, DescribeServiceRevisions: 3 calls for
/// most services).
pub(crate) async fn deployment_record(
    clients: &Clients,
    cluster: &str,
    service: &str,
) -> Result<Vec<DeploymentRecord>> {
    let mut briefs: Vec<(f64, String)> = clients
        .list_service_deployments(cluster, service, None)
        .await?
        .iter()
        .filter_map(|b| {
            Some((
                b.created_at()?.as_secs_f64(),
                b.service_deployment_arn()?.to_string(),
            ))
        })
        .collect();
    briefs.sort_by(|a, b| b.0.total_cmp(&a.0));
    briefs.truncate(RECORD_DEPTH);
    if briefs.is_empty() {
        return Ok(Vec::new());
    }
    let arns: Vec<String> = briefs.into_iter().map(|b| b.1).collect();
    let sds = clients.describe_service_deployments(&arns).await?;
    let revisions: BTreeSet<String> = sds
        .iter()
        .flat_map(|sd| {
            sd.target_service_revision()
                .and_then(|r| r.arn())
                .into_iter()
                .chain(sd.source_service_revisions().iter().filter_map(|r| r.arn()))
                .map(str::to_string)
        })
        .collect();
    let revisions: Vec<String> = revisions.into_iter().collect();
    let tds: BTreeMap<String, String> = clients
        .revision_task_definition_arns(&revisions)
        .await?
        .into_iter()
        .collect();
    let td = |rev: Option<&str>| rev.and_then(|r| tds.get(r)).cloned();
    let mut records: Vec<DeploymentRecord> = sds
        .iter()
        .map(|sd| DeploymentRecord {
            arn: sd.service_deployment_arn().unwrap_or_default().to_string(),
            status: sd.status().map(|s| s.as_str()).into(),
            created_at: sd.created_at().map_or(0.0, |t| t.as_secs_f64()),
            target: td(sd.target_service_revision().and_then(|r| r.arn())),
            sources: sd
                .source_service_revisions()
                .iter()
                .filter_map(|r| td(r.arn()))
                .collect(),
        })
        .collect();
    records.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
    Ok(records)
}

/// The deployment strategy of a service (absent means rolling).
pub(crate) fn strategy_of(svc: &Service) -> Strategy {
    Strategy::from(
        svc.deployment_configuration()
            .and_then(|c| c.strategy())
            .map(|s| s.as_str()),
    )
}

/// The load balancer entries of a service (rules only where the strategy shifts traffic).
pub(crate) fn lb_pairs(svc: &Service, strategy: &Strategy) -> Vec<LbPair> {
    svc.load_balancers()
        .iter()
        .filter_map(|lb| {
            let tg = lb.target_group_arn()?.to_string();
            let adv = lb
                .advanced_configuration()
                .filter(|_| strategy.shifts_traffic());
            Some(LbPair {
                tg,
                alternate: adv
                    .and_then(|a| a.alternate_target_group_arn())
                    .map(str::to_string),
                production_rule: adv
                    .and_then(|a| a.production_listener_rule())
                    .map(str::to_string),
                test_rule: adv.and_then(|a| a.test_listener_rule()).map(str::to_string),
            })
        })
        .collect()
}

/// The forward weights of the production and test rules, by target group.
fn traffic_of(pairs: &[LbPair], rules: &[Rule]) -> Traffic {
    let weights = |arn: &Option<String>| -> Vec<(String, i32)> {
        let Some(rule) = rules.iter().find(|r| r.rule_arn() == arn.as_deref()) else {
            return Vec::new();
        };
        let Some(forward) = rule
            .actions()
            .iter()
            .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
        else {
            return Vec::new();
        };
        match forward.forward_config() {
            Some(f) if !f.target_groups().is_empty() => f
                .target_groups()
                .iter()
                .map(|t| {
                    (
                        t.target_group_arn().unwrap_or_default().to_string(),
                        t.weight().unwrap_or(1),
                    )
                })
                .collect(),
            _ => forward
                .target_group_arn()
                .map(|t| vec![(t.to_string(), 100)])
                .unwrap_or_default(),
        }
    };
    Traffic {
        production: pairs
            .iter()
            .flat_map(|p| weights(&p.production_rule))
            .collect(),
        test: pairs.iter().flat_map(|p| weights(&p.test_rule)).collect(),
        green: Vec::new(),
    }
}

/// A reason ECS gives (anyone with ecs:StopTask writes a stop reason): one line without
/// control characters ([`crate::untrusted`]) before it reaches a verdict, a detail or a report.
fn ecs_text(s: &str) -> String {
    crate::untrusted::one_line(s)
}

pub(super) fn stopped_task(t: &Task) -> StoppedTask {
    StoppedTask {
        task_arn: t.task_arn().unwrap_or_default().to_string(),
        started_by: t.started_by().map(str::to_string),
        stop_code: t.stop_code().map(|c| c.as_str().to_string()),
        stopped_reason: t.stopped_reason().map(ecs_text),
        containers: t
            .containers()
            .iter()
            .map(|c| {
                (
                    c.name().unwrap_or_default().to_string(),
                    c.reason().map(ecs_text),
                    c.exit_code(),
                )
            })
            .collect(),
        // A task still stopping has no stoppedAt yet: from when it began stopping.
        lived_ms: match (
            t.started_at(),
            t.execution_stopped_at()
                .or(t.stopped_at())
                .or(t.stopping_at()),
        ) {
            (Some(a), Some(b)) => b
                .to_millis()
                .ok()
                .zip(a.to_millis().ok())
                .map(|(b, a)| b - a),
            _ => None,
        },
    }
}

/// The private IPv4 addresses of a task's network interfaces.
pub(super) fn task_ips(t: &Task) -> Vec<String> {
    t.attachments()
        .iter()
        .flat_map(|a| a.details())
        .filter(|d| d.name() == Some("privateIPv4Address"))
        .filter_map(|d| d.value().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_polls_stay_within_the_describe_services_budget() {
        for k in [1, 2, 5, 10, 11, 25, 200] {
            let gap = full_poll_gap(k).as_secs_f64();
            let calls_per_minute = (k as f64 / 10.0).ceil() * 60.0 / gap;
            let per_service_minute = calls_per_minute / k as f64;
            assert!(
                per_service_minute <= DESCRIBE_SERVICES_PER_SERVICE_MINUTE + 1e-6,
                "k={k}: {per_service_minute}"
            );
        }
        assert_eq!(full_poll_gap(1), Duration::from_secs(3));
        assert_eq!(full_poll_gap(10), Duration::from_millis(500));
    }

    #[test]
    fn tasks_are_asked_for_only_when_one_of_ours_may_have_left() {
        let c = |r, p, f| vec![("old".to_string(), 4, 0, 0), ("ours".to_string(), r, p, f)];
        let progress = [(c(0, 4, 0), c(2, 2, 0)), (c(2, 2, 0), c(4, 0, 0))];
        for (a, b) in &progress {
            assert!(!lost_a_task(Some(a), b, "ours"), "{a:?} -> {b:?}");
        }
        // The old deployment draining is not ours.
        let drained = vec![("old".to_string(), 0, 0, 0), ("ours".to_string(), 4, 0, 0)];
        assert!(!lost_a_task(Some(&c(4, 0, 0)), &drained, "ours"));
        // A task stopping, a replacement already pending, a failure counted.
        assert!(lost_a_task(Some(&c(4, 0, 0)), &c(3, 0, 0), "ours"));
        assert!(lost_a_task(Some(&c(4, 0, 0)), &c(3, 1, 0), "ours"));
        assert!(lost_a_task(Some(&c(0, 4, 0)), &c(0, 3, 0), "ours"));
        assert!(lost_a_task(Some(&c(2, 2, 0)), &c(2, 2, 1), "ours"));
        assert!(lost_a_task(None, &c(0, 4, 1), "ours"));
        assert!(!lost_a_task(None, &c(0, 4, 0), "ours"));
    }
}
