//! CodeDeploy (ECS compute platform): find a service's application and deployment group,
//! create a deployment from an AppSpec, read it back, stop it.
//!
//! Receives names and ids; hands on plain facts ([`GroupFacts`], [`DeploymentFacts`],
//! [`TargetFacts`]) so that `deploy::codedeploy` needs no SDK type. Listings follow their
//! `nextToken` pages up to a bound.

use aws_sdk_codedeploy::types::{
    AppSpecContent, AutoRollbackConfiguration, AutoRollbackEvent, DeploymentGroupInfo,
    RevisionLocation, RevisionLocationType,
};

use super::Clients;
use super::error::Call;
use crate::error::Result;

/// Pages followed at most by one listing.
const MAX_PAGES: usize = 50;
/// BatchGetDeploymentGroups takes at most 25 names a call.
const GROUP_BATCH: usize = 25;

fn call(operation: &'static str, subject: impl Into<String>) -> Call {
    Call::of("codedeploy", operation, subject)
}

/// What cortado needs of a deployment group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFacts {
    pub application: String,
    pub name: String,
    /// The ECS services it deploys: (cluster, service).
    pub services: Vec<(String, String)>,
    pub config_name: Option<String>,
    /// `blueGreenDeploymentConfiguration.terminateBlueInstancesOnDeploymentSuccess`: how long
    /// the original task set is kept after traffic moved (minutes), when it is terminated.
    pub termination_wait_minutes: Option<i32>,
    /// `deploymentReadyOption`: CONTINUE_DEPLOYMENT or STOP_DEPLOYMENT (wait for a
    /// ContinueDeployment before traffic moves), and the minutes it waits.
    pub ready_action: Option<String>,
    pub ready_wait_minutes: i32,
    /// The target group names of its pair.
    pub target_groups: Vec<String>,
}

/// What GetDeployment says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentFacts {
    pub id: String,
    /// Created | Queued | InProgress | Baking | Ready | Succeeded | Failed | Stopped.
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Set on a deployment that was rolled back (the rollback deployment's id), and on a
    /// rollback deployment (the id of the one it undoes).
    pub rollback_deployment_id: Option<String>,
    pub rollback_triggering_deployment_id: Option<String>,
    pub rollback_message: Option<String>,
    /// The AppSpec content it deploys.
    pub appspec: Option<String>,
    /// When it was created (seconds since the epoch).
    pub created: Option<i64>,
}

/// One task set of an ECS deployment target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskSetFacts {
    /// The task set id (`ecs-svc/...`): the `startedBy` of its tasks.
    pub id: String,
    /// BLUE (original) or GREEN (replacement).
    pub label: String,
    pub status: String,
    pub desired: i64,
    pub running: i64,
    pub pending: i64,
    pub traffic_weight: f64,
    pub target_group: Option<String>,
}

/// What GetDeploymentTarget says of the ECS service a deployment targets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetFacts {
    /// Lifecycle events in order: (name, status).
    pub events: Vec<(String, String)>,
    pub task_sets: Vec<TaskSetFacts>,
}

/// What CreateDeployment sends.
#[derive(Debug, Clone)]
pub struct NewDeployment<'a> {
    pub application: &'a str,
    pub group: &'a str,
    /// The AppSpec as YAML or JSON text.
    pub appspec: &'a str,
    pub description: Option<&'a str>,
    /// `autoRollbackConfiguration.events`; empty leaves the group's setting.
    pub rollback_events: &'a [String],
}

