//! Fargate cost: what a service costs per month before and after a change.
//!
//! Receives the task definition and service definition as JSON (camelCase, as rendered or as
//! described) and a region; hands on monthly on-demand estimates and a one-line delta such as
//! "+$12.40/month: cpu 256 -> 512". Prices come from a dated table kept here; a region missing
//! from it gives no estimate rather than a guess.

use serde_json::Value;

use crate::model::fargate::{parse_cpu, parse_memory};

/// When the price table was taken. Shown with every estimate.
pub(crate) const PRICE_DATE: &str = "2026-06";

/// Hours in a billing month, as AWS's calculator counts them.
pub(crate) const HOURS_PER_MONTH: f64 = 730.0;

/// Fargate Spot is priced by the market; this is the usual discount (up to 70% off).
pub(crate) const SPOT_FACTOR: f64 = 0.30;

/// Linux on-demand rates in USD: (region, x86 per vCPU-hour, x86 per GB-hour, ARM per
/// vCPU-hour, ARM per GB-hour). ARM (Graviton) is about 20% below x86.
const RATES: &[(&str, f64, f64, f64, f64)] = &[
    ("us-east-1", 0.04048, 0.004445, 0.03238, 0.00356),
    ("us-east-2", 0.04048, 0.004445, 0.03238, 0.00356),
    ("us-west-2", 0.04048, 0.004445, 0.03238, 0.00356),
    ("eu-west-1", 0.04048, 0.004445, 0.03238, 0.00356),
    ("eu-central-1", 0.04656, 0.00511, 0.03725, 0.00409),
    ("ap-northeast-1", 0.05056, 0.00553, 0.04045, 0.00442),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    X86,
    Arm,
}

/// What decides the price of a service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shape {
    /// CPU units (1024 = 1 vCPU).
    pub cpu: u32,
    /// Memory in MiB.
    pub memory: u32,
    pub arch: Arch,
    /// Share of the tasks on FARGATE_SPOT (0..=1).
    pub spot_share: f64,
    pub desired: u32,
}

impl Shape {
    /// The shape of a task definition run by a service. None when cpu or memory is missing.
    pub(crate) fn from_json(task: &Value, service: Option<&Value>) -> Option<Shape> {
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let cpu = parse_cpu(&text(task.get("cpu")?)?)?;
        let memory = parse_memory(&text(task.get("memory")?)?)?;
        let arch = match task
            .pointer("/runtimePlatform/cpuArchitecture")
            .and_then(Value::as_str)
        {
            Some("ARM64") => Arch::Arm,
            _ => Arch::X86,
        };
        let desired = service
            .and_then(|s| s.get("desiredCount"))
            .and_then(Value::as_u64)
            .unwrap_or(1) as u32;
        let spot_share = service
            .and_then(|s| s.get("capacityProviderStrategy"))
            .and_then(Value::as_array)
            .map_or(0.0, |items| spot_share(items, desired));
        Some(Shape {
            cpu,
            memory,
            arch,
            spot_share,
            desired,
        })
    }
}

/// The share of `desired` tasks that a capacity provider strategy puts on FARGATE_SPOT: the
/// `base` tasks first, the rest by weight.
fn spot_share(items: &[Value], desired: u32) -> f64 {
    if desired == 0 {
        return 0.0;
    }
    let entries: Vec<(bool, u64, u64)> = items
        .iter()
        .map(|i| {
            (
                i.get("capacityProvider").and_then(Value::as_str) == Some("FARGATE_SPOT"),
                i.get("base").and_then(Value::as_u64).unwrap_or(0),
                i.get("weight").and_then(Value::as_u64).unwrap_or(0),
            )
        })
        .collect();
    let mut left = desired as f64;
    let mut spot = 0.0;
    for (is_spot, base, _) in &entries {
        let b = (*base as f64).min(left);
        left -= b;
        if *is_spot {
            spot += b;
        }
    }
    let total_weight: u64 = entries.iter().map(|e| e.2).sum();
    if total_weight > 0 {
        let spot_weight: u64 = entries.iter().filter(|e| e.0).map(|e| e.2).sum();
        spot += left * spot_weight as f64 / total_weight as f64;
    }
    spot / desired as f64
}

/// Monthly cost in USD, or None when the region is not in the table.
pub(crate) fn monthly(shape: &Shape, region: &str) -> Option<f64> {
    let &(_, x_cpu, x_gb, a_cpu, a_gb) = RATES.iter().find(|r| r.0 == region)?;
    let (per_vcpu, per_gb) = match shape.arch {
        Arch::X86 => (x_cpu, x_gb),
        Arch::Arm => (a_cpu, a_gb),
    };
    let task_hour = shape.cpu as f64 / 1024.0 * per_vcpu + shape.memory as f64 / 1024.0 * per_gb;
    let price_factor = 1.0 - shape.spot_share * (1.0 - SPOT_FACTOR);
    Some(task_hour * HOURS_PER_MONTH * shape.desired as f64 * price_factor)
}

