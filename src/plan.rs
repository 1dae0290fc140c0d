//! The plan: what a deploy would change, per service, and how it is shown.
//!
//! Receives the normalized live and local definitions (from `diff`) plus what the deploy
//! decided (new revision or not, create or update). Hands on a [`ServicePlan`] with its risk
//! notes and cost delta, rendered for the terminal (`--dry-run`, `diff`), Markdown (PR comment,
//! job summary) and JSON.

use serde_json::{Value, json};

use crate::cost::{self, Delta, Shape};
use crate::report::diffview;

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
}

impl ServicePlan {
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
                        notes.push(format!(
                            "image of {name:?} changes: {} -> {}",
                            oi.and_then(Value::as_str).unwrap_or("-"),
                            ni.and_then(Value::as_str).unwrap_or("-")
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

    /// "desired count 2 (unchanged), strategy ROLLING".
    pub fn rollout_line(&self) -> String {
        let count = match self.desired_count {
            (_, None) => "desired count unchanged (not set in the file)".to_string(),
            (Some(a), Some(b)) if a == b => format!("desired count {b} (unchanged)"),
            (Some(a), Some(b)) => format!("desired count {a} -> {b}"),
            (None, Some(b)) => format!("desired count {b}"),
        };
        format!("{count}, strategy {}", self.strategy)
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
    pub fn markdown(&self) -> String {
        let icon = if self.changed() { "🔶" } else { "✅" };
        let mut out = format!(
            "### {icon} `{}` (cluster `{}`)\n\n{}\n",
            self.service,
            self.cluster,
            self.summary()
        );
        out.push_str(&format!("\n{}\n", self.rollout_line()));
        let risks = self.risks();
        if !risks.is_empty() {
            out.push('\n');
            for r in &risks {
                out.push_str(&format!("- ⚠️ {r}\n"));
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
        }
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
