//! ECS operations.
//!
//! Receives names, ARNs and SDK input values (from `model`); hands on SDK output values.
//! Each operation is one API call, or a bounded series of them where the API caps a batch
//! (DescribeServices 10, DescribeServiceDeployments 20, DescribeTasks 100) or pages. Writes
//! pass every member of their input (tests check it against the schema), so nothing a
//! definition says is silently left out.

use aws_sdk_ecs::operation::create_service::CreateServiceInput;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionInput;
use aws_sdk_ecs::operation::update_service::UpdateServiceInput;
use aws_sdk_ecs::types::{
    CreatedAt, DesiredStatus, Service, ServiceDeployment, ServiceDeploymentBrief, ServiceField,
    StopServiceDeploymentStopType, Tag, Task, TaskDefinition, TaskDefinitionField,
    TaskDefinitionStatus,
};
use aws_smithy_types::DateTime;
use serde_json::Value;

use super::Clients;
use super::error::Call;
use crate::error::{Diagnostic, Error, Result};
use crate::model::codec;

/// DescribeServices takes at most this many services a call.
pub(crate) const DESCRIBE_SERVICES_BATCH: usize = 10;
/// DescribeServiceDeployments takes at most this many ARNs a call.
pub(crate) const DESCRIBE_SERVICE_DEPLOYMENTS_BATCH: usize = 20;
/// DescribeTasks takes at most this many tasks a call.
pub(crate) const DESCRIBE_TASKS_BATCH: usize = 100;

/// What one deploy changes on an existing service, sent as ONE UpdateService call (two
/// calls would start two deployments and confuse the verdict).
#[derive(Debug, Clone, Default)]
pub struct ServiceUpdate {
    pub cluster: String,
    pub service: String,
    /// The task definition ARN to roll out; `None` keeps the current one.
    pub task_definition: Option<String>,
    /// `None` leaves the count alone (autoscaling owns it when the file omits it).
    pub desired_count: Option<i32>,
    pub force_new_deployment: bool,
    /// Service attributes to apply: the members of this CreateService input that
    /// UpdateService also takes. `None` changes no attribute.
    pub definition: Option<CreateServiceInput>,
}

