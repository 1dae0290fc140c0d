//! Black-box tests of the `cortado` binary: fixture corpora under tests/fixtures/.
//!
//! - `render/<case>/`: a config and its files; `cortado render` (plus the case's `args`) must
//!   print exactly `expected.json`.
//! - `bad/<case>/`: malformed input; the command (default `validate`) must exit with the
//!   expected code (default 1), print every line of `expect` on stderr (and none of its lines
//!   that start with `! `), never panic, and name file:line:col where the `expect` file says so.
//!
//! Per case, optional files: `args` (one argument per line, replacing the default command),
//! `env` (KEY=VALUE lines set in the otherwise empty process environment), `exit` (the code).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs cortado in `dir` with a clean environment plus `env`.
fn cortado(dir: &Path, args: &[String], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cortado"));
    cmd.current_dir(dir).args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run cortado")
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| {
            s.lines()
                .map(str::to_string)
                .filter(|l| !l.trim().is_empty() && !l.starts_with("# "))
                .collect()
        })
        .unwrap_or_default()
}

fn case_env(dir: &Path) -> Vec<(String, String)> {
    read_lines(&dir.join("env"))
        .into_iter()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn cases(kind: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures().join(kind))
        .expect("fixture folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn render_fixtures_match_expected_output() {
    let mut failures = Vec::new();
    let all = cases("render");
    assert!(all.len() >= 5, "expected at least 5 render fixtures");
    for dir in all {
        let mut args = read_lines(&dir.join("args"));
        if args.is_empty() {
            args.push("render".into());
        }
        let out = cortado(&dir, &args, &case_env(&dir));
        let expected = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || stdout != expected {
            failures.push(format!(
                "{}: exit {:?}\n--- stdout\n{stdout}\n--- expected\n{expected}\n--- stderr\n{}",
                dir.display(),
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn bad_inputs_fail_with_located_messages() {
    let mut failures = Vec::new();
    let all = cases("bad");
    assert!(
        all.len() >= 100,
        "expected at least 100 malformed inputs, found {}",
        all.len()
    );
    for dir in all {
        let mut args = read_lines(&dir.join("args"));
        if args.is_empty() {
            args.push("validate".into());
        }
        let expect = read_lines(&dir.join("expect"));
        assert!(!expect.is_empty(), "{}: empty expect file", dir.display());
        let code: i32 = read_lines(&dir.join("exit"))
            .first()
            .map_or(1, |c| c.trim().parse().expect("exit file holds a number"));
        let out = cortado(&dir, &args, &case_env(&dir));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut problems = Vec::new();
        if out.status.code() != Some(code) {
            problems.push(format!("exit {:?}, wanted {code}", out.status.code()));
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            problems.push("panicked".to_string());
        }
        for want in &expect {
            match want.strip_prefix("! ") {
                Some(unwanted) if stderr.contains(unwanted) => {
                    problems.push(format!("stderr has {unwanted:?}"));
                }
                Some(_) => {}
                None if !stderr.contains(want.as_str()) => {
                    problems.push(format!("stderr lacks {want:?}"));
                }
                None => {}
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n--- stderr\n{stderr}",
                dir.display(),
                problems.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn example_hello_validates_and_renders() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = ["validate", "-c", "examples/hello/cortado.yml"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = cortado(root, &args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let args: Vec<String> = ["render", "taskdef", "-c", "examples/hello/cortado.yml"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = cortado(root, &args, &[("IMAGE_TAG".into(), "v7".into())]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("render prints JSON");
    assert_eq!(
        v["containerDefinitions"][0]["image"],
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/hello:v7"
    );
}

/// `cortado verify --sandbox` on the example: the embedded sandbox is prepared from the config
/// (cluster, image, log group, target group, and the execution role trusting ECS tasks), so
/// every check is OK, the role's included.
#[test]
fn example_hello_verifies_under_the_sandbox() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = [
        "verify",
        "--sandbox",
        "--output",
        "json",
        "-c",
        "examples/hello/cortado.yml",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = cortado(root, &args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify prints JSON");
    let checks = v["services"][0]["checks"].as_array().unwrap();
    assert!(
        checks.iter().all(|c| c["status"] == "OK"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        checks.iter().any(|c| c["what"]
            .as_str()
            .unwrap_or_default()
            .starts_with("execution role arn:aws:iam::123456789012:role/hello-execution")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// An ecspresso setup as it runs in production (examples/ecspresso: required_version
/// ">= 2.0.0, < 3", account 111122223333 in ap-northeast-1, Terraform state lookups, SSM
/// secrets by ARN and by name, a FARGATE / FARGATE_SPOT mix behind a load balancer) rehearses
/// end to end: the sandbox stands in for that account and region, prepares its image and its
/// SSM parameters, so `verify` is OK throughout and `deploy --verify` succeeds.
#[test]
fn example_ecspresso_rehearses_in_its_own_account_and_region() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = "examples/ecspresso/ecspresso.yml";
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let env = [("IMAGE_TAG".to_string(), "v1".to_string())];
    let out = cortado(
        root,
        &args(&["verify", "--sandbox", "--output", "json", "-c", config]),
        &env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify prints JSON");
    let checks = v["services"][0]["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["status"] == "OK"), "{stdout}");
    for what in [
        "image of api: 111122223333.dkr.ecr.ap-northeast-1.amazonaws.com/api:v1",
        "secret DB_PASSWORD of api: arn:aws:ssm:ap-northeast-1:111122223333:parameter/api/db-password",
        "secret SESSION_KEY of api: /api/session-key",
    ] {
        assert!(checks.iter().any(|c| c["what"] == what), "{what}: {stdout}");
    }
    let out = cortado(
        root,
        &args(&[
            "deploy",
            "--sandbox",
            "--verify",
            "--output",
            "json",
            "-c",
            config,
        ]),
        &env,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("created SSM parameter /api/db-password (SecureString"),
        "{stderr}"
    );
    let result = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "result")
        .expect("a result line");
    assert_eq!(
        result["services"][0]["task_definition_arn"],
        "arn:aws:ecs:ap-northeast-1:111122223333:task-definition/api:1"
    );
}

#[test]
fn unknown_config_key_is_a_warning_with_a_suggestion() {
    let dir = fixtures().join("warn/typo-key");
    let out = cortado(&dir, &["validate".to_string()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: unknown config key \"task_defintion\""),
        "{stderr}"
    );
    assert!(stderr.contains("cortado.yml:3:1"), "{stderr}");
    assert!(
        stderr.contains("did you mean \"task_definition\"?"),
        "{stderr}"
    );
}

#[test]
fn validate_json_output_lists_findings() {
    let dir = fixtures().join("bad/task-unknown-key");
    let args: Vec<String> = vec!["validate".into(), "--output".into(), "json".into()];
    let out = cortado(&dir, &args, &[]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["valid"], false);
    let f = &v["findings"][0];
    assert_eq!(f["severity"], "error");
    assert!(f["file"].as_str().unwrap().ends_with("ecs-task-def.json"));
    assert!(f["line"].as_u64().unwrap() > 0);
}

#[test]
fn version_and_completions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = cortado(root, &["version".to_string()], &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("cortado {}", env!("CARGO_PKG_VERSION"))
    );
    let out = cortado(root, &["completions".to_string(), "bash".to_string()], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("complete -F"));
}

#[test]
fn usage_errors_exit_1_not_2() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = cortado(root, &["render".to_string(), "everything".to_string()], &[]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn inside_github_actions_input_errors_become_located_annotations() {
    let dir = fixtures().join("bad/task-unknown-key");
    let out = cortado(
        &dir,
        &["validate".to_string()],
        &[("GITHUB_ACTIONS".into(), "true".into())],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("no ::error annotation in\n{stdout}"));
    assert!(
        line.contains("file=ecs-task-def.json,line=2,col=3"),
        "{line}"
    );
    assert!(line.contains("unknown key \"famliy\""), "{line}");
    // Outside Actions, stdout carries no workflow commands.
    let plain = cortado(&dir, &["validate".to_string()], &[]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("::error"));
}

/// Bad inputs made at test time (too big to commit, or needing permissions git does not keep).
#[test]
fn generated_bad_inputs_fail_with_clear_messages() {
    let dir = std::env::temp_dir().join(format!("cortado-gen-bad-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let td = std::fs::read_to_string(fixtures().join("bad/config-region-list/ecs-task-def.json"))
        .unwrap();
    let make = |name: &str, taskdef: &[u8]| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("cortado.yml"),
            "cluster: c\nservice: s\ntask_definition: ecs-task-def.json\n",
        )
        .unwrap();
        std::fs::write(d.join("ecs-task-def.json"), taskdef).unwrap();
        d
    };
    let run = |d: &Path| {
        let out = cortado(d, &["validate".to_string()], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{}: {stderr}", d.display());
        (out.status.code(), stderr)
    };
    let mut failures = Vec::new();
    let mut check = |name: &str, d: &Path, want: &[&str]| {
        let (code, stderr) = run(d);
        if code != Some(1) || want.iter().any(|w| !stderr.contains(w)) {
            failures.push(format!("{name}: exit {code:?}, want {want:?}\n{stderr}"));
        }
    };

    // A 50 MB task definition: refused by size, quickly, naming the file.
    let big = td.replace("nginx:1.27", &"x".repeat(50 << 20));
    let d = make("large-file", big.as_bytes());
    check(
        "large-file",
        &d,
        &["ecs-task-def.json is 50.0 MiB; cortado reads input files of up to 10 MiB"],
    );

    // Deeply nested JSON (generated): reported, located, no stack overflow.
    let depth = 100_000;
    let deep = format!("{{\"family\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
    let d = make("deep-nesting-json", deep.as_bytes());
    check("deep-nesting-json", &d, &["ecs-task-def.json:1:"]);

    // Deeply nested YAML config.
    let d = make("deep-nesting-yaml", td.as_bytes());
    let yaml = format!(
        "cluster: c\nservice: s\ntask_definition: ecs-task-def.json\nx: {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    std::fs::write(d.join("cortado.yml"), yaml).unwrap();
    check("deep-nesting-yaml", &d, &["cortado.yml"]);

    // An unreadable task definition (chmod 000). As root, permissions do not stop reading:
    // then the case is skipped, with a note.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let d = make("unreadable", td.as_bytes());
        let f = d.join("ecs-task-def.json");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::read(&f).is_ok() {
            eprintln!(
                "note: running as root, chmod 000 does not stop reading; unreadable case skipped"
            );
        } else {
            check(
                "unreadable",
                &d,
                &[
                    "cannot read ecs-task-def.json: Permission denied",
                    "check the file's permissions",
                ],
            );
        }
        let _ = std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644));
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `cortado cost` offline on the cost fixture: figures by hand from the dated us-east-1
/// table (x86 0.04048 per vCPU-hour and 0.004445 per GB-hour, ARM 0.03238 and 0.00356, 730
/// hours, Spot 70% off).
#[test]
fn cost_prices_a_config_and_its_savings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = [
        "cost",
        "--offline",
        "-c",
        "tests/fixtures/cost/cortado.yml",
        "--output",
        "json",
        "--currency",
        "EUR",
        "--rate",
        "0.5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = cortado(root, &args, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let svc = &v["services"][0];
    // 3 tasks of 1 vCPU / 4 GB on x86: (0.04048 + 4 * 0.004445) * 730 * 3 = 127.59.
    assert_eq!(svc["monthly_usd"], 127.59);
    let kinds: Vec<&str> = svc["savings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["arm64", "spot", "right-size"]);
    // ARM: 127.59 - (0.03238 + 4 * 0.00356) * 730 * 3 = 127.59 - 102.10 = 25.49, not
    // available offline (the images were not checked).
    assert_eq!(svc["savings"][0]["monthly_usd"], 25.49);
    assert_eq!(svc["savings"][0]["available"], false);
    // Spot: 70% of 127.59.
    assert_eq!(svc["savings"][1]["monthly_usd"], 89.31);
    // Right-size: the containers declare 256 CPU units and 900 MiB -> 256 / 1024:
    // (0.25 * 0.04048 + 1 * 0.004445) * 730 * 3 = 31.90; saves 95.69.
    assert_eq!(svc["savings"][2]["monthly_usd"], 95.69);
    // Together (Spot on the right size): 127.59 - 31.90 * 0.3 = 118.02, not 185.
    assert_eq!(v["available_savings_monthly_usd"], 118.02);
    assert_eq!(v["currency"]["code"], "EUR");
    // Text output shows the other currency beside USD.
    let text: Vec<String> = args[..4]
        .iter()
        .cloned()
        .chain(["--currency", "EUR", "--rate", "0.5"].map(String::from))
        .collect();
    let out = cortado(root, &text, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("$127.59 (63.79 EUR)"), "{stdout}");
}

/// `-c` takes a pattern, expanded by cortado and sorted; a config named twice loads once.
#[test]
fn config_patterns_expand_sorted_without_duplicates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let args: Vec<String> = [
        "validate",
        "-c",
        "examples/*/cortado.yml",
        "-c",
        "examples/hello/cortado.yml",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = cortado(root, &args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("valid: examples/blue-green/cortado.yml, examples/hello/cortado.yml ("),
        "{stdout}"
    );
}

/// `--help` of `deploy` lists its own options apart from the global ones; `sandbox serve`
/// and `sandbox push` leave out the global options that mean nothing to them (and refuse them
/// when given), and `serve --speed` defaults to 60, as the embedded sandbox does.
#[test]
fn help_groups_and_leaves_out_what_does_not_apply() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let help = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = cortado(root, &args, &[]);
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deploy = help(&["deploy", "--help"]);
    let at = |what: &str| {
        deploy
            .find(what)
            .unwrap_or_else(|| panic!("{what} not in:\n{deploy}"))
    };
    assert!(at("--dry-run") < at("\nGlobal options:"), "{deploy}");
    assert!(at("\nGlobal options:") < at("--sandbox-speed"), "{deploy}");
    assert!(at("\nGlobal options:") < at("--config"), "{deploy}");
    for sub in ["serve", "push"] {
        let text = help(&["sandbox", sub, "--help"]);
        for flag in [
            "--sandbox ",
            "--sandbox\n",
            "--sandbox-speed",
            "--release",
            "--timeout",
        ] {
            assert!(
                !text.contains(flag),
                "sandbox {sub} --help lists {flag}:\n{text}"
            );
        }
    }
    let serve = help(&["sandbox", "serve", "--help"]);
    let speed = &serve[serve.find("--speed").unwrap()..];
    assert!(
        speed[..speed.find("\n\n").unwrap_or(speed.len())].contains("[default: 60]"),
        "{serve}"
    );
    let out = cortado(
        root,
        &["sandbox", "serve", "--sandbox-speed", "5"].map(String::from),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sandbox-speed means nothing"));
}

/// A `cortado sandbox serve` of this build, killed when dropped.
struct Served(std::process::Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cortado sandbox serve --port 0 --prepare CONFIG` with `env`; hands on the server,
/// its endpoint and what it printed up to its `hint:` line.
fn serve(config: &str, env: &[(&str, &str)]) -> (Served, String, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cortado"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_clear()
        .envs(env.iter().copied())
        .args(["sandbox", "serve", "--port", "0", "--prepare", config])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start sandbox serve");
    let stderr = child.stderr.take().unwrap();
    let served = Served(child);
    let mut lines = std::io::BufReader::new(stderr).lines();
    let mut startup = String::new();
    let mut endpoint = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        startup.push_str(&line);
        startup.push('\n');
        if let Some(url) = line.strip_prefix("cortado sandbox listening on ") {
            endpoint = Some(url.to_string());
        }
        if line.starts_with("hint:") {
            break;
        }
    }
    let endpoint = endpoint.unwrap_or_else(|| panic!("sandbox serve did not start:\n{startup}"));
    std::thread::spawn(move || lines.for_each(drop));
    (served, endpoint, startup)
}

/// The README's first tour, step 2: on a standalone sandbox, a good version first, then one
/// that crashes is rolled back to it (exit 3), as a first-time user should see.
#[test]
fn readme_tour_shows_a_rollback() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = "examples/hello/cortado.yml";
    let (_server, endpoint, _) = serve(config, &[]);
    let deploy = |tag: Option<&str>| {
        let mut env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "sandbox"),
            ("AWS_SECRET_ACCESS_KEY", "sandbox"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec();
        env.extend(tag.map(|t| ("IMAGE_TAG".to_string(), t.to_string())));
        let out = cortado(root, &["deploy", "-c", config].map(String::from), &env);
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, text) = deploy(None);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = deploy(Some("v1--crash-20s"));
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("hello:1"), "{text}");
}

/// The first hour of an ecspresso user, on a standalone sandbox: `sandbox serve --prepare`
/// stands in for the config's account and region (its hint says AWS_REGION=ap-northeast-1),
/// `deploy --verify` passes, a tag that was never pushed is NG in `verify` until
/// `sandbox push` puts it there, the new tag deploys, and a one-off migration runs to
/// completion (exit 0).
#[test]
fn sandbox_serve_rehearses_an_ecspresso_setup_with_push_and_a_migration() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = "examples/ecspresso/ecspresso.yml";
    let (_server, endpoint, startup) = serve(config, &[("IMAGE_TAG", "v1")]);
    assert!(startup.contains("AWS_REGION=ap-northeast-1"), "{startup}");
    let env = |tag: &str| {
        [
            ("IMAGE_TAG", tag),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "sandbox"),
            ("AWS_SECRET_ACCESS_KEY", "sandbox"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    };
    let run = |args: &[&str], tag: &str| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = cortado(root, &args, &env(tag));
        let text = format!(
            "{args:?}: exit {:?}\n{}\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            startup
        );
        (out.status.code(), text)
    };
    let (code, text) = run(&["deploy", "--verify", "-c", config], "v1");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("arn:aws:ecs:ap-northeast-1:111122223333:task-definition/api:1"),
        "{text}"
    );
    let (code, text) = run(&["verify", "-c", config], "v2");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("ECR repository api has no v2"), "{text}");
    let image = "111122223333.dkr.ecr.ap-northeast-1.amazonaws.com/api:v2";
    let (code, text) = run(&["sandbox", "push", image], "v2");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("pushed {image}")), "{text}");
    let (code, text) = run(&["deploy", "--verify", "-c", config], "v2");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("task-definition/api:2"), "{text}");
    let (code, text) = run(
        &[
            "run",
            "--command",
            "sh -c \"echo migrating\"",
            "--timeout",
            "60s",
            "-c",
            config,
        ],
        "v2",
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("exiting with code 0"), "{text}");
}

/// `examples/blue-green/rehearse.sh` stops the sandbox it started: afterwards nothing listens
/// on its port (before, it killed the subshell that ran `cargo run`, the server lived on, and
/// the next run's "create" step updated the old sandbox's service). CORTADO_BIN points the
/// script at this build's binary.
#[test]
fn rehearse_script_stops_its_sandbox() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Output to a file: a server left behind would hold a pipe open, and wait forever.
    let log = std::env::temp_dir().join(format!("cortado-rehearse-{port}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let status = Command::new("sh")
        .arg(root.join("examples/blue-green/rehearse.sh"))
        .env("CORTADO_BIN", env!("CARGO_BIN_EXE_cortado"))
        .env("CORTADO_SANDBOX_PORT", port.to_string())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .expect("run rehearse.sh");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(status.success(), "{text}");
    // The server may take a moment to go after SIGTERM; it must go.
    let stopped = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    assert!(
        stopped,
        "a sandbox still listens on port {port} after rehearse.sh"
    );
}
