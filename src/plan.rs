//! The plan: what a deploy would change, per service, and how it is shown.
//!
//! Receives the normalized live and local definitions (from `diff`) plus what the deploy
//! decided (new revision or not, create or update). Hands on a [`ServicePlan`] with its risk
//! notes and cost delta, rendered for the terminal (`--dry-run`, `diff`), Markdown (PR comment,
//! job summary) and JSON.

use serde_json::{Value, json};

use crate::cost::{self, Delta, Shape};
use crate::render::Secrets;
use crate::report::diffview;
use crate::report::escape::md_code;
use crate::untrusted::Untrusted;

/// What a deploy would do to one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub cluster: String,
    pub service: String,
    pub region: String,
    /// The task definition the service runs now (normalized), if any.
    pub task_before: Option<Value>,
    /// The rendered task definition (normalized).
    pub task_after: Value,
    /// The live service attributes (normalized), if the service exists.
    pub service_before: Option<Value>,
    /// The service definition's attributes (normalized), if the config has one.
    pub service_after: Option<Value>,
    /// A new task definition revision is needed.
    pub new_revision: bool,
    /// The service does not exist yet.
    pub create_service: bool,
    /// Desired count: (running now, after the deploy); after is None when the deploy leaves
    /// it alone (autoscaling owns it).
    pub desired_count: (Option<i32>, Option<i32>),
    /// The deployment strategy (ROLLING, BLUE_GREEN, CANARY, LINEAR) or controller
    /// (CODE_DEPLOY, EXTERNAL) the rollout will use.
    pub strategy: String,
    /// The same rollout in words, with its timings and gates ([`strategy_in_words`]).
    pub rollout: String,
}

impl ServicePlan {
    /// The plan with every secret hidden on both sides of its diffs (see [`crate::diff::redact`]):
    /// what every view of the plan shows. Equal values stay equal and different ones different,
    /// so [`ServicePlan::changed`] says the same before and after.
    pub fn redacted(mut self, secrets: &Secrets) -> Self {
        let mut after = Some(std::mem::take(&mut self.task_after));
        crate::diff::redact::redact_options(secrets, &mut self.task_before, &mut after);
        self.task_after = after.unwrap_or(Value::Null);
        crate::diff::redact::redact_options(
            secrets,
            &mut self.service_before,
            &mut self.service_after,
        );
        self.rollout = secrets.mask(&self.rollout);
        self
    }

    /// Whether anything would change.
    pub fn changed(&self) -> bool {
        self.new_revision || self.create_service || self.service_before != self.service_after
    }

