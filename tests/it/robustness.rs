//! No panic on any input: seeded random mutations of real fixtures go through the whole
//! pipeline (template -> JSON/YAML/Jsonnet parse -> config -> SDK codec -> validation), in
//! process. Every outcome must be a value or a located error.

use std::collections::BTreeMap;
use std::path::Path;

use cortado::render::{self, RenderContext};

/// splitmix64: a tiny deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{{-",
    "-}}",
    "\"",
    "`",
    "'",
    ",",
    ":",
    "{",
    "}",
    "[",
    "]",
    "\n",
    "  ",
    "\t",
    "must_env",
    "env",
    "|",
    "(",
    ")",
    "$x",
    ":=",
    "if",
    "end",
    "else",
    "null",
    "-1",
    "1e999",
    "\"cpu\": 256",
    "\"essential\": \"no\"",
    "\\u0000",
    "é",
    "#",
    "- ",
    "&a",
    "*a",
    "---",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(s.len() + 1);
        match rng.below(3) {
            0 if !s.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(s.len());
                s.drain(at.min(end)..end);
            }
            _ => {
                let frag = FRAGMENTS[rng.below(FRAGMENTS.len())];
                for (i, c) in frag.chars().enumerate() {
                    s.insert((at + i).min(s.len()), c);
                }
            }
        }
    }
    s.into_iter().collect()
}

#[test]
fn mutated_inputs_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = [
        ("examples/hello/ecs-task-def.json", "t.json"),
        ("examples/hello/ecs-service-def.json", "s.json"),
        ("examples/hello/cortado.yml", "c.yml"),
        ("tests/fixtures/render/templates/td.yaml", "t.yaml"),
        ("tests/fixtures/render/jsonnet/task.jsonnet", "t.jsonnet"),
    ];
    let vars: BTreeMap<String, String> = [
        ("TAG", "v1"),
        ("MOTD", "m"),
        ("CMD", "c"),
        ("STAGE", "prod"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut ctx = RenderContext::new(vars);
    ctx.ext_str = vec![("stage".into(), "prod".into())];
    ctx.ext_code = vec![("cpu".into(), "256".into())];
    let scratch = std::env::temp_dir().join(format!("cortado-robust-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::copy(
        root.join("tests/fixtures/render/jsonnet/common.libsonnet"),
        scratch.join("common.libsonnet"),
    )
    .unwrap();
    let mut rng = Rng(0x5EED);
    let mut outcomes = (0usize, 0usize);
    for round in 0..300 {
        for (seed, name) in seeds {
            let original = std::fs::read_to_string(root.join(seed)).unwrap();
            let text = mutate(&mut rng, &original);
            let path = scratch.join(name);
            std::fs::write(&path, &text).unwrap();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                match render::load(&ctx, &path) {
                    Ok(doc) => {
                        if name.starts_with('c') {
                            let _ = cortado::config::load(&ctx, &path);
                        } else if name.starts_with('s') {
                            let _ = cortado::model::check(None, Some(&doc));
                        } else {
                            let _ = cortado::model::check(Some(&doc), None);
                        }
                        true
                    }
                    Err(e) => {
                        // Every error says where: at least the file.
                        assert!(
                            e.diagnostics.iter().all(|d| d.location.is_some()),
                            "unlocated error for {seed}: {e}"
                        );
                        false
                    }
                }
            }));
            match result {
                Ok(true) => outcomes.0 += 1,
                Ok(false) => outcomes.1 += 1,
                Err(_) => panic!("panic in round {round} on a mutation of {seed}:\n{text}"),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    // The mutations must exercise both paths, or the test proves little.
    assert!(
        outcomes.0 > 100 && outcomes.1 > 100,
        "ok/err split {outcomes:?}"
    );
}
