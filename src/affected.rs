//! `cortado affected`: which steps of a release (or which configs) a change touches, from the
//! files each one reads — collected statically: the config file is rendered (its template
//! functions only read the environment), definition files are only scanned for their Jsonnet
//! imports, never rendered, so no lookup runs and no AWS call is made.
//!
//! Receives the release (its steps), the render context (for the config files) and the
//! changed paths (`git diff --name-only` through the git binary, [`Diff::between`]). Hands on,
//! for each step touched, why ([`Affected`]):
//! - a file the step's config reads: the config itself, its task / service / express
//!   definitions, their Jsonnet imports followed transitively (`import`, `importstr`,
//!   `importbin`; cortado's Go templates have no include), a local tfstate of the `tfstate`
//!   plugin;
//! - a path matching the step's `paths:` (the service's own sources);
//! - the release file itself, or an envfile of the run (`envfiles:`, `--envfile`): every
//!   step, except that an envfile whose variables can be compared touches only the steps
//!   whose files name a variable that changed (none when only comments changed; every step
//!   when a changed variable is named by no file);
//! - anything else under a config's folder (a script a gate runs, a file cortado cannot
//!   attribute): the configs of the deepest such folder — in doubt, deploy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use crate::error::{Diagnostic, Error, Result};
use crate::pathglob::absolute;
use crate::release::{Action, Release};
use crate::render::{Format, RenderContext};
use crate::untrusted::Untrusted;

/// The changed files between two points of a git history.
#[derive(Debug, Clone)]
pub(crate) struct Diff {
    /// The repository's top folder (git's paths are relative to it).
    pub(crate) top: PathBuf,
    /// The commit compared from: the merge base of `--base` and the head.
    pub(crate) from: String,
    /// `--head`, or none for the working tree (uncommitted and untracked files included).
    pub(crate) head: Option<String>,
    /// The changed paths as git prints them (relative to `top`), sorted.
    pub(crate) changed: Vec<String>,
}

/// Runs git in `dir`; its stdout, or an error saying what failed.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            Error::bad_input(format!("cannot run git: {e}"))
                .with_hint("`cortado affected` needs the git binary on PATH")
        })?;
    if !out.status.success() {
        let stderr = Untrusted::from_bytes(&out.stderr);
        return Err(Error::bad_input(format!(
            "git {} failed: {}",
            args.join(" "),
            stderr.as_str().trim()
        ))
        .with_hint(
            "is the folder in a git repository and the ref fetched? In GitHub Actions check out \
             with `fetch-depth: 0` (a shallow clone lacks the base commit)",
        ));
    }
    Ok(out.stdout)
}

