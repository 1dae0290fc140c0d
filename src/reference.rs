//! The generated reference pages: `docs/reference/commands.md` from the command line's
//! definition (clap's introspection of [`crate::cli::command`]) and `docs/reference/config.md`
//! from the config key tables ([`crate::config::key_tables`]). A test compares the committed
//! pages with what these functions return, so the pages cannot drift from the code.

use std::fmt::Write as _;

use crate::cli::{docs_page, groups_of};
use crate::config::{KeyTable, key_tables};

/// The command that rewrites the generated pages; stale pages name it.
pub const REGENERATE: &str = "CORTADO_UPDATE_DOCS=1 cargo test --locked --test it docs::reference";

/// The generated pages: their path in the repository and their text.
pub fn pages() -> Vec<(&'static str, String)> {
    vec![
        ("docs/reference/commands.md", commands_page()),
        ("docs/reference/config.md", config_page()),
    ]
}

fn banner(source: &str) -> String {
    format!(
        "<!-- Generated from {source}: do not edit by hand.\n     Regenerate: {REGENERATE} -->\n\n"
    )
}

/// Markdown inside a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// `text` ending with a full stop (clap drops the one of a one-sentence help).
fn sentence(text: &str) -> String {
    if text.is_empty() || text.ends_with(['.', '!', '?']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// GitHub's anchor of a heading made of `text` in backticks.
fn anchor(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Commands

/// `docs/reference/commands.md`: the global options once, then every command (grouped as
/// `cortado --help` groups them), its subcommands, arguments and flags, with help, default,
/// accepted values and environment variable.
pub fn commands_page() -> String {
    let mut root = crate::cli::command();
    root.build();
    let mut out = String::from("# Command reference\n\n");
    out.push_str(&banner(
        "the command line's definition (src/cli.rs, src/commands/)",
    ));
    out.push_str(
        "Every command and flag, as `cortado COMMAND --help` prints them. What the commands are \
         for, by task: [the commands guide](../guides/commands.md).\n\n",
    );
    let groups = groups_of(&root);
    for (group, names) in &groups {
        let links: Vec<String> = names
            .iter()
            .map(|n| format!("[{n}](#{})", anchor(&format!("cortado {n}"))))
            .collect();
        let _ = writeln!(out, "- {group}: {}", links.join(" · "));
    }
    out.push_str("- [Global options](#global-options)\n\n## Global options\n\n");
    out.push_str(
        "Every command takes these; each may also be set by its environment variable.\n\n",
    );
    let globals: Vec<&clap::Arg> = root.get_arguments().filter(|a| shown(a)).collect();
    out.push_str(&args_table(&globals));
    for (group, names) in &groups {
        let _ = write!(out, "\n## {group}\n");
        for name in names {
            if let Some(cmd) = root.find_subcommand(name) {
                command_section(&mut out, cmd, 3, docs_page(name));
            }
        }
    }
    out
}

/// An argument the reference lists: not hidden, not clap's own `--help` / `--version`.
fn shown(a: &clap::Arg) -> bool {
    !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version")
}

/// One command's section, and its subcommands' one level down.
fn command_section(out: &mut String, cmd: &clap::Command, level: usize, page: Option<&str>) {
    let path = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string();
    let _ = write!(out, "\n{} `{path}`\n\n", "#".repeat(level));
    let about = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|s| s.to_string())
        .unwrap_or_default();
    if !about.is_empty() {
        let _ = write!(out, "{}\n\n", sentence(about.trim()));
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage: Vec<&str> = usage
        .trim()
        .trim_start_matches("Usage:")
        .lines()
        .map(str::trim)
        .collect();
    let _ = write!(out, "```text\n{}\n```\n", usage.join("\n"));
    let own: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| shown(a) && !a.is_global_set())
        .collect();
    if !own.is_empty() {
        out.push('\n');
        out.push_str(&args_table(&own));
    }
    if let Some(page) = page {
        let _ = writeln!(out, "\nRead more: [{page}](../../{page})");
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() != "help" {
            command_section(out, sub, level + 1, None);
        }
    }
}

/// A table of arguments: how to write it, its help, default, values and variable.
fn args_table(args: &[&clap::Arg]) -> String {
    let mut out =
        String::from("| argument | description | default | env |\n| --- | --- | --- | --- |\n");
    for a in args {
        let help = a
            .get_long_help()
            .or(a.get_help())
            .map(|s| s.to_string())
            .unwrap_or_default();
        let mut description = sentence(&cell(&help));
        let values: Vec<String> = a
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| match v.get_help() {
                Some(h) => format!("`{}`: {}", v.get_name(), cell(&h.to_string())),
                None => format!("`{}`", v.get_name()),
            })
            .collect();
        if !values.is_empty() && a.get_action().takes_values() {
            let described = a
                .get_possible_values()
                .iter()
                .any(|v| v.get_help().is_some());
            let sep = if described { "; " } else { ", " };
            let _ = write!(description, " One of: {}.", values.join(sep));
        }
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = if defaults.is_empty() || !a.get_action().takes_values() {
            String::new()
        } else {
            format!("`{}`", defaults.join(","))
        };
        let env = a
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{}` | {description} | {default} | {env} |",
            spelling(a)
        );
    }
    out
}

/// How an argument is written: `-c, --config <CONFIG>`, `--dry-run`, `<SHELL>`, `[IMAGE]...`.
fn spelling(a: &clap::Arg) -> String {
    let value = || {
        let names: Vec<String> = match a.get_value_names() {
            Some(names) => names.iter().map(|n| n.to_string()).collect(),
            None => vec![a.get_id().as_str().to_uppercase()],
        };
        names
            .iter()
            .map(|n| format!("<{n}>"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if a.is_positional() {
        let many = a.get_num_args().is_some_and(|n| n.max_values() > 1);
        let v = value();
        let v = if a.is_required_set() {
            v
        } else {
            format!("[{}]", v.trim_matches(['<', '>']))
        };
        return if many { format!("{v}...") } else { v };
    }
    let mut names = Vec::new();
    if let Some(s) = a.get_short() {
        names.push(format!("-{s}"));
    }
    if let Some(l) = a.get_long() {
        names.push(format!("--{l}"));
    }
    let mut s = names.join(", ");
    if a.get_action().takes_values() {
        s.push(' ');
        s.push_str(&value());
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Config keys

/// `docs/reference/config.md`: every key of a config file and of a release file, by section,
/// with what it means. The keys come from [`key_tables`]; their descriptions from
/// [`KEY_DOCS`], and a key without a description (or a description of no key) is an error.
pub fn config_page() -> String {
    let tables = key_tables();
    let mut out = String::from("# Config key reference\n\n");
    out.push_str(&banner(
        "the key tables of the code (src/config.rs, src/deploy/local.rs, src/release.rs)",
    ));
    out.push_str(
        "Every key cortado reads, by file and section; a key not listed is a warning with a \
         suggestion (a config file) or an error (a release file). How to write them: \
         [config files](../guides/config-files.md), [releases](../guides/releases-and-one-off-tasks.md), \
         [how a deploy works](../concepts/how-a-deploy-works.md).\n",
    );
    let mut file = "";
    for t in &tables {
        if t.file != file {
            file = t.file;
            let _ = write!(out, "\n## {file}\n");
        }
        let title = if t.section.is_empty() {
            "top level".to_string()
        } else {
            format!("`{}`", t.section)
        };
        let _ = write!(out, "\n### {title}\n\n| key | meaning |\n| --- | --- |\n");
        for key in &t.keys {
            let doc = key_doc(t, key).unwrap_or("(undocumented)");
            let _ = writeln!(out, "| `{key}` | {} |", cell(doc));
        }
    }
    out
}

/// The description of `key` in table `t`: the table's own, else [`KEY_DOCS`]'s.
fn key_doc(t: &KeyTable, key: &str) -> Option<&'static str> {
    let full = qualified(t, key);
    t.docs
        .iter()
        .find(|(k, _)| *k == key)
        .or_else(|| KEY_DOCS.iter().find(|(k, _)| *k == full))
        .map(|(_, d)| *d)
}

fn qualified(t: &KeyTable, key: &str) -> String {
    let prefix = if t.file.starts_with("release") {
        "release:"
    } else {
        ""
    };
    if t.section.is_empty() {
        format!("{prefix}{key}")
    } else {
        format!("{prefix}{}.{key}", t.section)
    }
}

/// What the key tables and [`KEY_DOCS`] disagree on: keys without a description, and
/// descriptions of keys no table has. Empty when they agree.
pub fn key_doc_problems() -> Vec<String> {
    problems_of(&key_tables())
}

fn problems_of(tables: &[KeyTable]) -> Vec<String> {
    let known: Vec<String> = tables
        .iter()
        .flat_map(|t| t.keys.iter().map(move |k| qualified(t, k)))
        .collect();
    let mut problems: Vec<String> = tables
        .iter()
        .flat_map(|t| t.keys.iter().map(move |k| (t, k)))
        .filter(|(t, k)| key_doc(t, k).is_none())
        .map(|(t, k)| {
            format!(
                "{}: no description (in its key table or reference::KEY_DOCS)",
                qualified(t, k)
            )
        })
        .collect();
    problems.extend(
        KEY_DOCS
            .iter()
            .filter(|(d, _)| !known.iter().any(|k| k == d))
            .map(|(d, _)| format!("{d}: described in reference::KEY_DOCS but no key table has it")),
    );
    problems
}

/// What each key means, by its place: `section.key` in a config file, `release:section.key`
/// in a release file.
const KEY_DOCS: &[(&str, &str)] = &[
    (
        "region",
        "AWS region of the service. `--region` wins; cortado never guesses one.",
    ),
    ("cluster", "Cluster name (default: `default`)."),
    ("service", "Service name."),
    (
        "service_definition",
        "File of the service definition (CreateService input), relative to the config file. Optional: without it, cortado updates an existing service to the new task definition but cannot create one.",
    ),
    (
        "task_definition",
        "File of the task definition: RegisterTaskDefinition input, or describe-task-definition output (read-only fields are dropped).",
    ),
    (
        "express_definition",
        "File of an ECS Express Mode service (CreateExpressGatewayService input), instead of a service definition.",
    ),
    (
        "timeout",
        "Deadline of waits, a Go-style duration (`90s`, `10m`, `1h30m`; a bare number is seconds). `--timeout` wins; default 10 minutes.",
    ),
    (
        "plugins",
        "Template function providers: a list of `{name, config, func_prefix}` (`ssm`, `secretsmanager`, `tfstate`, `cloudformation`).",
    ),
    (
        "codedeploy",
        "ecspresso's CodeDeploy settings (application, deployment group) for a service with the CODE_DEPLOY controller.",
    ),
    (
        "appspec",
        "Hooks of the AppSpec a CodeDeploy deployment sends.",
    ),
    (
        "required_version",
        "The ecspresso version the config is written for, as a constraint (`>= 2.0.0, < 3`); checked against the format cortado implements.",
    ),
    (
        "ignore",
        "What to leave out when comparing with what runs, e.g. `tags:` written by other tools.",
    ),
    (
        "filter_command",
        "Accepted for compatibility with ecspresso; unused.",
    ),
    ("rollout", "cortado's own deploy settings (the keys below)."),
    (
        "rollout.rollback",
        "Roll back when the deploy fails (default `true`; `--no-rollback` wins).",
    ),
    (
        "rollout.on_cancel",
        "On SIGINT or SIGTERM: `rollback` (default) or `leave` the deployment running.",
    ),
    (
        "rollout.fast_fail",
        "Stop a rollout early on evidence, before ECS's circuit breaker would: `true`, `false`, or the keys below.",
    ),
    (
        "rollout.wait_rollback",
        "How long a rollback is followed: `serving` (default: the earlier revision serves alone) or `complete` (ECS also finished draining).",
    ),
    (
        "rollout.verify",
        "Gates: programs run at lifecycle stages of a blue/green, canary or linear deployment; a list of the keys below.",
    ),
    (
        "rollout.fast_fail.enabled",
        "Turns fast-fail on or off (default on).",
    ),
    (
        "rollout.fast_fail.same_reason_stops",
        "How many of our tasks stopped with the same non-transient reason fail the rollout (default 2, at least 1).",
    ),
    (
        "rollout.fast_fail.unhealthy_target_for",
        "How long a target of the new tasks may stay unhealthy before the rollout fails (default 5m; `0` turns it off).",
    ),
    (
        "rollout.verify[].stage",
        "The lifecycle stage the gate runs at, e.g. `POST_TEST_TRAFFIC_SHIFT`.",
    ),
    (
        "rollout.verify[].run",
        "The command, a string or a list of words, run in the config file's folder without a shell: a path relative to it, or a name on PATH. Exit 0 lets the deployment go on.",
    ),
    (
        "rollout.verify[].timeout",
        "How long the gate may run, a Go-style duration (default 10m).",
    ),
    (
        "release:envfiles",
        "Envfiles loaded for every config of the release, before `--envfile`.",
    ),
    (
        "release:ext_str",
        "Jsonnet external string variables for every config; `--ext-str` wins.",
    ),
    (
        "release:ext_code",
        "Jsonnet external code variables for every config; `--ext-code` wins.",
    ),
    (
        "release:parallel",
        "How many steps run at once (default for `--parallel`, else 16).",
    ),
    (
        "release:on_failure",
        "What a failure does to the rest (default for `--on-failure`): `rollback-failed`, `rollback-all` or `stop`.",
    ),
    (
        "release:steps",
        "The steps of the release, in file order: each deploys configs or runs a one-off task.",
    ),
    (
        "release:steps[].name",
        "The step's name, for `after:` and the output (default: the name of the config file's folder).",
    ),
    (
        "release:steps[].config",
        "The config file the step deploys (or whose task definition it runs), or a pattern matching several; relative to the release file. Required.",
    ),
    (
        "release:steps[].after",
        "Names of the steps that must succeed before this one starts.",
    ),
    (
        "release:steps[].run",
        "Run a one-off task instead of a deploy: the keys below.",
    ),
    (
        "release:steps[].run.command",
        "The command of the task's container, a list of words.",
    ),
    (
        "release:steps[].run.container",
        "The container the command and environment apply to (default: the first essential one).",
    ),
    (
        "release:steps[].run.env",
        "Environment variables of that container, a mapping.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_without_a_description_and_a_description_without_a_key_are_problems() {
        let mut tables = key_tables();
        assert_eq!(problems_of(&tables), Vec::<String>::new());
        tables[1].keys.push("brand_new");
        tables[2].keys.retain(|k| *k != "enabled");
        assert_eq!(
            problems_of(&tables),
            vec![
                "rollout.brand_new: no description (in its key table or reference::KEY_DOCS)",
                "rollout.fast_fail.enabled: described in reference::KEY_DOCS but no key table has it",
            ]
        );
        // A table that carries its own description needs none in KEY_DOCS.
        tables[1].docs.push(("brand_new", "New."));
        assert_eq!(problems_of(&tables).len(), 1);
        assert!(config_page().contains("| `same_reason_stops` | How many of our tasks"));
    }
}
