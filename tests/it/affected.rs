//! `cortado affected` and `deploy --affected-since` on a copy of examples/monorepo inside a
//! git repository: each edit must touch exactly the steps that read what changed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A copy of examples/monorepo committed to a fresh git repository (tag `base`), with a few
/// source files of its own.
struct Repo {
    dir: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

impl Repo {
    fn new(label: &str) -> Repo {
        let dir =
            std::env::temp_dir().join(format!("cortado-affected-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monorepo");
        copy_dir(&example, &dir);
        let r = Repo { dir };
        r.write("src/api/main.go", "package main\n");
        r.write(
            "src/api/migrations/001_init.sql",
            "create table t (id int);\n",
        );
        r.write("src/web/app.js", "export {}\n");
        r.write("README.md", "# shop\n");
        r.write(
            "services/api/scripts/smoke.sh",
            "curl -f http://api/health\n",
        );
        r.git(&["init", "-q", "-b", "main"]);
        r.commit("base");
        r.git(&["tag", "base"]);
        r
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn append(&self, rel: &str, text: &str) {
        let old = std::fs::read_to_string(self.dir.join(rel)).unwrap();
        self.write(rel, &format!("{old}{text}"));
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(&self.dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
    }

    /// Back to `base`, untracked files gone.
    fn reset(&self) {
        self.git(&["reset", "-q", "--hard", "base"]);
        self.git(&["clean", "-q", "-fd"]);
    }

    fn cortado(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cortado"));
        cmd.current_dir(&self.dir).args(args).env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run cortado")
    }

    /// `cortado affected --output json` against `base` (to HEAD, or the working tree).
    fn affected(&self, head: Option<&str>) -> Value {
        let mut args = vec![
            "affected",
            "--release",
            "cortado-release.yml",
            "--base",
            "base",
            "--output",
            "json",
        ];
        if let Some(h) = head {
            args.extend(["--head", h]);
        }
        let out = self.cortado(&args, &[]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
    }

    /// The configs of the affected steps (their folder below services/), as a set.
    fn touched(&self, head: Option<&str>) -> BTreeSet<String> {
        let v = self.affected(head);
        v["affected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let c = a["config"].as_str().unwrap();
                c.trim_start_matches("services/")
                    .trim_end_matches("/cortado.yml")
                    .to_string()
            })
            .collect()
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const ALL: &[&str] = &[
    "migrate",
    "api",
    "web",
    "admin",
    "workers/images",
    "workers/mail",
    "workers/reports",
];

/// What the edit is, the edit, the configs it must touch.
type Case<'a> = (&'a str, &'a dyn Fn(&Repo), &'a [&'a str]);

#[test]
fn each_edit_touches_exactly_the_steps_that_read_it() {
    let repo = Repo::new("edits");
    let cases: &[Case] = &[
        (
            "a shared Jsonnet import: every worker imports it",
            &|r| r.append("services/workers/worker.libsonnet", "// tuned\n"),
            &["workers/images", "workers/mail", "workers/reports"],
        ),
        (
            "one worker's own definition file",
            &|r| {
                r.write(
                    "services/workers/mail/ecs-task-def.jsonnet",
                    "(import '../worker.libsonnet')('mail') + { cpu: '512' }\n",
                )
            },
            &["workers/mail"],
        ),
        (
            "a service's own sources (`paths:`)",
            &|r| r.append("src/web/app.js", "console.log(1)\n"),
            &["web"],
        ),
        (
            "a migration is the api's source and the migration step's",
            &|r| r.write("src/api/migrations/002_more.sql", "alter table t;\n"),
            &["migrate", "api"],
        ),
        (
            "an envfile variable only the migration names",
            &|r| {
                let text = std::fs::read_to_string(r.dir.join("release.env")).unwrap();
                r.write(
                    "release.env",
                    &text.replace("MIGRATE_TAG=v1--exit-0-after-3s", "MIGRATE_TAG=v2"),
                )
            },
            &["migrate"],
        ),
        (
            "an envfile variable every definition names",
            &|r| {
                let text = std::fs::read_to_string(r.dir.join("release.env")).unwrap();
                r.write(
                    "release.env",
                    &text.replace("RELEASE=2026.11.29", "RELEASE=2026.12.05"),
                )
            },
            ALL,
        ),
        (
            "a new envfile variable no file names: in doubt, every user",
            &|r| r.append("release.env", "FEATURE_X=on\n"),
            ALL,
        ),
        (
            "a comment in an envfile changes no variable",
            &|r| r.append("release.env", "# nothing\n"),
            &[],
        ),
        (
            "an unrelated file",
            &|r| r.append("README.md", "more\n"),
            &[],
        ),
        (
            "an unknown file under a config's folder: in doubt, deploy it",
            &|r| r.write("services/api/notes.txt", "?\n"),
            &["api"],
        ),
        (
            "an unknown file in a folder holding configs only below it",
            &|r| r.write("services/workers/README.md", "workers\n"),
            &[],
        ),
        (
            "a service definition",
            &|r| {
                let p = "services/admin/ecs-service-def.json";
                let text = std::fs::read_to_string(r.dir.join(p)).unwrap();
                let edited = text.replace("\"desiredCount\": 1", "\"desiredCount\": 3");
                assert_ne!(edited, text, "the edit changes the file");
                r.write(p, &edited)
            },
            &["admin"],
        ),
        (
            "a file deleted under a config's folder",
            &|r| std::fs::remove_file(r.dir.join("services/api/scripts/smoke.sh")).unwrap(),
            &["api"],
        ),
        (
            "a source file moved from one service to another: both",
            &|r| {
                std::fs::create_dir_all(r.dir.join("src/admin")).unwrap();
                std::fs::rename(r.dir.join("src/web/app.js"), r.dir.join("src/admin/app.js"))
                    .unwrap()
            },
            &["web", "admin"],
        ),
        (
            "the release file",
            &|r| r.append("cortado-release.yml", "# a note\n"),
            ALL,
        ),
    ];
    for (what, edit, expected) in cases {
        edit(&repo);
        // Uncommitted (untracked files included), then committed and compared to HEAD.
        assert_eq!(repo.touched(None), set(expected), "{what} (working tree)");
        repo.commit(what);
        assert_eq!(
            repo.touched(Some("HEAD")),
            set(expected),
            "{what} (committed)"
        );
        repo.reset();
    }
}

#[test]
fn json_text_and_the_actions_matrix_say_the_same() {
    let repo = Repo::new("outputs");
    repo.append("services/workers/worker.libsonnet", "// tuned\n");
    repo.append("src/web/app.js", "x\n");
    repo.append("README.md", "x\n");
    repo.commit("edit");

    let v = repo.affected(Some("HEAD"));
    assert_eq!(
        v["changed"],
        serde_json::json!([
            "README.md",
            "services/workers/worker.libsonnet",
            "src/web/app.js"
        ])
    );
    assert_eq!(v["untouched"], serde_json::json!(["README.md"]));
    let web = &v["affected"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["action"], "deploy");
    assert_eq!(web["because"][0]["path"], "src/web/app.js");
    let mail = v["affected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["config"] == "services/workers/mail/cortado.yml")
        .unwrap();
    assert_eq!(
        mail["because"][0]["why"],
        "imported by ecs-task-def.jsonnet"
    );
    assert_eq!(
        v["unaffected"],
        serde_json::json!(["migrate", "api", "admin"])
    );

    let output = repo.dir.join("github-output");
    let out = repo.cortado(
        &[
            "affected",
            "--release",
            "cortado-release.yml",
            "--base",
            "base",
            "--head",
            "HEAD",
        ],
        &[
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
            ("GITHUB_ACTIONS", "true"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(rows, ["web", "workers", "workers", "workers"], "{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("4 of 7 steps affected by 3 changed files"),
        "{stderr}"
    );
    let outputs = std::fs::read_to_string(&output).unwrap();
    let matrix = outputs
        .lines()
        .find_map(|l| l.strip_prefix("matrix="))
        .unwrap();
    let matrix: Value = serde_json::from_str(matrix).unwrap();
    assert_eq!(matrix, v["matrix"]);
    let names: Vec<(&str, &str)> = matrix["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["config"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("web", "services/web/cortado.yml"),
            ("workers", "services/workers/images/cortado.yml"),
            ("workers", "services/workers/mail/cortado.yml"),
            ("workers", "services/workers/reports/cortado.yml"),
        ]
    );
    assert!(outputs.contains("any=true\n"), "{outputs}");
    assert!(
        outputs.contains("steps=[\"web\",\"workers\"]\n"),
        "{outputs}"
    );
}

#[test]
fn a_migration_alone_is_not_a_matrix_deploy_and_nothing_changed_is_an_empty_matrix() {
    let repo = Repo::new("matrix");
    let output = repo.dir.join("github-output");
    let run = |head: &str| {
        let _ = std::fs::remove_file(&output);
        let out = repo.cortado(
            &[
                "affected",
                "--release",
                "cortado-release.yml",
                "--base",
                "base",
                "--head",
                head,
            ],
            &[("GITHUB_OUTPUT", output.to_str().unwrap())],
        );
        assert!(out.status.success(), "{out:?}");
        std::fs::read_to_string(&output).unwrap()
    };
    assert_eq!(
        run("HEAD"),
        "matrix={\"include\":[]}\nany=false\nsteps=[]\n"
    );
    repo.write("services/migrate/extra.sql", "x\n");
    repo.commit("migration");
    // The migration is a `run:` step: touched (in `steps`), but no job of the matrix.
    assert_eq!(
        run("HEAD"),
        "matrix={\"include\":[]}\nany=false\nsteps=[\"migrate\"]\n"
    );
}

#[test]
fn configs_given_with_c_are_the_steps_without_a_release() {
    let repo = Repo::new("configs");
    repo.append("services/workers/worker.libsonnet", "// tuned\n");
    repo.append("src/web/app.js", "x\n");
    let out = repo.cortado(
        &[
            "affected",
            "-c",
            "services/*/cortado.yml",
            "--base",
            "base",
            "--output",
            "json",
        ],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Without the release, no `paths:`: web's sources are nobody's; the pattern names no
    // worker (they sit one folder deeper), so the shared import touches nothing either.
    assert_eq!(v["affected"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["unaffected"],
        serde_json::json!([
            "services/admin/cortado.yml",
            "services/api/cortado.yml",
            "services/migrate/cortado.yml",
            "services/web/cortado.yml"
        ])
    );
    let out = repo.cortado(
        &[
            "affected",
            "-c",
            "services/workers/*/cortado.yml",
            "--base",
            "base",
            "--output",
            "json",
        ],
        &[],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["affected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "services/workers/images/cortado.yml",
            "services/workers/mail/cortado.yml",
            "services/workers/reports/cortado.yml"
        ]
    );
}

#[test]
fn bad_refs_and_folders_outside_git_are_clear_errors() {
    let repo = Repo::new("errors");
    let out = repo.cortado(
        &[
            "affected",
            "--release",
            "cortado-release.yml",
            "--base",
            "no-such-ref",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("git merge-base no-such-ref HEAD failed"),
        "{stderr}"
    );
    assert!(stderr.contains("fetch-depth: 0"), "{stderr}");
    let out = repo.cortado(
        &[
            "affected",
            "--release",
            "cortado-release.yml",
            "--base",
            "--x",
        ],
        &[],
    );
    assert_ne!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn deploy_affected_since_deploys_only_the_touched_steps_in_order() {
    let repo = Repo::new("deploy");
    // Nothing changed: nothing to deploy, and nothing connects (no AWS settings at all); in
    // Actions the step outputs say so.
    let output = repo.dir.join("github-output");
    let out = repo.cortado(
        &[
            "deploy",
            "--release",
            "cortado-release.yml",
            "--affected-since",
            "base",
        ],
        &[
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
            ("GITHUB_ACTIONS", "true"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to deploy"),
        "{out:?}"
    );
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("status=no-change\n"), "{outputs}");
    assert!(outputs.contains("services=[]\n"), "{outputs}");
    // The api's sources and the mail worker: those two, api's order kept, on the sandbox.
    repo.append("src/api/main.go", "// v2\n");
    repo.append("services/workers/mail/ecs-service-def.json", "\n");
    repo.commit("api and mail");
    let out = repo.cortado(
        &[
            "deploy",
            "--sandbox",
            "--sandbox-speed",
            "200",
            "--output",
            "json",
            "--release",
            "cortado-release.yml",
            "--affected-since",
            "base",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "result")
        .unwrap_or_else(|| panic!("no result: {out:?}"));
    let services: Vec<&str> = result["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["api", "mail"], "{out:?}");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2 of 7 steps (api, workers)"),
        "{out:?}"
    );
}

#[test]
fn a_matrix_job_deploys_its_config_as_a_step_of_the_release() {
    let repo = Repo::new("matrix-job");
    // web's definitions need RELEASE (`must_env`), which only the release's envfile sets: the
    // step is deployed with the release's settings, and alone.
    let out = repo.cortado(
        &[
            "deploy",
            "--sandbox",
            "--sandbox-speed",
            "200",
            "--output",
            "json",
            "--release",
            "cortado-release.yml",
            "--config",
            "services/web/cortado.yml",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "result")
        .unwrap_or_else(|| panic!("no result: {out:?}"));
    let services: Vec<&str> = result["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["web"], "{out:?}");
    // A config that is no step of the release: refused before anything connects.
    let out = repo.cortado(
        &[
            "deploy",
            "--release",
            "cortado-release.yml",
            "--config",
            "README.md",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "--config names README.md which no step of cortado-release.yml deploys or runs"
        ),
        "{out:?}"
    );
}