fn nul_separated(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

impl Diff {
    /// The files changed from the merge base of `base` and `head` (`HEAD` when none) to
    /// `head`, or to the working tree when `head` is none. Renames count as a deletion and an
    /// addition, so both paths are seen.
    pub(crate) fn between(dir: &Path, base: &str, head: Option<&str>) -> Result<Diff> {
        for r in std::iter::once(base).chain(head) {
            if r.is_empty() || r.starts_with('-') {
                return Err(Error::bad_input(format!("{r:?} is not a git ref"))
                    .with_hint("give a branch, tag or commit: --base origin/main"));
            }
        }
        let top = String::from_utf8_lossy(&git(dir, &["rev-parse", "--show-toplevel"])?)
            .trim()
            .to_string();
        let top = PathBuf::from(top);
        let from =
            String::from_utf8_lossy(&git(&top, &["merge-base", base, head.unwrap_or("HEAD")])?)
                .trim()
                .to_string();
        let mut args = vec!["diff", "--name-only", "--no-renames", "-z", from.as_str()];
        if let Some(h) = head {
            args.push(h);
        }
        let mut changed = nul_separated(&git(&top, &args)?);
        if head.is_none() {
            changed.extend(nul_separated(&git(
                &top,
                &["ls-files", "--others", "--exclude-standard", "-z"],
            )?));
        }
        changed.sort();
        changed.dedup();
        Ok(Diff {
            top,
            from,
            head: head.map(str::to_string),
            changed,
        })
    }

    /// The text of `rel` at the compared-from commit, when it existed there.
    fn text_before(&self, rel: &str) -> Option<String> {
        let spec = format!("{}:{rel}", self.from);
        git(&self.top, &["show", &spec])
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The text of `rel` at the head (the working tree when there is no `--head`).
    fn text_after(&self, rel: &str) -> Option<String> {
        match &self.head {
            None => std::fs::read_to_string(self.top.join(rel)).ok(),
            Some(h) => {
                let spec = format!("{h}:{rel}");
                git(&self.top, &["show", &spec])
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            }
        }
    }
}

/// What one config reads, each file with why.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    /// Absolute path -> why the config reads it.
    pub(crate) files: BTreeMap<PathBuf, String>,
    /// The config's folder (absolute).
    pub(crate) folder: PathBuf,
    /// The text of each file read, for envfile variables (empty for unreadable files).
    texts: Vec<String>,
    /// The config could not be loaded: every change under its folder touches it.
    pub(crate) opaque: bool,
}

impl Reads {
    fn add(&mut self, path: &Path, why: String) {
        let abs = absolute(path);
        if self.files.contains_key(&abs) {
            return;
        }
        self.files.insert(abs.clone(), why);
        let text = std::fs::read_to_string(&abs).unwrap_or_default();
        if Format::of(&abs) == Format::Jsonnet {
            let name = shown(&abs, &self.folder);
            for import in jsonnet_imports(&text) {
                let dir = abs.parent().unwrap_or(Path::new("/"));
                self.add(&dir.join(import), format!("imported by {name}"));
            }
        }
        self.texts.push(text);
    }

    /// Whether any file read names `var` as a word.
    fn names(&self, var: &str) -> bool {
        self.texts.iter().any(|t| has_word(t, var))
    }
}

/// `path` relative to `folder` (with `..` when it is outside), for a reason's text; a relative
/// `path` as it is.
fn shown(path: &Path, folder: &Path) -> String {
    if !path.is_absolute() {
        return path.display().to_string();
    }
    let a: Vec<Component> = path.components().collect();
    let b: Vec<Component> = folder.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &a[common..] {
        out.push(c);
    }
    out.display().to_string()
}

fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// The files a config reads, collected without rendering a definition. A config that does
/// not load is opaque (with a warning): every change under its folder touches it.
pub(crate) fn reads_of(
    ctx: &RenderContext,
    config: &Path,
    warnings: &mut Vec<Diagnostic>,
) -> Reads {
    let abs = absolute(config);
    let mut r = Reads {
        folder: abs.parent().map(Path::to_path_buf).unwrap_or_default(),
        ..Reads::default()
    };
    r.add(&abs, "the config".to_string());
    match crate::config::load(ctx, config) {
        Ok(c) => {
            for (what, p) in [
                ("the task definition", &c.task_definition),
                ("the service definition", &c.service_definition),
                ("the express definition", &c.express_definition),
            ] {
                if let Some(p) = p {
                    r.add(p, what.to_string());
                }
            }
            let dir = config.parent().unwrap_or(Path::new(""));
            for p in c.plugins.iter().filter(|p| p.name == "tfstate") {
                let local = match (p.config.get("path"), p.config.get("url")) {
                    (Some(serde_json::Value::String(s)), _) => Some(s.as_str()),
                    (_, Some(serde_json::Value::String(u))) => u.strip_prefix("file://"),
                    _ => None,
                };
                if let Some(s) = local {
                    r.add(&dir.join(s), "the tfstate plugin's state".to_string());
                }
            }
        }
        Err(e) => {
            r.opaque = true;
            let why = e
                .diagnostics
                .first()
                .map_or_else(|| "it does not load".to_string(), |d| d.message.clone());
            warnings.push(
                Diagnostic::warning(format!(
                    "{} does not load ({why}): any change under its folder counts as touching it",
                    config.display()
                ))
                .hint("run `cortado validate` on it"),
            );
        }
    }
    r
}

/// The paths of a Jsonnet file's `import`, `importstr` and `importbin`, found by a scan that
/// skips comments and other strings.
pub(crate) fn jsonnet_imports(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        match b[i] {
            b'#' => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'/') => i = line_end(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            }
            b'|' if src[i..].starts_with("|||") => {
                i = src[i + 3..].find("|||").map_or(b.len(), |e| i + 3 + e + 3);
            }
            b'"' | b'\'' => i = string_at(src, i).1,
            b'@' if matches!(b.get(i + 1), Some(b'"' | b'\'')) => i = string_at(src, i).1,
            c if is_ident(c) => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let word = &src[start..i];
                let before_ok = start == 0 || !(is_ident(b[start - 1]) || b[start - 1] == b'.');
                if before_ok && matches!(word, "import" | "importstr" | "importbin") {
                    let mut j = i;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if j < b.len() && matches!(b[j], b'"' | b'\'' | b'@') {
                        let (text, end) = string_at(src, j);
                        if let Some(t) = text {
                            out.push(t);
                        }
                        i = end;
                    }
                }
            }
            _ => i += 1,
        }
    }
    out
}

fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|c| *c == b'\n')
        .map_or(b.len(), |e| i + e + 1)
}

/// The string literal at `i` (`"..."`, `'...'`, `@"..."`): its text (escapes decoded for the
/// plain forms) and the offset after it.
fn string_at(src: &str, i: usize) -> (Option<String>, usize) {
    let b = src.as_bytes();
    let verbatim = b[i] == b'@';
    let open = if verbatim { i + 1 } else { i };
    let Some(&q) = b.get(open) else {
        return (None, b.len());
    };
    let mut text = String::new();
    let mut chars = src[open + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        if c == q as char {
            if verbatim && src[open + 1 + k + 1..].starts_with(q as char) {
                chars.next();
                text.push(c);
                continue;
            }
            return (Some(text), open + 1 + k + 1);
        }
        if c == '\\' && !verbatim {
            match chars.next() {
                Some((_, 'n')) => text.push('\n'),
                Some((_, 't')) => text.push('\t'),
                Some((_, other)) => text.push(other),
                None => break,
            }
            continue;
        }
        text.push(c);
    }
    (None, b.len())
}

/// Why a step is touched: a changed path and what it is to the step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Because {
    /// As git prints it (relative to the repository's top folder).
    pub(crate) path: Untrusted,
    pub(crate) why: String,
}

/// A step touched by the change.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    /// The step's index in the release.
    pub(crate) step: usize,
    pub(crate) because: Vec<Because>,
}

/// What a change touches.
#[derive(Debug)]
pub(crate) struct Affected {
    pub(crate) hits: Vec<Hit>,
    /// Changed paths that touch no step.
    pub(crate) untouched: Vec<String>,
    pub(crate) warnings: Vec<Diagnostic>,
    /// How long the detection took (reads collected and matched; git included).
    pub(crate) elapsed: std::time::Duration,
}

impl Affected {
    /// The indexes of the touched steps.
    pub(crate) fn steps(&self) -> BTreeSet<usize> {
        self.hits.iter().map(|h| h.step).collect()
    }
}

/// The variables an envfile change touches: those whose value differs (added and removed
/// ones included); none when a side cannot be parsed (then every user counts).
fn changed_vars(diff: &Diff, rel: &str) -> Option<BTreeSet<String>> {
    let path = diff.top.join(rel);
    let parse = |t: Option<String>| -> Option<BTreeMap<String, String>> {
        match t {
            None => Some(BTreeMap::new()),
            Some(t) => crate::render::envfile::parse(&path, &t)
                .ok()
                .map(|v| v.into_iter().collect()),
        }
    };
    let before = parse(diff.text_before(rel))?;
    let after = parse(diff.text_after(rel))?;
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    Some(
        keys.into_iter()
            .filter(|k| before.get(*k) != after.get(*k))
            .cloned()
            .collect(),
    )
}

/// What `diff` touches among `release`'s steps. `envfiles` are the run's (the release's,
/// its environment's and `--envfile`'s), read by every config.
pub(crate) fn affected(
    release: &Release,
    ctx: &RenderContext,
    envfiles: &[PathBuf],
    diff: &Diff,
) -> Affected {
    let started = Instant::now();
    let mut warnings = Vec::new();
    // Each config once, however many steps use it.
    let mut reads: BTreeMap<PathBuf, Reads> = BTreeMap::new();
    for s in &release.steps {
        if !reads.contains_key(&s.config) {
            let r = reads_of(ctx, &s.config, &mut warnings);
            reads.insert(s.config.clone(), r);
        }
    }
    let a = Attribution {
        steps: release
            .steps
            .iter()
            .map(|s| {
                let patterns = s.paths.iter().map(|p| (absolute_pattern(p), p.clone()));
                (&reads[&s.config], patterns.collect())
            })
            .collect(),
        release_file: release.path.as_deref().map(absolute),
        envfiles: envfiles.iter().map(|p| absolute(p)).collect(),
        diff,
    };
    let mut because: BTreeMap<usize, Vec<Because>> = BTreeMap::new();
    let mut untouched = Vec::new();
    for rel in &diff.changed {
        let found = a.attribute(rel);
        if found.is_empty() {
            untouched.push(rel.clone());
        }
        for (step, why) in found {
            let b = Because {
                path: Untrusted::new(rel.clone()),
                why,
            };
            let list = because.entry(step).or_default();
            if !list.contains(&b) {
                list.push(b);
            }
        }
    }
    Affected {
        hits: because
            .into_iter()
            .map(|(step, because)| Hit { step, because })
            .collect(),
        untouched,
        warnings,
        elapsed: started.elapsed(),
    }
}