impl ServiceUpdate {
    /// The UpdateService input, and the members of `definition` that UpdateService cannot
    /// change (e.g. `launchType`, `schedulingStrategy`, `role`, `tags`), for a warning.
    /// The mapping goes through the schema: every member the two inputs share is carried.
    pub fn to_input(&self) -> Result<(UpdateServiceInput, Vec<String>)> {
        let mut map = serde_json::Map::new();
        let mut not_updatable = Vec::new();
        if let Some(def) = &self.definition {
            let json = codec::encode(def).map_err(|e| {
                Error::internal(format!("cannot encode the service definition: {e}"))
            })?;
            if let Value::Object(m) = json {
                for (k, v) in m {
                    // Identity members and the ones this struct sets itself.
                    if matches!(
                        k.as_str(),
                        "cluster"
                            | "serviceName"
                            | "taskDefinition"
                            | "desiredCount"
                            | "clientToken"
                    ) {
                        continue;
                    }
                    if UpdateServiceInput::SCHEMA.member_schema(&k).is_some() {
                        map.insert(k, v);
                    } else if !is_empty(&v) {
                        not_updatable.push(k);
                    }
                }
            }
        }
        map.insert("cluster".into(), Value::String(self.cluster.clone()));
        map.insert("service".into(), Value::String(self.service.clone()));
        if let Some(td) = &self.task_definition {
            map.insert("taskDefinition".into(), Value::String(td.clone()));
        }
        if let Some(n) = self.desired_count {
            map.insert("desiredCount".into(), Value::from(n));
        }
        if self.force_new_deployment {
            map.insert("forceNewDeployment".into(), Value::Bool(true));
        }
        let decoded = codec::decode(&Value::Object(map), UpdateServiceInput::deserialize);
        match decoded.value {
            Some(input) if decoded.findings.is_empty() => Ok((input, not_updatable)),
            _ => Err(Error::internal(format!(
                "cannot build the UpdateService input from the service definition: {:?}",
                decoded.findings
            ))),
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Which tasks [`Clients::list_tasks`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskFilter {
    /// Tasks of a service.
    Service(String),
    /// Tasks started by a deployment id (`ecs-svc/...`) or another starter.
    StartedBy(String),
    /// Tasks of a task definition family (any revision).
    Family(String),
}

/// How [`Clients::stop_service_deployment`] stops a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceDeploymentStop {
    /// Roll back to the service revision that ran before.
    Rollback,
    /// Stop where it is.
    Abort,
}

fn service_subject(cluster: &str, name: &str) -> String {
    format!("service \"{name}\" in cluster \"{cluster}\"")
}

/// Whether `s` is the service named `name` (a name or an ARN).
fn is_service(s: &Service, name: &str) -> bool {
    s.service_name() == Some(name)
        || s.service_arn() == Some(name)
        || s.service_arn()
            .is_some_and(|arn| arn.rsplit('/').next() == Some(name) && !name.contains(':'))
}

impl Clients {
    /// The services, in the order of `names`: `None` for a missing or INACTIVE one. Calls
    /// DescribeServices once per 10 names, with tags.
    pub async fn describe_services(
        &self,
        cluster: &str,
        names: &[String],
    ) -> Result<Vec<Option<Service>>> {
        let mut found: Vec<Service> = Vec::new();
        for chunk in names.chunks(DESCRIBE_SERVICES_BATCH) {
            let out = self
                .ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(chunk.to_vec()))
                .include(ServiceField::Tags)
                .send()
                .await
                .map_err(|e| {
                    let subject = if chunk.len() == 1 {
                        service_subject(cluster, &chunk[0])
                    } else {
                        format!("{} services in cluster \"{cluster}\"", chunk.len())
                    };
                    self.fail(
                        &Call::ecs("DescribeServices", subject).in_cluster(cluster),
                        e,
                    )
                })?;
            found.extend(out.services.unwrap_or_default());
        }
        Ok(names
            .iter()
            .map(|n| {
                found
                    .iter()
                    .find(|s| is_service(s, n) && s.status() != Some("INACTIVE"))
                    .cloned()
            })
            .collect())
    }

    /// A task definition (family, family:revision or ARN) with its tags.
    pub async fn describe_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<(TaskDefinition, Vec<Tag>)> {
        let call = Call::ecs(
            "DescribeTaskDefinition",
            format!("task definition \"{task_definition}\""),
        );
        let out = self
            .ecs
            .describe_task_definition()
            .task_definition(task_definition)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| {
                // ECS answers ClientException for a family or revision it does not have.
                let unknown = e
                    .as_service_error()
                    .is_some_and(|s| s.is_client_exception());
                let err = self.fail(&call, e);
                if unknown {
                    Error::input(
                        Diagnostic::error(err.diagnostics.first().map_or_else(
                            || format!("no task definition \"{task_definition}\""),
                            |d| d.message.clone(),
                        ))
                        .hint(format!(
                            "check that task definition \"{task_definition}\" exists in region {} (family, family:revision or ARN)",
                            self.region()
                        )),
                    )
                } else {
                    err
                }
            })?;
        let tags = out.tags.unwrap_or_default();
        let td = out.task_definition.ok_or_else(|| {
            Error::internal(format!(
                "DescribeTaskDefinition answered without a task definition for \"{task_definition}\""
            ))
        })?;
        Ok((td, tags))
    }

    /// Registers a new revision. Every member of `input` is sent (the deprecated
    /// `inferenceAccelerators` too: a definition that has it gets ECS's own answer).
    #[allow(deprecated)]
    pub async fn register_task_definition(
        &self,
        input: RegisterTaskDefinitionInput,
    ) -> Result<TaskDefinition> {
        let call = Call::ecs(
            "RegisterTaskDefinition",
            format!(
                "task definition family \"{}\"",
                input.family.as_deref().unwrap_or("")
            ),
        );
        let RegisterTaskDefinitionInput {
            family,
            task_role_arn,
            execution_role_arn,
            network_mode,
            container_definitions,
            volumes,
            placement_constraints,
            requires_compatibilities,
            cpu,
            memory,
            tags,
            pid_mode,
            ipc_mode,
            proxy_configuration,
            inference_accelerators,
            ephemeral_storage,
            runtime_platform,
            enable_fault_injection,
            ..
        } = input;
        let out = self
            .ecs
            .register_task_definition()
            .set_family(family)
            .set_task_role_arn(task_role_arn)
            .set_execution_role_arn(execution_role_arn)
            .set_network_mode(network_mode)
            .set_container_definitions(container_definitions)
            .set_volumes(volumes)
            .set_placement_constraints(placement_constraints)
            .set_requires_compatibilities(requires_compatibilities)
            .set_cpu(cpu)
            .set_memory(memory)
            .set_tags(tags)
            .set_pid_mode(pid_mode)
            .set_ipc_mode(ipc_mode)
            .set_proxy_configuration(proxy_configuration)
            .set_inference_accelerators(inference_accelerators)
            .set_ephemeral_storage(ephemeral_storage)
            .set_runtime_platform(runtime_platform)
            .set_enable_fault_injection(enable_fault_injection)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        out.task_definition.ok_or_else(|| {
            Error::internal("RegisterTaskDefinition answered without a task definition")
        })
    }

    /// Creates a service from a service definition; `cluster`, `service_name` and
    /// `task_definition` override what the definition says. Every member is sent.
    pub async fn create_service(
        &self,
        cluster: &str,
        service_name: &str,
        task_definition: &str,
        input: CreateServiceInput,
    ) -> Result<Service> {
        let call =
            Call::ecs("CreateService", service_subject(cluster, service_name)).in_cluster(cluster);
        let CreateServiceInput {
            cluster: _,
            service_name: _,
            task_definition: _,
            availability_zone_rebalancing,
            load_balancers,
            service_registries,
            desired_count,
            client_token,
            launch_type,
            capacity_provider_strategy,
            platform_version,
            role,
            deployment_configuration,
            placement_constraints,
            placement_strategy,
            network_configuration,
            health_check_grace_period_seconds,
            scheduling_strategy,
            deployment_controller,
            tags,
            enable_ecs_managed_tags,
            propagate_tags,
            enable_execute_command,
            service_connect_configuration,
            volume_configurations,
            vpc_lattice_configurations,
            gateway_connectors,
            monitoring,
            ..
        } = input;
        let out = self
            .ecs
            .create_service()
            .cluster(cluster)
            .service_name(service_name)
            .task_definition(task_definition)
            .set_availability_zone_rebalancing(availability_zone_rebalancing)
            .set_load_balancers(load_balancers)
            .set_service_registries(service_registries)
            .set_desired_count(desired_count)
            .set_client_token(client_token)
            .set_launch_type(launch_type)
            .set_capacity_provider_strategy(capacity_provider_strategy)
            .set_platform_version(platform_version)
            .set_role(role)
            .set_deployment_configuration(deployment_configuration)
            .set_placement_constraints(placement_constraints)
            .set_placement_strategy(placement_strategy)
            .set_network_configuration(network_configuration)
            .set_health_check_grace_period_seconds(health_check_grace_period_seconds)
            .set_scheduling_strategy(scheduling_strategy)
            .set_deployment_controller(deployment_controller)
            .set_tags(tags)
            .set_enable_ecs_managed_tags(enable_ecs_managed_tags)
            .set_propagate_tags(propagate_tags)
            .set_enable_execute_command(enable_execute_command)
            .set_service_connect_configuration(service_connect_configuration)
            .set_volume_configurations(volume_configurations)
            .set_vpc_lattice_configurations(vpc_lattice_configurations)
            .set_gateway_connectors(gateway_connectors)
            .set_monitoring(monitoring)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        out.service
            .ok_or_else(|| Error::internal("CreateService answered without a service"))
    }

    /// Applies a deploy's changes to a service in one UpdateService call.
    pub async fn update_service(&self, update: &ServiceUpdate) -> Result<Service> {
        let (input, _) = update.to_input()?;
        self.update_service_input(input).await
    }

    /// Sends an UpdateService input as it is. Every member is sent.
    pub async fn update_service_input(&self, input: UpdateServiceInput) -> Result<Service> {
        let cluster = input.cluster.clone().unwrap_or_default();
        let service = input.service.clone().unwrap_or_default();
        let call =
            Call::ecs("UpdateService", service_subject(&cluster, &service)).in_cluster(&cluster);
        let UpdateServiceInput {
            cluster,
            service,
            desired_count,
            task_definition,
            capacity_provider_strategy,
            deployment_configuration,
            availability_zone_rebalancing,
            network_configuration,
            placement_constraints,
            placement_strategy,
            platform_version,
            force_new_deployment,
            health_check_grace_period_seconds,
            deployment_controller,
            enable_execute_command,
            enable_ecs_managed_tags,
            load_balancers,
            propagate_tags,
            service_registries,
            service_connect_configuration,
            volume_configurations,
            vpc_lattice_configurations,
            gateway_connectors,
            monitoring,
            ..
        } = input;
        let out = self
            .ecs
            .update_service()
            .set_cluster(cluster)
            .set_service(service)
            .set_desired_count(desired_count)
            .set_task_definition(task_definition)
            .set_capacity_provider_strategy(capacity_provider_strategy)
            .set_deployment_configuration(deployment_configuration)
            .set_availability_zone_rebalancing(availability_zone_rebalancing)
            .set_network_configuration(network_configuration)
            .set_placement_constraints(placement_constraints)
            .set_placement_strategy(placement_strategy)
            .set_platform_version(platform_version)
            .set_force_new_deployment(force_new_deployment)
            .set_health_check_grace_period_seconds(health_check_grace_period_seconds)
            .set_deployment_controller(deployment_controller)
            .set_enable_execute_command(enable_execute_command)
            .set_enable_ecs_managed_tags(enable_ecs_managed_tags)
            .set_load_balancers(load_balancers)
            .set_propagate_tags(propagate_tags)
            .set_service_registries(service_registries)
            .set_service_connect_configuration(service_connect_configuration)
            .set_volume_configurations(volume_configurations)
            .set_vpc_lattice_configurations(vpc_lattice_configurations)
            .set_gateway_connectors(gateway_connectors)
            .set_monitoring(monitoring)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        out.service
            .ok_or_else(|| Error::internal("UpdateService answered without a service"))
    }

    /// Task definition ARNs of a family with a status, oldest first, all pages.
    pub async fn list_task_definitions(
        &self,
        family: &str,
        status: TaskDefinitionStatus,
    ) -> Result<Vec<String>> {
        let call = Call::ecs(
            "ListTaskDefinitions",
            format!("task definition family \"{family}\""),
        );
        let mut pages = self
            .ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(status)
            .into_paginator()
            .send();
        let mut arns = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.fail(&call, e))?;
            arns.extend(
                page.task_definition_arns
                    .unwrap_or_default()
                    .into_iter()
                    // family_prefix matches "web" and "web-worker"; keep the family only.
                    .filter(|arn| arn_family(arn) == Some(family)),
            );
        }
        Ok(arns)
    }

    /// Deregisters a task definition revision (family:revision or ARN).
    pub async fn deregister_task_definition(
        &self,
        task_definition: &str,
    ) -> Result<TaskDefinition> {
        let call = Call::ecs(
            "DeregisterTaskDefinition",
            format!("task definition \"{task_definition}\""),
        );
        let out = self
            .ecs
            .deregister_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        out.task_definition.ok_or_else(|| {
            Error::internal("DeregisterTaskDefinition answered without a task definition")
        })
    }

    /// Deletes deregistered revisions (DeleteTaskDefinitions, 10 a call): the ARNs ECS took,
    /// and (ARN, reason) of those it refused.
    pub async fn delete_task_definitions(
        &self,
        arns: &[String],
    ) -> Result<(Vec<String>, Vec<(String, String)>)> {
        let (mut done, mut refused) = (Vec::new(), Vec::new());
        for chunk in arns.chunks(10) {
            let call = Call::ecs(
                "DeleteTaskDefinitions",
                format!("{} task definition(s)", chunk.len()),
            );
            let out = self
                .ecs
                .delete_task_definitions()
                .set_task_definitions(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| self.fail(&call, e))?;
            done.extend(
                out.task_definitions()
                    .iter()
                    .filter_map(|t| t.task_definition_arn().map(str::to_string)),
            );
            refused.extend(out.failures().iter().map(|f| {
                (
                    f.arn().unwrap_or_default().to_string(),
                    f.reason().unwrap_or_default().to_string(),
                )
            }));
        }
        Ok((done, refused))
    }

    /// Deletes a service (DeleteService). `force`: also when it runs tasks (ECS scales it to 0
    /// and stops them); without it ECS refuses a service scaled above 0.
    pub async fn delete_service(&self, cluster: &str, service: &str, force: bool) -> Result<()> {
        let call = Call::ecs(
            "DeleteService",
            format!("service \"{service}\" in cluster \"{cluster}\""),
        )
        .in_cluster(cluster);
        self.ecs
            .delete_service()
            .cluster(cluster)
            .service(service)
            .force(force)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(())
    }

    /// The service deployments of a service (newest first as ECS lists them), optionally
    /// only those created after a time; all pages.
    pub async fn list_service_deployments(
        &self,
        cluster: &str,
        service: &str,
        created_after: Option<DateTime>,
    ) -> Result<Vec<ServiceDeploymentBrief>> {
        let call = Call::ecs("ListServiceDeployments", service_subject(cluster, service))
            .in_cluster(cluster);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        // Bounded: a service has at most a few hundred deployments in the listing window.
        for _ in 0..1000 {
            let page = self
                .ecs
                .list_service_deployments()
                .cluster(cluster)
                .service(service)
                .set_created_at(created_after.map(|t| CreatedAt::builder().after(t).build()))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| self.fail(&call, e))?;
            out.extend(page.service_deployments.unwrap_or_default());
            match page.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    /// The task definition of each service revision (`family:revision`), by revision ARN,
    /// 20 ARNs a call. Revisions ECS does not know are left out.
    pub async fn revision_task_definitions(
        &self,
        arns: &[String],
    ) -> Result<Vec<(String, String)>> {
        Ok(self
            .revision_task_definition_arns(arns)
            .await?
            .into_iter()
            .map(|(rev, td)| (rev, td.rsplit('/').next().unwrap_or(&td).to_string()))
            .collect())
    }

    /// The task definition ARN of each service revision, by revision ARN, 20 ARNs a call.
    /// Revisions ECS does not know are left out.
    pub async fn revision_task_definition_arns(
        &self,
        arns: &[String],
    ) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in arns.chunks(DESCRIBE_SERVICE_DEPLOYMENTS_BATCH) {
            let call = Call::ecs(
                "DescribeServiceRevisions",
                format!("service revision {}", chunk.join(", ")),
            );
            let page = self
                .ecs
                .describe_service_revisions()
                .set_service_revision_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| self.fail(&call, e))?;
            for r in page.service_revisions() {
                if let (Some(arn), Some(td)) = (r.service_revision_arn(), r.task_definition()) {
                    out.push((arn.to_string(), td.to_string()));
                }
            }
        }
        Ok(out)
    }

    /// The service deployments with these ARNs, 20 a call. ARNs ECS does not know are left
    /// out of the result.
    pub async fn describe_service_deployments(
        &self,
        arns: &[String],
    ) -> Result<Vec<ServiceDeployment>> {
        let mut out = Vec::new();
        for chunk in arns.chunks(DESCRIBE_SERVICE_DEPLOYMENTS_BATCH) {
            let call = Call::ecs(
                "DescribeServiceDeployments",
                format!("service deployment {}", chunk.join(", ")),
            );
            let page = self
                .ecs
                .describe_service_deployments()
                .set_service_deployment_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| self.fail(&call, e))?;
            out.extend(page.service_deployments.unwrap_or_default());
        }
        Ok(out)
    }

    /// Answers a PAUSE lifecycle hook of a service deployment: CONTINUE, or ROLLBACK.
    pub async fn continue_service_deployment(
        &self,
        arn: &str,
        hook_id: Option<&str>,
        rollback: bool,
    ) -> Result<()> {
        let action = if rollback { "ROLLBACK" } else { "CONTINUE" };
        let call = Call::ecs(
            "ContinueServiceDeployment",
            format!("{action} service deployment {arn}"),
        );
        self.ecs
            .continue_service_deployment()
            .service_deployment_arn(arn)
            .set_hook_id(hook_id.map(str::to_string))
            .action(aws_sdk_ecs::types::DeploymentLifecycleHookAction::from(
                action,
            ))
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(())
    }

    /// Stops a service deployment (rollback or abort); returns its ARN.
    pub async fn stop_service_deployment(
        &self,
        arn: &str,
        how: ServiceDeploymentStop,
    ) -> Result<String> {
        let call = Call::ecs("StopServiceDeployment", format!("service deployment {arn}"));
        let stop_type = match how {
            ServiceDeploymentStop::Rollback => StopServiceDeploymentStopType::Rollback,
            ServiceDeploymentStop::Abort => StopServiceDeploymentStopType::Abort,
        };
        let out = self
            .ecs
            .stop_service_deployment()
            .service_deployment_arn(arn)
            .stop_type(stop_type)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(out
            .service_deployment_arn
            .unwrap_or_else(|| arn.to_string()))
    }

    /// Task ARNs of a service or a starter, with a desired status, all pages.
    pub async fn list_tasks(
        &self,
        cluster: &str,
        filter: &TaskFilter,
        desired_status: DesiredStatus,
    ) -> Result<Vec<String>> {
        let (subject, builder) = match filter {
            TaskFilter::Service(s) => (
                service_subject(cluster, s),
                self.ecs.list_tasks().service_name(s),
            ),
            TaskFilter::StartedBy(s) => (
                format!("tasks started by \"{s}\" in cluster \"{cluster}\""),
                self.ecs.list_tasks().started_by(s),
            ),
            TaskFilter::Family(f) => (
                format!("tasks of family \"{f}\" in cluster \"{cluster}\""),
                self.ecs.list_tasks().family(f),
            ),
        };
        let call = Call::ecs("ListTasks", subject).in_cluster(cluster);
        let mut pages = builder
            .cluster(cluster)
            .desired_status(desired_status)
            .into_paginator()
            .send();
        let mut arns = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.fail(&call, e))?;
            arns.extend(page.task_arns.unwrap_or_default());
        }
        Ok(arns)
    }

    /// The tasks with these ARNs, 100 a call. Tasks ECS no longer knows are left out.
    pub async fn describe_tasks(&self, cluster: &str, arns: &[String]) -> Result<Vec<Task>> {
        let mut out = Vec::new();
        for chunk in arns.chunks(DESCRIBE_TASKS_BATCH) {
            let call = Call::ecs(
                "DescribeTasks",
                format!("{} tasks in cluster \"{cluster}\"", chunk.len()),
            )
            .in_cluster(cluster);
            let page = self
                .ecs
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| self.fail(&call, e))?;
            out.extend(page.tasks.unwrap_or_default());
        }
        Ok(out)
    }
}