/// Before and after, and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub before: Option<f64>,
    pub after: f64,
    /// What moved the price, e.g. "cpu 256 -> 512, tasks 2 -> 3".
    pub because: Vec<String>,
}

impl Delta {
    pub fn amount(&self) -> f64 {
        self.after - self.before.unwrap_or(0.0)
    }

    /// "+$12.40/month: cpu 256 -> 512" (or "no change: $9.01/month").
    pub fn summary(&self) -> String {
        let amount = self.amount();
        if self.before.is_some() && amount.abs() < 0.005 {
            return format!("no cost change: {}/month", dollars(self.after));
        }
        let sign = if amount < 0.0 { "-" } else { "+" };
        let mut s = format!("{sign}{}/month", dollars(amount.abs()));
        if !self.because.is_empty() {
            s.push_str(": ");
            s.push_str(&self.because.join(", "));
        }
        s
    }
}

fn dollars(v: f64) -> String {
    format!("${v:.2}")
}

/// The cost delta between two shapes in a region. None when the region has no prices.
pub(crate) fn delta(before: Option<&Shape>, after: &Shape, region: &str) -> Option<Delta> {
    let after_cost = monthly(after, region)?;
    let before_cost = match before {
        Some(b) => Some(monthly(b, region)?),
        None => None,
    };
    let mut because = Vec::new();
    match before {
        Some(b) => {
            if b.cpu != after.cpu {
                because.push(format!("cpu {} -> {}", b.cpu, after.cpu));
            }
            if b.memory != after.memory {
                because.push(format!("memory {} -> {}", b.memory, after.memory));
            }
            if b.arch != after.arch {
                because.push(format!("architecture {:?} -> {:?}", b.arch, after.arch));
            }
            if b.desired != after.desired {
                because.push(format!("tasks {} -> {}", b.desired, after.desired));
            }
            if (b.spot_share - after.spot_share).abs() > 1e-9 {
                because.push(format!(
                    "spot share {:.0}% -> {:.0}%",
                    b.spot_share * 100.0,
                    after.spot_share * 100.0
                ));
            }
        }
        None => because.push("new service".into()),
    }
    Some(Delta {
        before: before_cost,
        after: after_cost,
        because,
    })
}

/// What the containers of a task definition declare: the sums of their `cpu` and of their
/// memory limits (`memory`, else `memoryReservation`), each `None` when some container leaves
/// it out (then nothing can be said about that dimension).
pub(crate) fn container_sums(task: &Value) -> (Option<u32>, Option<u32>) {
    let containers = task
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if containers.is_empty() {
        return (None, None);
    }
    let sum = |pick: &dyn Fn(&Value) -> Option<u64>| -> Option<u32> {
        containers
            .iter()
            .map(pick)
            .try_fold(0u64, |acc, v| Some(acc + v?))
            .and_then(|t| u32::try_from(t).ok())
    };
    let cpu = sum(&|c| c.get("cpu").and_then(Value::as_u64).filter(|v| *v > 0));
    let memory = sum(&|c| {
        c.get("memory")
            .and_then(Value::as_u64)
            .or_else(|| c.get("memoryReservation").and_then(Value::as_u64))
    });
    (cpu, memory)
}

/// The cheapest Fargate size that still holds what the containers declare (a dimension they
/// leave open keeps the task's size), when it is cheaper than `shape`'s.
pub(crate) fn right_size(
    shape: &Shape,
    sums: (Option<u32>, Option<u32>),
    region: &str,
) -> Option<Shape> {
    if sums == (None, None) {
        return None;
    }
    let need_cpu = sums.0.unwrap_or(shape.cpu);
    let need_memory = sums.1.unwrap_or(shape.memory);
    let current = monthly(shape, region)?;
    crate::model::fargate::CPU_SIZES
        .iter()
        .filter(|&&c| c >= need_cpu)
        .flat_map(|&c| {
            crate::model::fargate::memory_sizes(c)
                .into_iter()
                .filter(move |&m| m >= need_memory)
                .map(move |m| (c, m))
        })
        .map(|(cpu, memory)| Shape {
            cpu,
            memory,
            ..shape.clone()
        })
        .filter_map(|s| monthly(&s, region).map(|m| (m, s)))
        .filter(|(m, _)| *m < current - 0.005)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, s)| s)
}

/// A saving the user could choose, with its monthly figure (USD, positive = saved).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Saving {
    /// `arm64`, `spot` or `right-size`.
    pub kind: &'static str,
    pub monthly: f64,
    /// What to change and what it assumes.
    pub detail: String,
    /// False when a precondition is not met or not known (e.g. single-arch images).
    pub available: bool,
    /// The service's shape with this change alone.
    pub to: Shape,
}