/// What each step reads, ready to match changed paths against.
struct Attribution<'a> {
    /// Per step: its config's reads and its `paths:` (absolute pattern, as written).
    steps: Vec<(&'a Reads, Vec<(String, String)>)>,
    release_file: Option<PathBuf>,
    envfiles: BTreeSet<PathBuf>,
    diff: &'a Diff,
}

impl Attribution<'_> {
    /// The steps the changed path `rel` touches, each with why; none when it is nobody's.
    fn attribute(&self, rel: &str) -> Vec<(usize, String)> {
        let abs = absolute(&self.diff.top.join(rel));
        let mut hits = Vec::new();
        if self.release_file.as_ref() == Some(&abs) {
            for i in 0..self.steps.len() {
                hits.push((i, "the release file".to_string()));
            }
            return hits;
        }
        if self.envfiles.contains(&abs) {
            self.envfile(rel, &mut hits);
        }
        let path = abs.to_string_lossy();
        for (i, (reads, patterns)) in self.steps.iter().enumerate() {
            if let Some(why) = reads.files.get(&abs) {
                hits.push((i, why.clone()));
            }
            if let Some((_, written)) = patterns
                .iter()
                .find(|(p, _)| crate::pathglob::matches_path(p, &path))
            {
                let shown = shown(Path::new(written), &self.diff.top);
                hits.push((i, format!("its sources ({shown})")));
            }
            // An opaque config takes every change under its folder.
            if reads.opaque && abs.starts_with(&reads.folder) && !reads.files.contains_key(&abs) {
                hits.push((i, "under its folder (the config does not load)".to_string()));
            }
        }
        if hits.is_empty() && !self.envfiles.contains(&abs) {
            // In doubt, deploy: the configs of the deepest config folder holding the path.
            let deepest = self
                .steps
                .iter()
                .map(|(r, _)| &r.folder)
                .filter(|f| abs.starts_with(f))
                .max_by_key(|f| f.components().count());
            if let Some(folder) = deepest {
                for (i, (r, _)) in self.steps.iter().enumerate() {
                    if &r.folder == folder {
                        hits.push((i, "under its folder, read by no config".to_string()));
                    }
                }
            }
        }
        hits
    }

    /// An envfile of the run changed: the steps whose files name a variable that changed;
    /// every step when that cannot be told (the envfile does not parse) or a changed
    /// variable is named by no file (it may be read where cortado cannot see, a name built
    /// at render time): in doubt, deploy.
    fn envfile(&self, rel: &str, hits: &mut Vec<(usize, String)>) {
        let Some(vars) = changed_vars(self.diff, rel) else {
            for i in 0..self.steps.len() {
                hits.push((i, "an envfile of the run".to_string()));
            }
            return;
        };
        let unnamed: Vec<&str> = vars
            .iter()
            .map(String::as_str)
            .filter(|v| !self.steps.iter().any(|(r, _)| r.names(v)))
            .collect();
        for (i, (r, _)) in self.steps.iter().enumerate() {
            if !unnamed.is_empty() {
                let which = unnamed.join(", ");
                hits.push((
                    i,
                    format!("an envfile of the run ({which} named by no file)"),
                ));
                continue;
            }
            let named: Vec<&str> = vars
                .iter()
                .filter(|v| r.names(v))
                .map(String::as_str)
                .collect();
            if !named.is_empty() || r.opaque {
                hits.push((i, format!("an envfile it uses ({})", named.join(", "))));
            }
        }
    }
}

/// A `paths:` pattern (already joined to the release file's folder) made absolute like the
/// changed paths, its wildcard components kept.
fn absolute_pattern(p: &str) -> String {
    let wild = p
        .split('/')
        .position(crate::pathglob::is_pattern)
        .unwrap_or(usize::MAX);
    let parts: Vec<&str> = p.split('/').collect();
    if wild >= parts.len() {
        return absolute(Path::new(p)).to_string_lossy().into_owned();
    }
    let fixed = parts[..wild].join("/");
    let base = if fixed.is_empty() && p.starts_with('/') {
        PathBuf::from("/")
    } else {
        absolute(Path::new(if fixed.is_empty() { "." } else { &fixed }))
    };
    format!("{}/{}", base.to_string_lossy(), parts[wild..].join("/"))
}