    /// The one-line summary of the plan.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.create_service {
            parts.push("new service".to_string());
        }
        if self.new_revision {
            parts.push("new task definition revision".to_string());
        }
        if !self.create_service && self.service_before != self.service_after {
            parts.push("service attributes change".to_string());
        }
        if parts.is_empty() {
            parts.push("no change".to_string());
        }
        if let Some(d) = self.cost()
            && d.amount().abs() >= 0.005
        {
            parts.push(d.summary());
        }
        parts.join("; ")
    }

    /// The monthly Fargate cost before and after, when both sides have a cpu/memory shape and
    /// the region has prices.
    pub fn cost(&self) -> Option<Delta> {
        let after = Shape::from_json(
            &self.task_after,
            self.service_after.as_ref().or(self.service_before.as_ref()),
        )?;
        let before = match &self.task_before {
            Some(t) => Some(Shape::from_json(t, self.service_before.as_ref())?),
            None => None,
        };
        cost::delta(before.as_ref(), &after, &self.region)
    }

    /// Notes for a reviewer: changes that often break a deploy or a bill.
    pub fn risks(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let Some(before) = &self.task_before else {
            return notes;
        };
        let containers = |v: &Value| -> Vec<(String, Value)> {
            v.get("containerDefinitions")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            (
                                c.get("name")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_string(),
                                c.clone(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (old, new) = (containers(before), containers(&self.task_after));
        for (name, c) in &old {
            let essential = c.get("essential").and_then(Value::as_bool).unwrap_or(true);
            match new.iter().find(|(n, _)| n == name) {
                None if essential => notes.push(format!("essential container {name:?} is removed")),
                None => notes.push(format!("container {name:?} is removed")),
                Some((_, nc)) => {
                    let (oi, ni) = (c.get("image"), nc.get("image"));
                    if oi != ni {
                        // Image tags come from outside (a branch name, ECS): one line.
                        let image = |v: Option<&Value>| {
                            Untrusted::from(v.and_then(Value::as_str).unwrap_or("-"))
                        };
                        notes.push(format!(
                            "image of {name:?} changes: {} -> {}",
                            image(oi),
                            image(ni)
                        ));
                    }
                    if c.get("secrets") != nc.get("secrets") {
                        notes.push(format!(
                            "secrets of {name:?} change (references only are shown)"
                        ));
                    }
                }
            }
        }
        for key in ["cpu", "memory"] {
            let num = |v: &Value| {
                v.get(key)
                    .and_then(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .or_else(|| x.as_u64().map(|n| n.to_string()))
                    })
                    .and_then(|s| match key {
                        "cpu" => crate::model::fargate::parse_cpu(&s),
                        _ => crate::model::fargate::parse_memory(&s),
                    })
            };
            if let (Some(a), Some(b)) = (num(before), num(&self.task_after))
                && b * 2 <= a
            {
                notes.push(format!(
                    "task {key} is cut to {}% ({a} -> {b})",
                    b * 100 / a
                ));
            }
        }
        notes
    }

    /// "desired count 2 (unchanged); blue/green with a 2-minute bake and 1 gate".
    pub fn rollout_line(&self) -> String {
        let count = match self.desired_count {
            (_, None) => "desired count unchanged (not set in the file)".to_string(),
            (Some(a), Some(b)) if a == b => format!("desired count {b} (unchanged)"),
            (Some(a), Some(b)) => format!("desired count {a} -> {b}"),
            (None, Some(b)) => format!("desired count {b}"),
        };
        format!("{count}; {}", self.rollout)
    }

    /// The unified diffs (task definition, service) for a terminal.
    pub fn diff_text(&self, color: bool) -> String {
        let mut out = String::new();
        out.push_str(&diffview::unified(
            "task definition (running)",
            "task definition (rendered)",
            self.task_before.as_ref().unwrap_or(&Value::Null),
            &self.task_after,
            color,
        ));
        if let Some(after) = &self.service_after {
            out.push_str(&diffview::unified(
                "service (live)",
                "service (rendered)",
                self.service_before.as_ref().unwrap_or(&Value::Null),
                after,
                color,
            ));
        }
        out
    }

    /// The plan as a terminal text block.
    pub fn text(&self, color: bool) -> String {
        let mut out = format!(
            "{} (cluster {}): {}\n",
            self.service,
            self.cluster,
            self.summary()
        );
        out.push_str(&format!("  {}\n", self.rollout_line()));
        for r in self.risks() {
            out.push_str(&format!("  ! {r}\n"));
        }
        if let Some(d) = self.cost() {
            out.push_str(&format!(
                "  cost: {} (Fargate on-demand, {}, prices of {})\n",
                d.summary(),
                self.region,
                cost::PRICE_DATE
            ));
        }
        let diff = self.diff_text(color);
        if !diff.is_empty() {
            out.push('\n');
            out.push_str(&diff);
        }
        out
    }

    /// The plan as a Markdown section (PR comment, job summary).
    /// The sections of a pull-request comment over several services: a summary line (how
    /// many change, the monthly cost moved in total), each changed service in full, then the
    /// unchanged ones together on one line. One service: its section alone.
    pub fn release_markdown(plans: &[ServicePlan]) -> Vec<String> {
        if plans.len() <= 1 {
            return plans.iter().map(ServicePlan::markdown).collect();
        }
        let (changed, same): (Vec<&ServicePlan>, Vec<&ServicePlan>) =
            plans.iter().partition(|p| p.changed());
        let total: f64 = changed
            .iter()
            .filter_map(|p| p.cost())
            .map(|d| d.amount())
            .sum();
        let mut head = format!(
            "**{} services**: {} change, {} unchanged",
            plans.len(),
            changed.len(),
            same.len()
        );
        if total.abs() >= 0.005 {
            head.push_str(&format!(
                "; Fargate on-demand cost {}{:.2} USD/month in total",
                if total >= 0.0 { "+" } else { "-" },
                total.abs()
            ));
        }
        head.push('.');
        let mut out = vec![head];
        out.extend(changed.iter().map(|p| p.markdown()));
        if !same.is_empty() {
            out.push(format!(
                "✅ Unchanged ({}): {}",
                same.len(),
                same.iter()
                    .map(|p| md_code(&p.service))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        out
    }

    pub fn markdown(&self) -> String {
        let icon = if self.changed() { "🔶" } else { "✅" };
        let mut out = format!(
            "### {icon} {} (cluster {})\n\n{}\n",
            md_code(&self.service),
            md_code(&self.cluster),
            self.summary()
        );
        out.push_str(&format!("\n{}\n", self.rollout_line()));
        let risks = self.risks();
        if !risks.is_empty() {
            out.push('\n');
            // Image names and tags come from outside (a branch name, ECS): code spans.
            for r in &risks {
                out.push_str(&format!("- ⚠️ {}\n", md_code(r)));
            }
        }
        if let Some(d) = self.cost() {
            out.push_str(&format!(
                "\n**Cost:** {} — Fargate on-demand in `{}`, prices of {}.\n",
                d.summary(),
                self.region,
                cost::PRICE_DATE
            ));
        }
        let task = diffview::markdown(
            "task definition (running)",
            "task definition (rendered)",
            self.task_before.as_ref().unwrap_or(&Value::Null),
            &self.task_after,
        );
        let service = self.service_after.as_ref().and_then(|after| {
            diffview::markdown(
                "service (live)",
                "service (rendered)",
                self.service_before.as_ref().unwrap_or(&Value::Null),
                after,
            )
        });
        for (title, block) in [("Task definition diff", task), ("Service diff", service)] {
            if let Some(block) = block {
                out.push_str(&format!(
                    "\n<details><summary>{title}</summary>\n\n{block}\n</details>\n"
                ));
            }
        }
        out
    }

    /// The plan as JSON.
    pub fn json(&self) -> Value {
        json!({
            "cluster": self.cluster,
            "service": self.service,
            "changed": self.changed(),
            "new_revision": self.new_revision,
            "create_service": self.create_service,
            "summary": self.summary(),
            "desired_count": {"before": self.desired_count.0, "after": self.desired_count.1},
            "strategy": self.strategy,
            "rollout": self.rollout,
            "risks": self.risks(),
            "cost": self.cost().map(|d| json!({
                "before_monthly_usd": d.before,
                "after_monthly_usd": d.after,
                "delta_monthly_usd": d.amount(),
                "because": d.because,
                "price_date": cost::PRICE_DATE,
            })),
            "changes": {
                "task_definition": crate::report::diffview::unified("running", "rendered",
                    self.task_before.as_ref().unwrap_or(&Value::Null), &self.task_after, false),
                "service": self.service_after.as_ref().map(|a| crate::report::diffview::unified("live", "rendered",
                    self.service_before.as_ref().unwrap_or(&Value::Null), a, false)),
            }
        })
    }
}

/// The members of a service definition that decide its rollout (`deploymentController`,
/// `deploymentConfiguration`), each from the file when it sets it, else from the live service
/// (an update leaves members the file omits as they are).
pub fn rollout_settings(file: Option<&Value>, live: Option<&Value>) -> Value {
    let mut out = serde_json::Map::new();
    for key in ["deploymentController", "deploymentConfiguration"] {
        let value = file
            .and_then(|f| f.get(key))
            .or_else(|| live.and_then(|l| l.get(key)))
            .filter(|v| !v.is_null());
        if let Some(v) = value {
            out.insert(key.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// The rollout's name: the deployment controller when it is not ECS (CODE_DEPLOY, EXTERNAL),
/// else the deployment strategy (ROLLING when none is set).
pub fn strategy_name(service: &Value) -> String {
    let text = |p: &str| service.pointer(p).and_then(Value::as_str);
    match text("/deploymentController/type") {
        Some(c) if c != "ECS" => c.to_string(),
        _ => text("/deploymentConfiguration/strategy")
            .unwrap_or("ROLLING")
            .to_string(),
    }
}

/// The rollout a service definition asks for, in words: "rolling update", "blue/green with a
/// 2-minute bake and 1 gate", "canary: 10% for 5 minutes, then 100%, 2-minute bake", "linear:
/// 20% every 3 minutes (5 steps), no bake". `gates` counts the config's `rollout.verify`
/// gates. Members a canary or linear configuration leaves out take ECS's documented defaults.
pub fn strategy_in_words(service: &Value, gates: usize) -> String {
    use crate::model::validate::{CANARY_DEFAULTS, LINEAR_DEFAULTS};
    let config = |key: &str| service.pointer(&format!("/deploymentConfiguration/{key}"));
    let number = |key: &str| config(key).and_then(Value::as_f64);
    let minutes = |key: &str| config(key).and_then(Value::as_i64);
    let gate_count = match gates {
        0 => None,
        1 => Some("1 gate".to_string()),
        n => Some(format!("{n} gates")),
    };
    // The bake after the production shift, as an item of a list.
    let bake = match minutes("bakeTimeInMinutes") {
        Some(0) => "no bake".to_string(),
        Some(m) => format!("{} bake", duration(m, true)),
        None => "ECS's default bake".to_string(),
    };
    let list = |head: String| {
        let mut items = vec![head, bake.clone()];
        items.extend(gate_count.clone());
        items.join(", ")
    };
    match strategy_name(service).as_str() {
        "ROLLING" => "rolling update".to_string(),
        "BLUE_GREEN" => {
            let bake = match minutes("bakeTimeInMinutes") {
                Some(m) if m != 0 => format!("{} {bake}", article(m)),
                _ => bake.clone(),
            };
            match gate_count {
                Some(g) => format!("blue/green with {bake} and {g}"),
                None => format!("blue/green with {bake}"),
            }
        }
        "CANARY" => {
            let percent = number("canaryConfiguration/canaryPercent").unwrap_or(CANARY_DEFAULTS.0);
            let wait = minutes("canaryConfiguration/canaryBakeTimeInMinutes")
                .unwrap_or(i64::from(CANARY_DEFAULTS.1));
            let first = if wait == 0 {
                format!("canary: {percent}%, then 100% at once")
            } else {
                format!(
                    "canary: {percent}% for {}, then 100%",
                    duration(wait, false)
                )
            };
            list(first)
        }
        "LINEAR" => {
            let step = number("linearConfiguration/stepPercent").unwrap_or(LINEAR_DEFAULTS.0);
            let wait = minutes("linearConfiguration/stepBakeTimeInMinutes")
                .unwrap_or(i64::from(LINEAR_DEFAULTS.1));
            let pace = if wait == 0 {
                "with no wait between steps".to_string()
            } else {
                format!("every {}", duration(wait, false))
            };
            // Shifts of `step` percent until 100%; the last may be smaller.
            let n = (100.0 / step - 1e-9).ceil();
            let steps = match n {
                1.0 => " (1 step)".to_string(),
                n if n.is_finite() && n > 1.0 => format!(" ({n} steps)"),
                _ => String::new(),
            };
            list(format!("linear: {step}% {pace}{steps}"))
        }
        "CODE_DEPLOY" => "blue/green by CodeDeploy (deploymentController CODE_DEPLOY)".to_string(),
        "EXTERNAL" => "an external deployment controller".to_string(),
        other => format!("strategy {other}"),
    }
}

/// "5 minutes", "1 hour"; as an adjective ("5-minute", "2-hour") when `adjective`.
fn duration(minutes: i64, adjective: bool) -> String {
    let (n, unit) = if minutes >= 60 && minutes % 60 == 0 {
        (minutes / 60, "hour")
    } else {
        (minutes, "minute")
    };
    match (adjective, n) {
        (true, _) => format!("{n}-{unit}"),
        (false, 1) => format!("1 {unit}"),
        (false, _) => format!("{n} {unit}s"),
    }
}

/// "a" or "an" before a number of minutes written as [`duration`] writes it ("an 8-minute",
/// "an 11-hour", "a 2-minute").
fn article(minutes: i64) -> &'static str {
    let n = if minutes >= 60 && minutes % 60 == 0 {
        minutes / 60
    } else {
        minutes
    };
    if n.to_string().starts_with('8') || n == 11 || n == 18 {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(image: &str, cpu: &str, memory: &str) -> Value {
        json!({
            "family": "web",
            "cpu": cpu,
            "memory": memory,
            "containerDefinitions": [
                {"name": "web", "image": image, "essential": true,
                 "secrets": [{"name": "DB", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/db"}]},
                {"name": "log", "image": "fluent-bit:2", "essential": false}
            ]
        })
    }

    fn plan(before: Value, after: Value) -> ServicePlan {
        ServicePlan {
            cluster: "prod".into(),
            service: "web".into(),
            region: "us-east-1".into(),
            new_revision: before != after,
            task_before: Some(before),
            task_after: after,
            service_before: Some(json!({"desiredCount": 2})),
            service_after: Some(json!({"desiredCount": 2})),
            create_service: false,
            desired_count: (Some(2), Some(2)),
            strategy: "ROLLING".into(),
            rollout: "rolling update".into(),
        }
    }

    #[test]
    fn a_release_comment_puts_changes_first_and_folds_the_rest() {
        let same = |name: &str| {
            let mut p = plan(task("web:1", "256", "512"), task("web:1", "256", "512"));
            p.service = name.into();
            p
        };
        let mut up = plan(task("web:1", "256", "512"), task("web:2", "512", "1024"));
        up.service = "api".into();
        let sections = ServicePlan::release_markdown(&[same("mail"), up, same("images")]);
        assert_eq!(sections.len(), 3, "{sections:#?}");
        assert!(
            sections[0]
                .starts_with("**3 services**: 1 change, 2 unchanged; Fargate on-demand cost +"),
            "{}",
            sections[0]
        );
        assert!(sections[1].contains("`api`"), "{}", sections[1]);
        assert_eq!(sections[2], "✅ Unchanged (2): `mail`, `images`");
        // One service: its section only, as before.
        assert_eq!(ServicePlan::release_markdown(&[same("mail")]).len(), 1);
    }

    fn words(service: Value, gates: usize) -> String {
        strategy_in_words(&service, gates)
    }

    #[test]
    fn rolling_and_other_controllers_in_words() {
        assert_eq!(words(json!({}), 0), "rolling update");
        assert_eq!(
            words(
                json!({"deploymentConfiguration": {"strategy": "ROLLING", "bakeTimeInMinutes": 3}}),
                0
            ),
            "rolling update"
        );
        let cd = json!({"deploymentController": {"type": "CODE_DEPLOY"},
                        "deploymentConfiguration": {"strategy": "BLUE_GREEN"}});
        assert_eq!(strategy_name(&cd), "CODE_DEPLOY");
        assert_eq!(
            words(cd, 0),
            "blue/green by CodeDeploy (deploymentController CODE_DEPLOY)"
        );
        assert_eq!(
            words(json!({"deploymentController": {"type": "EXTERNAL"}}), 0),
            "an external deployment controller"
        );
        let ecs = json!({"deploymentController": {"type": "ECS"},
                         "deploymentConfiguration": {"strategy": "LINEAR"}});
        assert_eq!(strategy_name(&ecs), "LINEAR");
    }

    #[test]
    fn blue_green_in_words() {
        let bg = |bake: Value, gates| {
            words(
                json!({"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": bake}}),
                gates,
            )
        };
        assert_eq!(
            bg(json!(2), 1),
            "blue/green with a 2-minute bake and 1 gate"
        );
        assert_eq!(bg(json!(8), 0), "blue/green with an 8-minute bake");
        assert_eq!(bg(json!(0), 2), "blue/green with no bake and 2 gates");
        assert_eq!(bg(json!(60), 0), "blue/green with a 1-hour bake");
        assert_eq!(bg(json!(660), 0), "blue/green with an 11-hour bake");
        assert_eq!(bg(json!(90), 0), "blue/green with a 90-minute bake");
        assert_eq!(bg(Value::Null, 0), "blue/green with ECS's default bake");
    }

    #[test]
    fn canary_in_words() {
        let s = json!({"deploymentConfiguration": {
            "strategy": "CANARY", "bakeTimeInMinutes": 2,
            "canaryConfiguration": {"canaryPercent": 10, "canaryBakeTimeInMinutes": 5}}});
        assert_eq!(
            words(s, 0),
            "canary: 10% for 5 minutes, then 100%, 2-minute bake"
        );
        let s = json!({"deploymentConfiguration": {
            "strategy": "CANARY", "bakeTimeInMinutes": 0,
            "canaryConfiguration": {"canaryPercent": 12.5, "canaryBakeTimeInMinutes": 1}}});
        assert_eq!(
            words(s, 1),
            "canary: 12.5% for 1 minute, then 100%, no bake, 1 gate"
        );
        let s = json!({"deploymentConfiguration": {
            "strategy": "CANARY", "canaryConfiguration": {"canaryBakeTimeInMinutes": 0}}});
        assert_eq!(
            words(s, 0),
            "canary: 5%, then 100% at once, ECS's default bake"
        );
        // No canaryConfiguration at all: ECS's defaults.
        let s =
            json!({"deploymentConfiguration": {"strategy": "CANARY", "bakeTimeInMinutes": 120}});
        assert_eq!(
            words(s, 2),
            "canary: 5% for 10 minutes, then 100%, 2-hour bake, 2 gates"
        );
    }

    #[test]
    fn linear_in_words() {
        let s = json!({"deploymentConfiguration": {
            "strategy": "LINEAR", "bakeTimeInMinutes": 2,
            "linearConfiguration": {"stepPercent": 20, "stepBakeTimeInMinutes": 3}}});
        assert_eq!(
            words(s, 1),
            "linear: 20% every 3 minutes (5 steps), 2-minute bake, 1 gate"
        );
        let s = json!({"deploymentConfiguration": {
            "strategy": "LINEAR", "bakeTimeInMinutes": 0,
            "linearConfiguration": {"stepPercent": 33.3, "stepBakeTimeInMinutes": 0}}});
        assert_eq!(
            words(s, 0),
            "linear: 33.3% with no wait between steps (4 steps), no bake"
        );
        let s = json!({"deploymentConfiguration": {
            "strategy": "LINEAR", "linearConfiguration": {"stepPercent": 100}}});
        assert_eq!(
            words(s, 0),
            "linear: 100% every 6 minutes (1 step), ECS's default bake"
        );
        let s = json!({"deploymentConfiguration": {"strategy": "LINEAR", "bakeTimeInMinutes": 1}});
        assert_eq!(
            words(s, 0),
            "linear: 10% every 6 minutes (10 steps), 1-minute bake"
        );
    }

    #[test]
    fn rollout_settings_take_each_member_from_the_file_else_the_live_service() {
        let file = json!({"desiredCount": 2,
            "deploymentConfiguration": {"strategy": "CANARY"}});
        let live = json!({"deploymentController": {"type": "ECS"},
            "deploymentConfiguration": {"strategy": "ROLLING"}});
        assert_eq!(
            rollout_settings(Some(&file), Some(&live)),
            json!({"deploymentController": {"type": "ECS"},
                   "deploymentConfiguration": {"strategy": "CANARY"}})
        );
        assert_eq!(rollout_settings(None, Some(&live)), live);
        assert_eq!(rollout_settings(None, None), json!({}));
    }

    #[test]
    fn the_rollout_line_appears_in_text_markdown_and_json() {
        let mut p = plan(task("web:1", "256", "512"), task("web:2", "256", "512"));
        p.strategy = "BLUE_GREEN".into();
        p.rollout = "blue/green with a 2-minute bake and 1 gate".into();
        let line = "desired count 2 (unchanged); blue/green with a 2-minute bake and 1 gate";
        assert_eq!(p.rollout_line(), line);
        assert!(
            p.text(false).contains(&format!("\n  {line}\n")),
            "{}",
            p.text(false)
        );
        assert!(
            p.markdown().contains(&format!("\n{line}\n")),
            "{}",
            p.markdown()
        );
        assert_eq!(p.json()["strategy"], "BLUE_GREEN");
        assert_eq!(
            p.json()["rollout"],
            "blue/green with a 2-minute bake and 1 gate"
        );
    }

    #[test]
    fn unchanged_plan_says_so_and_has_no_diff() {
        let p = plan(task("web:1", "256", "512"), task("web:1", "256", "512"));
        assert!(!p.changed());
        assert_eq!(p.summary(), "no change");
        assert_eq!(p.diff_text(false), "");
        assert!(
            p.markdown()
                .starts_with("### ✅ `web` (cluster `prod`)\n\nno change\n")
        );
    }

    #[test]
    fn risks_name_image_cuts_removals_and_secrets() {
        let mut after = task("web:2", "256", "512");
        after["containerDefinitions"].as_array_mut().unwrap().pop();
        after["containerDefinitions"][0]["secrets"][0]["valueFrom"] =
            json!("arn:aws:ssm:us-east-1:1:parameter/db2");
        let before = task("web:1", "1024", "2048");
        let after = {
            let mut a = after;
            a["cpu"] = json!("256");
            a["memory"] = json!("512");
            a
        };
        let p = plan(before, after);
        let r = p.risks();
        assert!(
            r.contains(&"image of \"web\" changes: web:1 -> web:2".to_string()),
            "{r:?}"
        );
        assert!(
            r.contains(&"container \"log\" is removed".to_string()),
            "{r:?}"
        );
        assert!(
            r.contains(&"secrets of \"web\" change (references only are shown)".to_string()),
            "{r:?}"
        );
        assert!(
            r.contains(&"task cpu is cut to 25% (1024 -> 256)".to_string()),
            "{r:?}"
        );
        assert!(
            r.contains(&"task memory is cut to 25% (2048 -> 512)".to_string()),
            "{r:?}"
        );
    }

    #[test]
    fn cost_and_diff_appear_in_every_rendering() {
        let p = plan(task("web:1", "256", "512"), task("web:1", "512", "1024"));
        assert_eq!(
            p.summary(),
            "new task definition revision; +$18.02/month: cpu 256 -> 512, memory 512 -> 1024"
        );
        let md = p.markdown();
        assert!(
            md.contains("<details><summary>Task definition diff</summary>"),
            "{md}"
        );
        assert!(md.contains("\n-  \"cpu\": \"256\",\n"), "{md}");
        assert!(md.contains("\n+  \"cpu\": \"512\",\n"), "{md}");
        assert!(md.contains("prices of 2026-06"), "{md}");
        let j = p.json();
        assert_eq!(j["changed"], true);
        assert!((j["cost"]["delta_monthly_usd"].as_f64().unwrap() - 18.0198).abs() < 0.01);
        assert!(p.text(false).contains("cost: +$18.02/month"));
    }
}