/// A one-off task to start (`cortado run`): what RunTask needs, taken from the service (or
/// its definition file) and the command line.
#[derive(Debug, Clone, Default)]
pub struct OneOffTask {
    pub cluster: String,
    pub task_definition: String,
    pub launch_type: Option<aws_sdk_ecs::types::LaunchType>,
    pub capacity_provider_strategy: Vec<aws_sdk_ecs::types::CapacityProviderStrategyItem>,
    pub platform_version: Option<String>,
    pub network_configuration: Option<aws_sdk_ecs::types::NetworkConfiguration>,
    pub overrides: Option<aws_sdk_ecs::types::TaskOverride>,
    pub started_by: Option<String>,
    pub group: Option<String>,
    /// RunTask's idempotency token (`--client-token`).
    pub client_token: Option<String>,
    /// Tags of the task (`--tags`), and `propagateTags` (`--propagate-tags`).
    pub tags: Vec<(String, String)>,
    pub propagate_tags: Option<String>,
    /// How many tasks (RunTask's `count`, 1 to 10).
    pub count: i32,
    /// Volumes configured at launch (Amazon EBS), from the service definition.
    pub volume_configurations: Vec<aws_sdk_ecs::types::TaskVolumeConfiguration>,
}

impl Clients {
    /// Starts `t.count` tasks: the tasks started, and why the others did not start (ECS's
    /// `failures`, empty when all did). No task started at all is an AWS error.
    pub async fn run_task(&self, t: &OneOffTask) -> Result<(Vec<Task>, String)> {
        let call = Call::ecs(
            "RunTask",
            format!(
                "task definition \"{}\" in cluster \"{}\"",
                t.task_definition, t.cluster
            ),
        )
        .in_cluster(&t.cluster);
        let out = self
            .ecs
            .run_task()
            .cluster(&t.cluster)
            .task_definition(&t.task_definition)
            .count(t.count)
            .set_volume_configurations(
                (!t.volume_configurations.is_empty()).then(|| t.volume_configurations.clone()),
            )
            .set_launch_type(t.launch_type.clone())
            .set_capacity_provider_strategy(
                (!t.capacity_provider_strategy.is_empty())
                    .then(|| t.capacity_provider_strategy.clone()),
            )
            .set_platform_version(t.platform_version.clone())
            .set_network_configuration(t.network_configuration.clone())
            .set_overrides(t.overrides.clone())
            .set_started_by(t.started_by.clone())
            .set_group(t.group.clone())
            .set_client_token(t.client_token.clone())
            .set_tags((!t.tags.is_empty()).then(|| {
                t.tags
                    .iter()
                    .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
                    .collect()
            }))
            .set_propagate_tags(
                t.propagate_tags
                    .as_deref()
                    .map(aws_sdk_ecs::types::PropagateTags::from),
            )
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        let tasks = out.tasks.unwrap_or_default();
        let why = out
            .failures
            .unwrap_or_default()
            .iter()
            .map(|f| {
                format!(
                    "{}{}",
                    f.reason().unwrap_or("unknown reason"),
                    f.detail().map(|d| format!(" ({d})")).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        if !tasks.is_empty() {
            return Ok((tasks, why));
        }
        Err(Error::new(
            crate::error::ErrorKind::Aws,
            Diagnostic::error(format!(
                "RunTask started no task in cluster \"{}\": {}",
                t.cluster,
                if why.is_empty() { "no reason given" } else { &why }
            ))
            .hint("check the cluster's capacity providers, the subnets and security groups, and the task definition's requirements"),
        ))
    }

    /// Asks a task to stop (`reason` shows as its stoppedReason).
    pub async fn stop_task(&self, cluster: &str, task_arn: &str, reason: &str) -> Result<()> {
        let call = Call::ecs("StopTask", format!("task {task_arn}")).in_cluster(cluster);
        self.ecs
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(reason)
            .send()
            .await
            .map_err(|e| self.fail(&call, e))?;
        Ok(())
    }
}

/// The family of a task definition ARN (`arn:...:task-definition/web:12` -> `web`).
pub(crate) fn arn_family(arn: &str) -> Option<&str> {
    let tail = arn.rsplit_once(":task-definition/").map_or(arn, |(_, t)| t);
    tail.rsplit_once(':').map(|(f, _)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_family_takes_the_family() {
        assert_eq!(
            arn_family("arn:aws:ecs:us-east-1:1:task-definition/web:12"),
            Some("web")
        );
        assert_eq!(arn_family("web-worker:3"), Some("web-worker"));
        assert_eq!(arn_family("web"), None);
    }

    #[test]
    fn update_input_carries_shared_members_and_names_the_rest() {
        let def = serde_json::json!({
            "serviceName": "web", "launchType": "FARGATE", "platformVersion": "1.4.0",
            "schedulingStrategy": "REPLICA", "desiredCount": 9,
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s-1"]}},
            "deploymentConfiguration": {"maximumPercent": 150}
        });
        let def = codec::decode(&def, CreateServiceInput::deserialize)
            .value
            .unwrap();
        let update = ServiceUpdate {
            cluster: "c".into(),
            service: "web".into(),
            task_definition: Some("web:3".into()),
            desired_count: None,
            force_new_deployment: true,
            definition: Some(def),
        };
        let (input, skipped) = update.to_input().unwrap();
        assert_eq!(input.platform_version(), Some("1.4.0"));
        assert_eq!(input.task_definition(), Some("web:3"));
        assert_eq!(
            input.desired_count(),
            None,
            "the file's count is not the update's"
        );
        assert_eq!(input.force_new_deployment(), Some(true));
        assert_eq!(
            input
                .deployment_configuration()
                .and_then(|d| d.maximum_percent()),
            Some(150)
        );
        assert_eq!(
            input
                .network_configuration()
                .and_then(|n| n.awsvpc_configuration())
                .map(|a| a.subnets().to_vec()),
            Some(vec!["s-1".to_string()])
        );
        assert_eq!(skipped, vec!["launchType", "schedulingStrategy"]);
    }
}