/// The action's word in outputs.
pub(crate) fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Deploy => "deploy",
        Action::Run(_) => "run",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonnet_imports_skip_comments_and_other_strings() {
        let src = r#"
// import "commented.libsonnet"
# import 'hashed.libsonnet'
/* import "block.libsonnet" */
local a = import "a.libsonnet";
local b = importstr 'b.txt';
local c = import @"c\d.libsonnet";
local s = "import \"not.libsonnet\"";
local t = |||
  import "text-block.libsonnet"
|||;
local x = obj.import;
{ d: (import '../shared/d.libsonnet')('x'), e: importbin "e.bin" }
"#;
        assert_eq!(
            jsonnet_imports(src),
            [
                "a.libsonnet",
                "b.txt",
                r"c\d.libsonnet",
                "../shared/d.libsonnet",
                "e.bin"
            ]
        );
    }

    /// A folder of its own under the system's temp folder, removed afterwards.
    struct Tree(PathBuf);

    impl Tree {
        fn new(label: &str, files: &[(&str, &str)]) -> Tree {
            let dir = std::env::temp_dir().join(format!(
                "cortado-affected-unit-{}-{label}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            for (rel, text) in files {
                let p = dir.join(rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
            Tree(std::fs::canonicalize(&dir).unwrap())
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn attribution_follows_imports_state_files_and_the_deepest_folder() {
        let t = Tree::new(
            "attribution",
            &[
                (
                    "a/cortado.yml",
                    "service: a\ntask_definition: td.jsonnet\nplugins:\n  - name: tfstate\n    \
                     config: {path: ../tf/terraform.tfstate}\n",
                ),
                (
                    "a/td.jsonnet",
                    "(import '../lib/x.libsonnet') + {family: 'a'}\n",
                ),
                ("lib/x.libsonnet", "(import 'y.libsonnet') + {cpu: '256'}\n"),
                ("lib/y.libsonnet", "{memory: '512'}\n"),
                ("tf/terraform.tfstate", "{}\n"),
                ("a/b/cortado.yml", "service: b\ntask_definition: td.json\n"),
                ("a/b/td.json", "{}\n"),
                // Opaque: its template needs a variable nobody sets.
                (
                    "c/cortado.yml",
                    "service: '{{ must_env `CORTADO_TEST_UNSET_VARIABLE` }}'\n",
                ),
            ],
        );
        let release = Release::of_configs(&[
            t.0.join("a/cortado.yml"),
            t.0.join("a/b/cortado.yml"),
            t.0.join("c/cortado.yml"),
        ]);
        let ctx = RenderContext::new(BTreeMap::new());
        let touched = |rel: &str| -> (Vec<usize>, Vec<String>) {
            let diff = Diff {
                top: t.0.clone(),
                from: String::new(),
                head: None,
                changed: vec![rel.to_string()],
            };
            let found = affected(&release, &ctx, &[], &diff);
            assert_eq!(
                found.warnings.len(),
                1,
                "c does not load: {:?}",
                found.warnings
            );
            (found.steps().into_iter().collect(), found.untouched)
        };
        assert_eq!(
            touched("lib/y.libsonnet").0,
            [0],
            "imported through x.libsonnet"
        );
        assert_eq!(touched("tf/terraform.tfstate").0, [0]);
        assert_eq!(touched("a/td.jsonnet").0, [0]);
        assert_eq!(touched("a/b/td.json").0, [1]);
        assert_eq!(
            touched("a/b/run-gate.sh").0,
            [1],
            "the deepest config folder"
        );
        assert_eq!(touched("a/notes.txt").0, [0]);
        assert_eq!(
            touched("c/anything.txt").0,
            [2],
            "an opaque config takes its folder"
        );
        assert_eq!(
            touched("lib/unused.libsonnet"),
            (vec![], vec!["lib/unused.libsonnet".into()])
        );
        let found = affected(
            &release,
            &ctx,
            &[],
            &Diff {
                top: t.0.clone(),
                from: String::new(),
                head: None,
                changed: vec!["lib/y.libsonnet".into()],
            },
        );
        assert_eq!(
            found.hits[0].because[0].why,
            "imported by ../lib/x.libsonnet"
        );
    }

    #[test]
    fn words_are_whole() {
        assert!(has_word("{{ must_env `RELEASE` }}", "RELEASE"));
        assert!(!has_word("RELEASE_TAG", "RELEASE"));
        assert!(!has_word("MY_RELEASE", "RELEASE"));
    }

    #[test]
    fn absolute_resolves_dots_for_missing_files() {
        let cwd = std::fs::canonicalize(std::env::current_dir().unwrap()).unwrap();
        assert_eq!(
            absolute(Path::new("src/../Cargo.toml")),
            cwd.join("Cargo.toml")
        );
        assert_eq!(
            absolute(Path::new("./nope/../gone.txt")),
            cwd.join("gone.txt")
        );
        assert_eq!(
            absolute_pattern("src/./api/**"),
            format!("{}/src/api/**", cwd.display())
        );
    }
}
