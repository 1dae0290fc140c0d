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
    /// The same rollout in words, with its timings and gates ([`crate::deploy::core::spec::ServiceRollout::words`]).
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
        // A task-definition-only plan (the config names no service) has no rollout.
        if self.strategy.is_empty() {
            return self.rollout.clone();
        }
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
        self.diff_text_as(color, false)
    }

    /// [`Self::diff_text`] of the definitions printed as JSON or, with `jsonnet`, as Jsonnet
    /// (`diff --jsonnet`).
    pub fn diff_text_as(&self, color: bool, jsonnet: bool) -> String {
        let mut out = String::new();
        out.push_str(&diffview::unified_as(
            "task definition (running)",
            "task definition (rendered)",
            self.task_before.as_ref().unwrap_or(&Value::Null),
            &self.task_after,
            color,
            jsonnet,
        ));
        if let Some(after) = &self.service_after {
            out.push_str(&diffview::unified_as(
                "service (live)",
                "service (rendered)",
                self.service_before.as_ref().unwrap_or(&Value::Null),
                after,
                color,
                jsonnet,
            ));
        }
        out
    }

    /// The plan as a terminal text block.
    pub fn text(&self, color: bool) -> String {
        self.text_as(color, false)
    }

    /// [`Self::text`], its diffs in Jsonnet with `jsonnet`.
    pub fn text_as(&self, color: bool, jsonnet: bool) -> String {
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
        let diff = self.diff_text_as(color, jsonnet);
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
