//! The generated reference pages: `docs/reference/commands.md` from the command line's
//! definition (clap's introspection of [`crate::cli::command`]) and `docs/reference/config.md`
//! from the typed config sections ([`crate::config::schema::sections`]). A test compares the committed
//! pages with what these functions return, so the pages cannot drift from the code.

use std::fmt::Write as _;

use crate::cli::{docs_page, groups_of};
use crate::config::schema::{Section, sections};

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

/// The name a section's file goes by in the page.
fn file_title(file: &str) -> &'static str {
    if file == "release" {
        "release file"
    } else {
        "cortado.yml"
    }
}

/// `docs/reference/config.md`: every key of a config file and of a release file, by section,
/// with what it means, from the typed sections ([`sections`]): a key and its meaning are
/// declared in one place, where the readers match on them.
pub fn config_page() -> String {
    config_page_of(sections())
}

fn config_page_of(sections: &[&Section]) -> String {
    let mut out = String::from("# Config key reference\n\n");
    out.push_str(&banner("the typed config sections (src/config/schema.rs)"));
    out.push_str(
        "Every key cortado reads, by file and section; a key not listed is a warning with a \
         suggestion (a config file) or an error (a release file, a verify gate). How to write \
         them: [config files](../guides/config-files.md), \
         [releases](../guides/releases-and-one-off-tasks.md), \
         [how a deploy works](../concepts/how-a-deploy-works.md).\n",
    );
    let mut file = "";
    for section in sections {
        if section.file != file {
            file = section.file;
            let _ = write!(out, "\n## {}\n", file_title(file));
        }
        let title = if section.path.is_empty() {
            "top level".to_string()
        } else {
            format!("`{}`", section.path)
        };
        let _ = write!(out, "\n### {title}\n\n");
        if !section.doc().is_empty() {
            let _ = write!(out, "{}\n\n", section.doc());
        }
        out.push_str("| key | meaning |\n| --- | --- |\n");
        for (key, doc) in section.keys() {
            let _ = writeln!(out, "| `{key}` | {} |", cell(doc));
        }
    }
    out
}

/// Keys declared without a meaning (the page would show an empty cell). Empty when every key
/// says what it is for.
pub fn key_doc_problems() -> Vec<String> {
    problems_of(sections())
}

fn problems_of(sections: &[&Section]) -> Vec<String> {
    sections
        .iter()
        .flat_map(|s| s.keys().iter().map(move |(k, d)| (s, k, d)))
        .filter(|(_, _, d)| d.trim().is_empty())
        .map(|(s, k, _)| {
            let place = if s.path.is_empty() {
                k.to_string()
            } else {
                format!("{}.{k}", s.path)
            };
            format!("{} {place}: no description", file_title(s.file))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_key_has_its_row_and_its_meaning() {
        assert_eq!(key_doc_problems(), Vec::<String>::new());
        let page = config_page();
        for section in sections() {
            for (key, doc) in section.keys() {
                let row = format!("| `{key}` | {} |", cell(doc));
                assert!(page.contains(&row), "no row {row}");
            }
        }
        assert!(page.contains("### `rollout.fast_fail`"));
        assert!(page.contains("## release file"));
    }
}
