//! `--prepare`: what a cortado config needs to exist before its first deploy (cluster,
//! images, log groups, roles, parameters, secrets, target groups, load balancer, listener
//! rules, a CodeDeploy application and group), created in a running sandbox when missing.
//!
//! Receives a [`Prepare`] built by cortado from a config; hands on a line per thing created.

use crate::world::World;
use crate::{Error, Sandbox, faults, iam, secretsmanager, seed::put_ecr_image};

/// What a cortado config needs to exist before its first deploy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepare {
    pub cluster: String,
    pub service: Option<String>,
    /// Target group names or ARNs.
    pub target_groups: Vec<String>,
    /// Image references to put into the sandbox's ECR.
    pub images: Vec<String>,
    /// The `advancedConfiguration` of the service's load balancers (blue/green, canary and
    /// linear deployments): an alternate target group and the listener rules ECS shifts.
    pub blue_green: Vec<PrepareBlueGreen>,
    /// CloudWatch Logs groups the containers' awslogs driver writes to.
    pub log_groups: Vec<String>,
    /// IAM roles (ARNs or names) the task definition names as its task and execution roles;
    /// each is created trusting `ecs-tasks.amazonaws.com`.
    pub roles: Vec<String>,
    /// A CODE_DEPLOY service: the CodeDeploy application and deployment group that deploy it.
    pub codedeploy: Option<PrepareCodeDeploy>,
    /// SSM parameters (names) the containers' `secrets[].valueFrom` read; each missing one is
    /// created as a SecureString holding [`PREPARED_SECRET`].
    pub parameters: Vec<String>,
    /// Secrets Manager secrets (ARNs, as `valueFrom` names them) the containers read; each
    /// missing one is created holding [`PREPARED_SECRET`], adopting its ARN when it is a full
    /// one (with the six-character suffix).
    pub secrets: Vec<String>,
}

/// The value of a secret `--prepare` creates: a placeholder, never a real secret.
pub const PREPARED_SECRET: &str = "sandbox-placeholder";

/// The CodeDeploy side of a CODE_DEPLOY service: Prepare creates the application (ECS
/// compute platform), a second target group, a production listener (port 80) and a test
/// listener (port 8080) forwarding 100% to `target_group`, and the deployment group with
/// that target group pair and those listeners. The group is created before the service
/// exists (its first deploy creates it): the sandbox resolves the service at CreateDeployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrepareCodeDeploy {
    pub application: String,
    pub group: String,
    /// Name or ARN of the service's target group (`loadBalancers[0].targetGroupArn`).
    pub target_group: String,
    /// Name of the second target group of the pair (default: `<target group>-green`).
    pub alternate_target_group: Option<String>,
    /// `terminationWaitTimeInMinutes` of the original task set (default 0).
    pub termination_wait_minutes: i32,
    /// `deploymentReadyOption` STOP_DEPLOYMENT with this wait time: traffic moves only after a
    /// ContinueDeployment (the deployment is Ready meanwhile). None: CONTINUE_DEPLOYMENT.
    pub ready_wait_minutes: Option<i32>,
}

/// One load balancer's `advancedConfiguration`: Prepare creates the alternate target group, a
/// production listener (port 80) and a test listener (port 8080) on the service's load
/// balancer, and the two rules with the ARNs given, each forwarding 100% to `target_group`
/// and 0% to `alternate_target_group`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrepareBlueGreen {
    /// Name or ARN of the main target group (`loadBalancers[].targetGroupArn`).
    pub target_group: String,
    /// Name or ARN (`advancedConfiguration.alternateTargetGroupArn`).
    pub alternate_target_group: String,
    /// Listener rule ARN (`advancedConfiguration.productionListenerRule`), on port 80.
    pub production_listener_rule: Option<String>,
    /// Listener rule ARN (`advancedConfiguration.testListenerRule`), on port 8080.
    pub test_listener_rule: Option<String>,
}

/// The name part of a target group ARN (the ARN itself when it is not one).
fn tg_name(arn: &str) -> &str {
    arn.split_once(":targetgroup/")
        .map(|(_, r)| r.split('/').next().unwrap_or(r))
        .unwrap_or(arn)
}

/// Finds a target group by name or ARN, or creates it (adopting an ARN as given); returns its
/// ARN and whether it was created.
pub(crate) fn ensure_target_group(w: &mut World, tg: &str) -> (String, bool) {
    // An ARN from a real account is matched, and created, by its name.
    let name = tg
        .split_once(":targetgroup/")
        .map(|(_, r)| r.split('/').next().unwrap_or(r))
        .unwrap_or(tg);
    match w
        .elbv2
        .find_target_group(tg)
        .or_else(|| w.elbv2.find_target_group(name))
    {
        Some(a) => (a, false),
        None if tg.contains(":targetgroup/") => {
            (w.elbv2.adopt_target_group(tg, 80, "HTTP", "ip"), true)
        }
        None => (w.elbv2.create_target_group(name, 80, "HTTP", "ip"), true),
    }
}