/// The monthly cost with every available saving applied together (they do not add up: a
/// right-sized task on Spot saves less than the two figures' sum).
pub(crate) fn combined(shape: &Shape, savings: &[Saving], region: &str) -> Option<f64> {
    let mut s = shape.clone();
    for saving in savings.iter().filter(|x| x.available) {
        match saving.kind {
            "arm64" => s.arch = saving.to.arch,
            "spot" => s.spot_share = saving.to.spot_share,
            _ => {
                s.cpu = saving.to.cpu;
                s.memory = saving.to.memory;
            }
        }
    }
    monthly(&s, region)
}

/// Whether a task's images can run on ARM64, as far as it could be checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MultiArch {
    Yes,
    No(String),
    Unknown(String),
}

/// The savings of one service: ARM64 (when on x86), FARGATE_SPOT for every task (when the
/// service is marked interruptible), and right-sizing to what the containers declare.
pub(crate) fn savings(
    shape: &Shape,
    task: &Value,
    interruptible: bool,
    multi_arch: &MultiArch,
    region: &str,
) -> Vec<Saving> {
    let Some(now) = monthly(shape, region) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if shape.arch == Arch::X86 {
        let arm = Shape {
            arch: Arch::Arm,
            ..shape.clone()
        };
        if let Some(m) = monthly(&arm, region) {
            let (available, why) = match multi_arch {
                MultiArch::Yes => (true, "the images are multi-arch (ECR)".to_string()),
                MultiArch::No(w) => (false, format!("not yet: {w}")),
                MultiArch::Unknown(w) => (false, format!("if the images are multi-arch ({w})")),
            };
            out.push(Saving {
                kind: "arm64",
                monthly: now - m,
                detail: format!("runtimePlatform.cpuArchitecture ARM64 (Graviton): {why}"),
                available,
                to: arm,
            });
        }
    }
    if interruptible && shape.spot_share < 1.0 {
        let spot = Shape {
            spot_share: 1.0,
            ..shape.clone()
        };
        if let Some(m) = monthly(&spot, region) {
            out.push(Saving {
                kind: "spot",
                monthly: now - m,
                detail: format!(
                    "every task on FARGATE_SPOT (marked interruptible; Spot prices vary, {:.0}% off assumed)",
                    (1.0 - SPOT_FACTOR) * 100.0
                ),
                available: true,
                to: spot,
            });
        }
    }
    let sums = container_sums(task);
    if let Some(smaller) = right_size(shape, sums, region)
        && let Some(m) = monthly(&smaller, region)
    {
        let said =
            |v: Option<u32>, unit: &str| v.map_or_else(|| "?".into(), |v| format!("{v} {unit}"));
        out.push(Saving {
            kind: "right-size",
            monthly: now - m,
            detail: format!(
                "cpu {} / memory {} (from {} / {}): the containers declare {} and {}",
                smaller.cpu,
                smaller.memory,
                shape.cpu,
                shape.memory,
                said(sums.0, "CPU units"),
                said(sums.1, "MiB"),
            ),
            available: true,
            to: smaller,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape(cpu: u32, memory: u32, arch: Arch, desired: u32) -> Shape {
        Shape {
            cpu,
            memory,
            arch,
            spot_share: 0.0,
            desired,
        }
    }

    #[test]
    fn monthly_cost_is_rate_times_size_times_hours_times_tasks() {
        // 0.25 vCPU and 0.5 GB on x86 in us-east-1:
        // (0.25 * 0.04048 + 0.5 * 0.004445) * 730 = 9.01 per task.
        let m = monthly(&shape(256, 512, Arch::X86, 1), "us-east-1").unwrap();
        assert!((m - 9.0099).abs() < 0.001, "{m}");
        let two = monthly(&shape(256, 512, Arch::X86, 2), "us-east-1").unwrap();
        assert!((two - 2.0 * m).abs() < 1e-9);
        // ARM is about 20% cheaper.
        let arm = monthly(&shape(256, 512, Arch::Arm, 1), "us-east-1").unwrap();
        assert!((arm / m - 0.8).abs() < 0.01, "{}", arm / m);
        assert_eq!(
            monthly(&shape(256, 512, Arch::X86, 1), "mars-north-1"),
            None
        );
    }

    #[test]
    fn delta_names_what_moved_the_price() {
        let before = shape(256, 512, Arch::X86, 2);
        let after = shape(512, 1024, Arch::X86, 2);
        let d = delta(Some(&before), &after, "us-east-1").unwrap();
        // Doubling cpu and memory doubles the cost: +2 * 9.01 = +18.02.
        assert_eq!(
            d.summary(),
            "+$18.02/month: cpu 256 -> 512, memory 512 -> 1024"
        );
        let same = delta(Some(&before), &before, "us-east-1").unwrap();
        assert_eq!(same.summary(), "no cost change: $18.02/month");
        let cheaper = delta(Some(&after), &before, "us-east-1").unwrap();
        assert!(
            cheaper.summary().starts_with("-$18.02/month"),
            "{}",
            cheaper.summary()
        );
        let new = delta(None, &before, "us-east-1").unwrap();
        assert_eq!(new.summary(), "+$18.02/month: new service");
    }

    #[test]
    fn shape_from_definitions_with_spot_strategy() {
        let task = json!({"cpu": "1 vCPU", "memory": "2 GB", "runtimePlatform": {"cpuArchitecture": "ARM64"}});
        let service = json!({"desiredCount": 4, "capacityProviderStrategy": [
            {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
            {"capacityProvider": "FARGATE_SPOT", "weight": 2}
        ]});
        let s = Shape::from_json(&task, Some(&service)).unwrap();
        assert_eq!(
            (s.cpu, s.memory, s.arch, s.desired),
            (1024, 2048, Arch::Arm, 4)
        );
        // 1 base task on FARGATE, the other 3 split 1:2 -> 2 on spot: 2/4.
        assert!((s.spot_share - 0.5).abs() < 1e-9, "{}", s.spot_share);
        let on_demand = Shape {
            spot_share: 0.0,
            ..s.clone()
        };
        let ratio = monthly(&s, "us-east-1").unwrap() / monthly(&on_demand, "us-east-1").unwrap();
        // Half the tasks at 30% of the price: 0.5 + 0.5 * 0.3 = 0.65.
        assert!((ratio - 0.65).abs() < 1e-9, "{ratio}");
        assert_eq!(Shape::from_json(&json!({"cpu": "256"}), None), None);
    }

    #[test]
    fn container_sums_need_every_container() {
        let task = json!({"containerDefinitions": [
            {"name": "app", "cpu": 128, "memory": 256},
            {"name": "log", "cpu": 64, "memoryReservation": 64}
        ]});
        assert_eq!(container_sums(&task), (Some(192), Some(320)));
        let open = json!({"containerDefinitions": [{"name": "app", "memory": 256}, {"name": "x", "cpu": 10}]});
        assert_eq!(container_sums(&open), (None, None));
        assert_eq!(container_sums(&json!({})), (None, None));
    }

    #[test]
    fn savings_by_hand() {
        // 1 vCPU / 4 GB x86, 2 tasks, us-east-1: (0.04048 + 4 * 0.004445) * 730 * 2 = 85.06 (85.0596).
        let s = shape(1024, 4096, Arch::X86, 2);
        let now = monthly(&s, "us-east-1").unwrap();
        assert!((now - 85.0596).abs() < 0.001, "{now}");
        // Containers declare 256 CPU units and 900 MiB: the cheapest size holding that is
        // 256 / 1024 (0.25 * 0.04048 + 1 * 0.004445) * 730 * 2 = 21.27.
        let task = json!({"containerDefinitions": [{"name": "app", "cpu": 256, "memory": 900}]});
        let all = savings(&s, &task, true, &MultiArch::Yes, "us-east-1");
        let kinds: Vec<&str> = all.iter().map(|x| x.kind).collect();
        assert_eq!(kinds, ["arm64", "spot", "right-size"]);
        let arm = now - monthly(&shape(1024, 4096, Arch::Arm, 2), "us-east-1").unwrap();
        assert!((all[0].monthly - arm).abs() < 1e-9 && all[0].available);
        // Spot: 70% off every task.
        assert!(
            (all[1].monthly - now * 0.7).abs() < 1e-6,
            "{}",
            all[1].monthly
        );
        assert!(
            (all[2].monthly - (now - 21.2649)).abs() < 0.001,
            "{}",
            all[2].monthly
        );
        assert!(
            all[2].detail.starts_with("cpu 256 / memory 1024"),
            "{}",
            all[2].detail
        );
        // All three together: 256 / 1024 on ARM, all on Spot, not the sum of the three.
        let together = combined(&s, &all, "us-east-1").unwrap();
        let by_hand = (0.25 * 0.03238 + 1.0 * 0.00356) * 730.0 * 2.0 * 0.3;
        assert!((together - by_hand).abs() < 1e-6, "{together} vs {by_hand}");
        // Not interruptible, already ARM, nothing declared: nothing to suggest.
        let arm_shape = shape(1024, 4096, Arch::Arm, 2);
        assert!(savings(&arm_shape, &json!({}), false, &MultiArch::Yes, "us-east-1").is_empty());
        // Single-arch images: the ARM figure is shown but not available.
        let single = savings(
            &s,
            &json!({}),
            false,
            &MultiArch::No("one manifest".into()),
            "us-east-1",
        );
        assert_eq!(single.len(), 1);
        assert!(!single[0].available);
    }
}
