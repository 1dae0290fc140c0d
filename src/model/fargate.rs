//! Fargate task sizes.
//!
//! Receives task-level `cpu` and `memory` strings as ECS accepts them ("256", "0.25 vCPU",
//! "1024", "1 GB", "1GB"). Hands on CPU units and MiB, and the memory sizes Fargate allows
//! for a CPU size.

/// CPU units (1024 = 1 vCPU) from "256", "0.25 vCPU", "1vcpu".
pub(crate) fn parse_cpu(text: &str) -> Option<u32> {
    parse_units(text, &["vcpu"], 1024)
}

/// MiB from "1024", "1 GB", "1GB": the forms the RegisterTaskDefinition reference documents
/// (a number of MiB, or GB). ECS reads no MB, MiB or GiB suffix, so neither does this.
pub(crate) fn parse_memory(text: &str) -> Option<u32> {
    parse_units(text, &["gb"], 1024)
}

/// A plain number, or a number followed by one of `units` (case-insensitive) times `scale`.
fn parse_units(text: &str, units: &[&str], scale: u32) -> Option<u32> {
    let t = text.trim().to_ascii_lowercase();
    let (number, scaled) = match units.iter().find_map(|u| t.strip_suffix(u)) {
        Some(n) => (n.trim_end(), true),
        None => (t.as_str(), false),
    };
    if number.is_empty() {
        return None;
    }
    if !scaled {
        return number.parse::<u32>().ok();
    }
    let n: f64 = number.parse().ok()?;
    let v = n * f64::from(scale);
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX)).then_some(v as u32)
}

/// The CPU sizes Fargate offers, in CPU units.
pub(crate) const CPU_SIZES: [u32; 7] = [256, 512, 1024, 2048, 4096, 8192, 16384];

/// The memory sizes (MiB) Fargate allows with `cpu` units; empty for a CPU size it lacks.
pub(crate) fn memory_sizes(cpu: u32) -> Vec<u32> {
    let (from, to, step) = match cpu {
        256 => return vec![512, 1024, 2048],
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return Vec::new(),
    };
    (from..=to).step_by(step).collect()
}

/// Memory sizes in a short human form: "1024, 2048, ... 8192 (every 1024)" for long lists.
pub(crate) fn describe_sizes(sizes: &[u32]) -> String {
    match sizes {
        [] => String::new(),
        [a, b, .., z] if sizes.len() > 4 => format!("{a}, {b}, ... {z} (every {} MiB)", b - a),
        _ => sizes
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_forms() {
        assert_eq!(parse_cpu("256"), Some(256));
        assert_eq!(parse_cpu("0.25 vCPU"), Some(256));
        assert_eq!(parse_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_cpu("2vcpu"), Some(2048));
        assert_eq!(parse_cpu("0.3 vCPU"), None);
        assert_eq!(parse_cpu("vCPU"), None);
        assert_eq!(parse_cpu("lots"), None);
    }

    #[test]
    fn parses_memory_forms() {
        assert_eq!(parse_memory("512"), Some(512));
        assert_eq!(parse_memory("1 GB"), Some(1024));
        assert_eq!(parse_memory("2GB"), Some(2048));
        assert_eq!(parse_memory("0.5 GB"), Some(512));
        assert_eq!(parse_memory("512 MiB"), None);
        assert_eq!(parse_memory("4096MB"), None);
        assert_eq!(parse_memory("2 GiB"), None);
        assert_eq!(parse_memory("-1 GB"), None);
        assert_eq!(parse_memory("GB"), None);
    }

    #[test]
    fn memory_sizes_follow_the_fargate_table() {
        assert_eq!(memory_sizes(256), vec![512, 1024, 2048]);
        assert_eq!(memory_sizes(512), vec![1024, 2048, 3072, 4096]);
        assert_eq!(memory_sizes(4096).last(), Some(&30720));
        assert_eq!(memory_sizes(8192)[1], 20480);
        assert_eq!(memory_sizes(16384).len(), 12);
        assert!(memory_sizes(300).is_empty());
        assert_eq!(
            describe_sizes(&memory_sizes(1024)),
            "2048, 3072, ... 8192 (every 1024 MiB)"
        );
        assert_eq!(describe_sizes(&memory_sizes(256)), "512, 1024, 2048");
    }
}