impl Prepare {
    /// Create whatever is missing; returns a line per thing created.
    pub fn apply(&self, sandbox: &Sandbox) -> Result<Vec<String>, Error> {
        let mut inner = sandbox.shared.lock();
        inner.sync();
        let mut created = Vec::new();
        let w = &mut inner.world;
        self.basics(w, &mut created);
        self.secrets(w, &mut created);
        let lb_name = format!(
            "sandbox-{}",
            self.service.as_deref().unwrap_or(&self.cluster)
        );
        self.load_balancer(w, &lb_name, &mut created)?;
        for bg in &self.blue_green {
            bg.apply(w, &lb_name, &mut created)?;
        }
        if let Some(cd) = &self.codedeploy {
            self.codedeploy(cd, w, &lb_name, &mut created)?;
        }
        Ok(created)
    }

    /// The cluster, ECR images, log groups, IAM roles and SSM parameters.
    fn basics(&self, w: &mut World, created: &mut Vec<String>) {
        if !w.clusters.contains_key(&self.cluster) {
            w.ensure_cluster(&self.cluster);
            created.push(format!("cluster {}", self.cluster));
        }
        let now = w.now;
        for image in &self.images {
            let image = &faults::without_faults(image);
            if w.ecr.resolve(image) == Some(false) && put_ecr_image(w, image, now) {
                created.push(format!("ECR image {image}"));
            }
        }
        for group in &self.log_groups {
            if w.logs.ensure_group(group, now) {
                created.push(format!("log group {group}"));
            }
        }
        for role in &self.roles {
            if w.iam.ensure_ecs_tasks_role(role, &w.account, now) {
                created.push(format!("IAM role {}", iam::role_name(role)));
            }
        }
        for name in &self.parameters {
            if !w.ssm.contains(name)
                && w.ssm
                    .put(name, "SecureString", PREPARED_SECRET, now)
                    .is_ok()
            {
                created.push(format!(
                    "SSM parameter {name} (SecureString, value \"{PREPARED_SECRET}\")"
                ));
            }
        }
    }

    /// The Secrets Manager secrets: `arn:...:secret:NAME-AbCdEf` adopts that ARN; a partial
    /// ARN (no suffix) names the secret, and one is made.
    fn secrets(&self, w: &mut World, created: &mut Vec<String>) {
        let now = w.now;
        for arn in &self.secrets {
            if w.secrets.exists(arn) {
                continue;
            }
            let named = arn.split_once(":secret:").map_or(arn.as_str(), |(_, n)| n);
            let suffixed = named.len() > 7 && named.as_bytes()[named.len() - 7] == b'-';
            let name = if suffixed {
                &named[..named.len() - 7]
            } else {
                named
            };
            let new = secretsmanager::NewSecret {
                name,
                string: Some(PREPARED_SECRET),
                binary: None,
                description: Some("created by --prepare"),
                arn: suffixed.then_some(arn.as_str()),
            };
            let at = (w.region.clone(), w.account.clone());
            if w.secrets
                .create(&new, (&at.0, &at.1), now, &mut w.rng)
                .is_ok()
            {
                created.push(format!(
                    "Secrets Manager secret {name} (value \"{PREPARED_SECRET}\")"
                ));
            }
        }
    }