fn group_facts(g: &DeploymentGroupInfo) -> GroupFacts {
    let bg = g.blue_green_deployment_configuration();
    let term = bg.and_then(|b| b.terminate_blue_instances_on_deployment_success());
    let ready = bg.and_then(|b| b.deployment_ready_option());
    GroupFacts {
        application: g.application_name().unwrap_or_default().to_string(),
        name: g.deployment_group_name().unwrap_or_default().to_string(),
        services: g
            .ecs_services()
            .iter()
            .map(|s| {
                (
                    s.cluster_name().unwrap_or_default().to_string(),
                    s.service_name().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        config_name: g.deployment_config_name().map(str::to_string),
        termination_wait_minutes: term
            .filter(|t| t.action().is_none_or(|a| a.as_str() == "TERMINATE"))
            .map(|t| t.termination_wait_time_in_minutes()),
        ready_action: ready
            .and_then(|r| r.action_on_timeout())
            .map(|a| a.as_str().to_string()),
        ready_wait_minutes: ready.map_or(0, |r| r.wait_time_in_minutes()),
        target_groups: g
            .load_balancer_info()
            .map(|lb| {
                lb.target_group_pair_info_list()
                    .iter()
                    .flat_map(|p| p.target_groups())
                    .filter_map(|t| t.name().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl Clients {
    /// Every CodeDeploy application name, all pages.
    pub async fn codedeploy_applications(&self) -> Result<Vec<String>> {
        let c = call("ListApplications", "CodeDeploy applications");
        let mut out = Vec::new();
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .codedeploy
                .list_applications()
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.fail(&c, e))?;
            out.extend(page.applications.unwrap_or_default());
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// The deployment groups of an application, with their facts.
    pub async fn codedeploy_groups(&self, application: &str) -> Result<Vec<GroupFacts>> {
        let c = call(
            "ListDeploymentGroups",
            format!("CodeDeploy application {application}"),
        );
        let mut names = Vec::new();
        let mut token = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .codedeploy
                .list_deployment_groups()
                .application_name(application)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| self.fail(&c, e))?;
            names.extend(page.deployment_groups.unwrap_or_default());
            token = page.next_token;
            if token.is_none() {
                break;
            }
        }
        let mut out = Vec::new();
        for chunk in names.chunks(GROUP_BATCH) {
            let c = call(
                "BatchGetDeploymentGroups",
                format!("deployment groups of CodeDeploy application {application}"),
            );
            let page = self
                .codedeploy
                .batch_get_deployment_groups()
                .application_name(application)
                .set_deployment_group_names(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| self.fail(&c, e))?;
            out.extend(page.deployment_groups_info().iter().map(group_facts));
        }
        Ok(out)
    }

    /// One deployment group.
    pub async fn codedeploy_group(&self, application: &str, group: &str) -> Result<GroupFacts> {
        let c = call(
            "GetDeploymentGroup",
            format!("deployment group {group} of CodeDeploy application {application}"),
        );
        let out = self
            .codedeploy
            .get_deployment_group()
            .application_name(application)
            .deployment_group_name(group)
            .send()
            .await
            .map_err(|e| self.fail(&c, e))?;
        Ok(out
            .deployment_group_info()
            .map(group_facts)
            .unwrap_or_default())
    }

    /// Deployment ids of a group with one of `statuses` (newest first, as CodeDeploy lists).
    pub async fn codedeploy_deployments(
        &self,
        application: &str,
        group: &str,
        statuses: &[&str],
    ) -> Result<Vec<String>> {
        let c = call(
            "ListDeployments",
            format!("deployments of group {group} of CodeDeploy application {application}"),
        );
        let out = self
            .codedeploy
            .list_deployments()
            .application_name(application)
            .deployment_group_name(group)
            .set_include_only_statuses(Some(
                statuses
                    .iter()
                    .map(|s| aws_sdk_codedeploy::types::DeploymentStatus::from(*s))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| self.fail(&c, e))?;
        Ok(out.deployments.unwrap_or_default())
    }

    /// CreateDeployment with an AppSpec (content revision); returns the deployment id.
    pub async fn create_codedeploy_deployment(&self, d: &NewDeployment<'_>) -> Result<String> {
        let c = call(
            "CreateDeployment",
            format!(
                "deployment group {} of CodeDeploy application {}",
                d.group, d.application
            ),
        );
        let revision = RevisionLocation::builder()
            .revision_type(RevisionLocationType::AppSpecContent)
            .app_spec_content(AppSpecContent::builder().content(d.appspec).build())
            .build();
        let rollback = (!d.rollback_events.is_empty()).then(|| {
            AutoRollbackConfiguration::builder()
                .enabled(true)
                .set_events(Some(
                    d.rollback_events
                        .iter()
                        .map(|e| AutoRollbackEvent::from(e.as_str()))
                        .collect(),
                ))
                .build()
        });
        let out = self
            .codedeploy
            .create_deployment()
            .application_name(d.application)
            .deployment_group_name(d.group)
            .revision(revision)
            .set_description(d.description.map(str::to_string))
            .set_auto_rollback_configuration(rollback)
            .send()
            .await
            .map_err(|e| self.fail(&c, e))?;
        Ok(out.deployment_id.unwrap_or_default())
    }

    /// GetDeployment.
    pub async fn codedeploy_deployment(&self, id: &str) -> Result<DeploymentFacts> {
        let c = call("GetDeployment", format!("CodeDeploy deployment {id}"));
        let out = self
            .codedeploy
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| self.fail(&c, e))?;
        let Some(d) = out.deployment_info() else {
            return Ok(DeploymentFacts {
                id: id.to_string(),
                ..DeploymentFacts::default()
            });
        };
        let rb = d.rollback_info();
        Ok(DeploymentFacts {
            id: id.to_string(),
            status: d
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            error_code: d
                .error_information()
                .and_then(|e| e.code())
                .map(|c| c.as_str().to_string()),
            error_message: d
                .error_information()
                .and_then(|e| e.message())
                .map(str::to_string),
            rollback_deployment_id: rb
                .and_then(|r| r.rollback_deployment_id())
                .map(str::to_string),
            rollback_triggering_deployment_id: rb
                .and_then(|r| r.rollback_triggering_deployment_id())
                .map(str::to_string),
            rollback_message: rb.and_then(|r| r.rollback_message()).map(str::to_string),
            appspec: d
                .revision()
                .and_then(|r| r.app_spec_content())
                .and_then(|a| a.content())
                .map(str::to_string),
            created: d.create_time().map(|t| t.secs()),
        })
    }

    /// The ECS target of a deployment (ListDeploymentTargets, then GetDeploymentTarget of
    /// the first): lifecycle events and task sets. None before CodeDeploy lists a target.
    pub async fn codedeploy_target(&self, id: &str) -> Result<Option<TargetFacts>> {
        let c = call(
            "ListDeploymentTargets",
            format!("CodeDeploy deployment {id}"),
        );
        let listed = self
            .codedeploy
            .list_deployment_targets()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| self.fail(&c, e))?;
        let Some(target) = listed.target_ids().first() else {
            return Ok(None);
        };
        let c = call(
            "GetDeploymentTarget",
            format!("target {target} of CodeDeploy deployment {id}"),
        );
        let out = self
            .codedeploy
            .get_deployment_target()
            .deployment_id(id)
            .target_id(target)
            .send()
            .await
            .map_err(|e| self.fail(&c, e))?;
        let Some(ecs) = out.deployment_target().and_then(|t| t.ecs_target()) else {
            return Ok(None);
        };
        Ok(Some(TargetFacts {
            events: ecs
                .lifecycle_events()
                .iter()
                .map(|e| {
                    (
                        e.lifecycle_event_name().unwrap_or_default().to_string(),
                        e.status()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default(),
                    )
                })
                .collect(),
            task_sets: ecs
                .task_sets_info()
                .iter()
                .map(|t| TaskSetFacts {
                    id: t.identifer().unwrap_or_default().to_string(),
                    label: t
                        .task_set_label()
                        .map(|l| l.as_str().to_string())
                        .unwrap_or_default(),
                    status: t.status().unwrap_or_default().to_string(),
                    desired: t.desired_count(),
                    running: t.running_count(),
                    pending: t.pending_count(),
                    traffic_weight: t.traffic_weight(),
                    target_group: t.target_group().and_then(|g| g.name()).map(str::to_string),
                })
                .collect(),
        }))
    }

    /// StopDeployment, with CodeDeploy's automatic rollback when `rollback`.
    pub async fn stop_codedeploy_deployment(&self, id: &str, rollback: bool) -> Result<()> {
        let c = call("StopDeployment", format!("CodeDeploy deployment {id}"));
        self.codedeploy
            .stop_deployment()
            .deployment_id(id)
            .auto_rollback_enabled(rollback)
            .send()
            .await
            .map_err(|e| self.fail(&c, e))?;
        Ok(())
    }
}