    /// The target groups, and a load balancer with listeners on 80 and 8080 forwarding to
    /// the first of them.
    fn load_balancer(
        &self,
        w: &mut World,
        lb_name: &str,
        created: &mut Vec<String>,
    ) -> Result<(), Error> {
        let mut tgs = Vec::new();
        for tg in &self.target_groups {
            let (arn, new) = ensure_target_group(w, tg);
            if new {
                created.push(format!("target group {}", tg_name(&arn)));
            }
            tgs.push(arn);
        }
        if !tgs.is_empty() && w.elbv2.find_load_balancer(lb_name).is_none() {
            let lb = w.elbv2.create_load_balancer(lb_name);
            let fwd: Vec<(String, i32)> = tgs
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), if i == 0 { 100 } else { 0 }))
                .collect();
            for port in [80, 8080] {
                w.elbv2
                    .create_listener(&lb, port, "HTTP", &fwd)
                    .map_err(|e| Error::msg(format!("sandbox prepare: listener: {}", e.message)))?;
            }
            created.push(format!(
                "load balancer {lb_name} (listeners 80 and 8080 forwarding to {})",
                self.target_groups.join(", ")
            ));
        }
        Ok(())
    }

    /// A CODE_DEPLOY service's target group pair, listeners and CodeDeploy application and
    /// deployment group.
    fn codedeploy(
        &self,
        cd: &PrepareCodeDeploy,
        w: &mut World,
        lb_name: &str,
        created: &mut Vec<String>,
    ) -> Result<(), Error> {
        let (main, new) = ensure_target_group(w, &cd.target_group);
        if new {
            created.push(format!("target group {}", tg_name(&main)));
        }
        let alt_name = cd
            .alternate_target_group
            .clone()
            .unwrap_or_else(|| format!("{}-green", tg_name(&main)));
        let (alt, new) = ensure_target_group(w, &alt_name);
        if new {
            created.push(format!("target group {}", tg_name(&alt)));
        }
        let fwd = vec![(main.clone(), 100), (alt.clone(), 0)];
        let lb = match w.elbv2.find_load_balancer(lb_name) {
            Some(lb) => lb,
            None => w.elbv2.create_load_balancer(lb_name),
        };
        let mut listeners = Vec::new();
        for port in [80, 8080] {
            let listener = listener_on(w, &lb, port, &fwd)?;
            w.elbv2
                .set_forward_weights(&listener, &fwd)
                .map_err(|e| Error::msg(format!("sandbox prepare: listener: {}", e.message)))?;
            listeners.push(listener);
        }
        let service = self.service.clone().unwrap_or_default();
        created.extend(w.prepare_codedeploy(
            &cd.application,
            &cd.group,
            (&self.cluster, &service),
            (tg_name(&main), tg_name(&alt)),
            (&listeners[0], &listeners[1]),
            (cd.termination_wait_minutes, cd.ready_wait_minutes),
        ));
        Ok(())
    }
}

impl PrepareBlueGreen {
    /// The alternate target group, and the production (80) and test (8080) listener rules
    /// with the ARNs given, each forwarding 100% to the main target group.
    fn apply(&self, w: &mut World, lb_name: &str, created: &mut Vec<String>) -> Result<(), Error> {
        let (main, _) = ensure_target_group(w, &self.target_group);
        let (alt, new) = ensure_target_group(w, &self.alternate_target_group);
        if new {
            created.push(format!("target group {}", tg_name(&alt)));
        }
        let fwd = vec![(main.clone(), 100), (alt.clone(), 0)];
        let lb = w.elbv2.create_load_balancer(lb_name);
        for (rule, port, what) in [
            (&self.production_listener_rule, 80, "production"),
            (&self.test_listener_rule, 8080, "test"),
        ] {
            let Some(rule) = rule else { continue };
            if w.elbv2.forward_weights(rule).is_some() {
                continue;
            }
            let listener = listener_on(w, &lb, port, &fwd)?;
            // The rule's ARN names its listener; give the listener that ARN, as on AWS.
            let listener = listener_of_rule(rule)
                .and_then(|named| w.elbv2.adopt_listener_arn(&lb, port, &named))
                .unwrap_or(listener);
            w.elbv2
                .adopt_rule(&listener, rule, "/*", &fwd)
                .map_err(|e| {
                    Error::msg(format!("sandbox prepare: listener rule: {}", e.message))
                })?;
            created.push(format!(
                "{what} listener rule {rule} (port {port}: {} 100%, {} 0%)",
                tg_name(&main),
                tg_name(&alt)
            ));
        }
        Ok(())
    }
}

/// The listener of `lb` on `port`, created forwarding as `fwd` says when there is none.
fn listener_on(w: &mut World, lb: &str, port: i32, fwd: &[(String, i32)]) -> Result<String, Error> {
    match w.elbv2.listener_on(lb, port) {
        Some(l) => Ok(l),
        None => w
            .elbv2
            .create_listener(lb, port, "HTTP", fwd)
            .map_err(|e| Error::msg(format!("sandbox prepare: listener: {}", e.message))),
    }
}

/// The listener ARN a listener rule ARN belongs to
/// (`...:listener-rule/app/LB/ID/LISTENER/RULE` -> `...:listener/app/LB/ID/LISTENER`).
fn listener_of_rule(rule_arn: &str) -> Option<String> {
    let (head, path) = rule_arn.split_once(":listener-rule/")?;
    let (listener, _rule) = path.rsplit_once('/')?;
    (path.split('/').count() == 5).then(|| format!("{head}:listener/{listener}"))
}
