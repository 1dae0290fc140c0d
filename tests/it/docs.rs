//! Docs that cannot drift: the commands the README and the docs show are run here, against the
//! sandbox, and their output is checked; every relative link of those pages must resolve.
//!
//! A code fence whose info string carries the word `sandbox` after its language (```` ```console
//! sandbox ````; GitHub highlights by the first word and ignores the rest) is a runnable block:
//! - `$ COMMAND` runs a command (a line ending in `\` continues on the next one), from the
//!   repository's root, with a clean environment (PATH and HOME only, plus what the page set);
//! - the program is `cortado` or `cargo run --locked --` (both mean this build); `NAME=value`
//!   words before it set its environment, `$ export NAME=value ...` sets it for the rest of the
//!   page;
//! - `cortado sandbox serve ...` starts in the background (the page says "in another terminal")
//!   on a free port, and stops at the end of the page; `127.0.0.1:4566` in what follows means
//!   that sandbox;
//! - a trailing comment saying `exit N` is the expected exit code (default 0);
//! - the lines below a command are output it must print: each one must equal a line of its
//!   stdout or stderr, in order within each stream, lines in between allowed (`...` is only for
//!   the reader). Both sides are normalized first: times, task ids, deployment ids, durations
//!   and ports become placeholders, so a page shows real output captured from the sandbox.
//!
//! Our own runner rather than `trycmd`: a page rehearses against one standalone sandbox across
//! commands (a background server, an `export` and a port that must be rewritten), commands carry
//! environment prefixes (`IMAGE_TAG=v2 cortado deploy`), and output is a stream of timestamped
//! progress on stderr plus a summary on stdout, matched as excerpts. trycmd's `.md` mode runs
//! neither background processes nor variable assignments; this runner is ~400 lines and adds no
//! dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const STANDALONE_PORT: &str = "127.0.0.1:4566";
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pages whose commands run and whose links are checked: README.md, CHANGELOG.md,
/// CONTRIBUTING.md and every Markdown file under docs/.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![
        root().join("README.md"),
        root().join("CHANGELOG.md"),
        root().join("CONTRIBUTING.md"),
    ];
    walk(&root().join("docs"), &mut out);
    out.sort();
    out
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Runnable blocks

/// One `$` line of a runnable block and the output lines below it.
#[derive(Debug, Clone)]
struct Example {
    line: usize,
    text: String,
    expected: Vec<String>,
}

/// The runnable blocks of a page, in order, as their examples.
fn runnable_examples(text: &str) -> Vec<Vec<Example>> {
    let mut blocks = Vec::new();
    // The open fence (its backticks or tildes) and, for a runnable one, its examples.
    let mut open: Option<(String, Option<Vec<Example>>)> = None;
    let mut continued = false;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        let fence: String = trimmed
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        if fence.len() >= 3 {
            match open.take() {
                None => {
                    let info = &trimmed[fence.len()..];
                    let runnable = info.split_whitespace().skip(1).any(|w| w == "sandbox");
                    open = Some((fence, runnable.then(Vec::new)));
                }
                Some((f, examples))
                    if fence.starts_with(&f) && trimmed[fence.len()..].trim().is_empty() =>
                {
                    blocks.extend(examples);
                }
                Some(other) => open = Some(other),
            }
            continue;
        }
        let Some((_, Some(examples))) = open.as_mut() else {
            continue;
        };
        let line = raw.trim_end();
        if continued {
            let last = examples.last_mut().expect("a continued command");
            last.text = format!(
                "{} {}",
                last.text.trim_end_matches('\\').trim_end(),
                line.trim()
            );
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            examples.push(Example {
                line: i + 1,
                text: command.trim().to_string(),
                expected: Vec::new(),
            });
            continued = command.ends_with('\\');
        } else if let Some(last) = examples.last_mut()
            && !line.trim().is_empty()
            && line.trim() != "..."
        {
            last.expected.push(line.to_string());
        }
    }
    blocks
}

/// `text` without its trailing shell comment, and the comment.
fn split_comment(text: &str) -> (&str, Option<&str>) {
    let (mut single, mut double, mut prev) = (false, false, ' ');
    for (i, c) in text.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single && prev != '\\' => double = !double,
            '#' if !single && !double && prev.is_whitespace() => {
                return (text[..i].trim_end(), Some(text[i + 1..].trim()));
            }
            _ => {}
        }
        prev = c;
    }
    (text, None)
}

/// The exit code a comment announces (`# ... exit 3`), else 0.
fn expected_exit(comment: Option<&str>) -> i32 {
    let Some(c) = comment else { return 0 };
    let Some(at) = c.find("exit ") else { return 0 };
    let digits: String = c[at + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Normalization and matching

/// Replaces what changes from run to run with placeholders: times (`21:28:48`), task ids and
/// digests (32 or 64 hex digits), deployment ids (`ecs-svc/123`), loopback ports and durations
/// (`3s`, `0.0s`, `58ms`).
fn normalize(line: &str) -> String {
    let chars: Vec<char> = line.trim_end().chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let boundary = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if boundary && is_time(rest) {
            out.push_str("HH:MM:SS");
            i += 8;
        } else if boundary && matches!(hex_run(rest), 32 | 64) {
            out.push_str("<id>");
            i += hex_run(rest);
        } else if starts_with(rest, "ecs-svc/") && digit_run(&rest[8..]) > 0 {
            out.push_str("ecs-svc/<id>");
            i += 8 + digit_run(&rest[8..]);
        } else if starts_with(rest, "127.0.0.1:") && digit_run(&rest[10..]) > 0 {
            out.push_str("127.0.0.1:<port>");
            i += 10 + digit_run(&rest[10..]);
        } else if boundary && let Some(n) = duration_len(rest) {
            out.push_str("<n>s");
            i += n;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn starts_with(chars: &[char], s: &str) -> bool {
    s.chars().enumerate().all(|(k, c)| chars.get(k) == Some(&c))
}

fn digit_run(chars: &[char]) -> usize {
    chars.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn hex_run(chars: &[char]) -> usize {
    let n = chars
        .iter()
        .take_while(|&&c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        .count();
    if chars.get(n).is_some_and(char::is_ascii_alphanumeric) {
        0
    } else {
        n
    }
}

fn is_time(c: &[char]) -> bool {
    c.len() >= 8
        && [0, 1, 3, 4, 6, 7].iter().all(|&k| c[k].is_ascii_digit())
        && c[2] == ':'
        && c[5] == ':'
        && !c.get(8).is_some_and(char::is_ascii_digit)
}

/// `3s`, `0.0s`, `41ms`: the length of a duration at the start of `c`.
fn duration_len(c: &[char]) -> Option<usize> {
    let mut n = digit_run(c);
    if n == 0 {
        return None;
    }
    if c.get(n) == Some(&'.') && digit_run(&c[n + 1..]) > 0 {
        n += 1 + digit_run(&c[n + 1..]);
    }
    let unit = if starts_with(&c[n..], "ms") { 2 } else { 1 };
    let ends = c.get(n + unit).is_none_or(|x| !x.is_ascii_alphanumeric());
    (starts_with(&c[n..], if unit == 2 { "ms" } else { "s" }) && ends).then_some(n + unit)
}

/// The expected lines that `stdout` and `stderr` do not show (in order within each stream).
fn missing_lines(expected: &[String], stdout: &str, stderr: &str) -> Vec<String> {
    let out: Vec<String> = stdout.lines().map(normalize).collect();
    let err: Vec<String> = stderr.lines().map(normalize).collect();
    let (mut at_out, mut at_err) = (0, 0);
    let mut missing = Vec::new();
    for want in expected {
        let want_n = normalize(want);
        if let Some(k) = out[at_out..].iter().position(|l| *l == want_n) {
            at_out += k + 1;
        } else if let Some(k) = err[at_err..].iter().position(|l| *l == want_n) {
            at_err += k + 1;
        } else {
            missing.push(want.clone());
        }
    }
    missing
}

// ---------------------------------------------------------------------------------------------
// Running a page

/// A page's run: its environment, and the standalone sandbox it started (stopped on drop).
struct Session {
    env: BTreeMap<String, String>,
    server: Option<Child>,
    endpoint: Option<String>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

/// A command line, taken apart.
struct Parsed {
    env: Vec<(String, String)>,
    args: Vec<String>,
    exit: i32,
    export: bool,
}

fn parse(text: &str) -> Result<Parsed, String> {
    let (code, comment) = split_comment(text);
    let words = shlex::split(code).ok_or_else(|| format!("cannot split `{code}`"))?;
    let export = words.first().is_some_and(|w| w == "export");
    let mut rest = &words[usize::from(export)..];
    let mut env = Vec::new();
    while let Some((k, v)) = rest.first().and_then(|w| w.split_once('=')) {
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            break;
        }
        env.push((k.to_string(), v.to_string()));
        rest = &rest[1..];
    }
    if export {
        return Ok(Parsed {
            env,
            args: Vec::new(),
            exit: 0,
            export,
        });
    }
    let args = if rest.first().is_some_and(|w| w == "cortado") {
        &rest[1..]
    } else if rest.len() >= 4 && rest[..4] == ["cargo", "run", "--locked", "--"] {
        &rest[4..]
    } else {
        return Err(format!(
            "`{code}`: a runnable block runs `cortado` or `cargo run --locked --` only"
        ));
    };
    Ok(Parsed {
        env,
        args: args.to_vec(),
        exit: expected_exit(comment),
        export,
    })
}

impl Session {
    fn new() -> Session {
        Session {
            env: BTreeMap::new(),
            server: None,
            endpoint: None,
        }
    }

    /// `127.0.0.1:4566` becomes the endpoint of the page's sandbox.
    fn local(&self, s: &str) -> Result<String, String> {
        if !s.contains(STANDALONE_PORT) {
            return Ok(s.to_string());
        }
        let endpoint = self.endpoint.as_deref().ok_or_else(|| {
            format!("{STANDALONE_PORT} is used before this page starts `cortado sandbox serve`")
        })?;
        Ok(s.replace(STANDALONE_PORT, endpoint))
    }

    fn command(&self, parsed: &Parsed) -> Result<Command, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cortado"));
        cmd.current_dir(root()).env_clear();
        for key in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        cmd.env("NO_COLOR", "1");
        for (k, v) in self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())) {
            cmd.env(k, self.local(v)?);
        }
        for (k, v) in &parsed.env {
            cmd.env(k, self.local(v)?);
        }
        for a in &parsed.args {
            cmd.arg(self.local(a)?);
        }
        Ok(cmd)
    }

    fn run(&mut self, example: &Example) -> Result<(), String> {
        let parsed = parse(&example.text)?;
        if parsed.export {
            for (k, v) in parsed.env {
                self.env.insert(k, v);
            }
            return Ok(());
        }
        if parsed
            .args
            .starts_with(&["sandbox".to_string(), "serve".to_string()])
        {
            return self.serve(&parsed, &example.expected);
        }
        let mut cmd = self.command(&parsed)?;
        let (code, stdout, stderr) = run_with_deadline(&mut cmd)?;
        let missing = missing_lines(&example.expected, &stdout, &stderr);
        if code == Some(parsed.exit) && missing.is_empty() {
            return Ok(());
        }
        Err(format!(
            "expected exit {}, got {code:?}; lines not shown: {missing:#?}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            parsed.exit
        ))
    }

    /// Starts the page's standalone sandbox and waits for its `listening on` line.
    fn serve(&mut self, parsed: &Parsed, expected: &[String]) -> Result<(), String> {
        if self.server.is_some() {
            return Err("a page starts one `cortado sandbox serve`".into());
        }
        let mut cmd = self.command(parsed)?;
        cmd.env("CORTADO_SANDBOX_PORT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
        let stderr = child.stderr.take().expect("piped");
        self.server = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut startup = String::new();
        let deadline = Instant::now() + COMMAND_DEADLINE;
        while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            startup.push_str(&line);
            startup.push('\n');
            if let Some(url) = line.strip_prefix("cortado sandbox listening on http://") {
                self.endpoint = Some(url.to_string());
            }
            if line.starts_with("hint:") {
                break;
            }
        }
        // Keep draining so the server never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        if self.endpoint.is_none() {
            return Err(format!("the sandbox did not start:\n{startup}"));
        }
        let missing = missing_lines(expected, "", &startup);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "lines not shown: {missing:#?}\n--- stderr\n{startup}"
            ))
        }
    }
}

/// Runs `cmd` to its end (killed past the deadline): exit code, stdout, stderr.
fn run_with_deadline(cmd: &mut Command) -> Result<(Option<i32>, String, String), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start: {e}"))?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + COMMAND_DEADLINE;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("still running after {COMMAND_DEADLINE:?}"));
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Ok((
        status.code(),
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    ))
}

/// Runs every runnable block of `text` in one session; the failures, located at `name:line`.
fn run_page(name: &str, text: &str) -> (usize, Vec<String>) {
    let mut session = Session::new();
    let mut ran = 0;
    let mut failures = Vec::new();
    for example in runnable_examples(text).into_iter().flatten() {
        ran += 1;
        if let Err(e) = session.run(&example) {
            failures.push(format!("{name}:{}: `{}`: {e}", example.line, example.text));
            // What follows on the page depends on this command: stop the page here.
            break;
        }
    }
    (ran, failures)
}

#[test]
fn every_runnable_example_in_the_docs_runs() {
    let started = Instant::now();
    let handles: Vec<_> = pages()
        .into_iter()
        .map(|p| {
            std::thread::spawn(move || {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let blocks = runnable_examples(&text).len();
                let (ran, failures) = run_page(&rel(&p), &text);
                (rel(&p), blocks, ran, failures)
            })
        })
        .collect();
    let mut failures = Vec::new();
    let (mut files, mut blocks, mut commands) = (0, 0, 0);
    let mut with_examples = BTreeSet::new();
    for h in handles {
        let (name, b, ran, f) = h.join().expect("a page's thread");
        if b > 0 {
            files += 1;
            with_examples.insert(name);
        }
        blocks += b;
        commands += ran;
        failures.extend(f);
    }
    eprintln!(
        "docs: ran {commands} commands in {blocks} runnable blocks of {files} pages ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for page in [
        "README.md",
        "docs/guides/sandbox.md",
        "docs/guides/releases-and-one-off-tasks.md",
        "docs/guides/blue-green-canary-linear.md",
        "docs/guides/troubleshooting.md",
    ] {
        assert!(
            with_examples.contains(page),
            "{page} lost its runnable examples"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The runner can fail: a renamed flag, a changed message, a wrong exit code.

fn page_with(command: &str, output: &[&str]) -> String {
    format!(
        "# t\n\n```console sandbox\n$ {command}\n{}\n```\n",
        output.join("\n")
    )
}

#[test]
fn a_renamed_flag_fails_the_page() {
    let ok = page_with(
        "cortado render config -c examples/hello/cortado.yml",
        &[r#"  "service": "hello","#],
    );
    assert_eq!(run_page("ok.md", &ok).1, Vec::<String>::new());
    let renamed = page_with(
        "cortado render config --konfig examples/hello/cortado.yml",
        &[r#"  "service": "hello","#],
    );
    let (ran, failures) = run_page("renamed.md", &renamed);
    assert_eq!(ran, 1);
    assert!(
        failures.len() == 1 && failures[0].contains("expected exit 0, got Some(1)"),
        "{failures:?}"
    );
}

#[test]
fn a_changed_message_or_exit_code_fails_the_page() {
    let changed = page_with(
        "cortado validate -c examples/hello/cortado.yml",
        &["hello: no problems found, or so it says"],
    );
    let failures = run_page("changed.md", &changed).1;
    assert!(
        failures.len() == 1 && failures[0].contains("no problems found, or so it says"),
        "{failures:?}"
    );
    let exit = page_with(
        "cortado validate -c examples/hello/cortado.yml  # exit 1",
        &[],
    );
    let failures = run_page("exit.md", &exit).1;
    assert!(
        failures.len() == 1 && failures[0].contains("expected exit 1, got Some(0)"),
        "{failures:?}"
    );
}

#[test]
fn only_cortado_runs_and_the_standalone_port_needs_a_sandbox() {
    let other = page_with("rm -rf /tmp/nothing", &[]);
    assert!(run_page("other.md", &other).1[0].contains("runs `cortado`"));
    let port = page_with(
        "AWS_ENDPOINT_URL=http://127.0.0.1:4566 cortado status -c examples/hello/cortado.yml",
        &[],
    );
    assert!(run_page("port.md", &port).1[0].contains("before this page starts"));
}

#[test]
fn blocks_comments_and_normalization() {
    let text = "x\n```sh\n$ not runnable\n```\n```console sandbox\n$ A=1 cortado deploy \\\n  --sandbox # rolled back: exit 3\nline one\n...\n\n$ export B=2\n```\n~~~json\n$ nope\n~~~\n";
    let blocks = runnable_examples(text);
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let ex = &blocks[0];
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].line, 6);
    assert_eq!(
        ex[0].text,
        "A=1 cortado deploy --sandbox # rolled back: exit 3"
    );
    assert_eq!(ex[0].expected, vec!["line one".to_string()]);
    let p = parse(&ex[0].text).unwrap();
    assert_eq!(p.env, vec![("A".to_string(), "1".to_string())]);
    assert_eq!(p.args, vec!["deploy", "--sandbox"]);
    assert_eq!(p.exit, 3);
    assert!(parse("export B=2").unwrap().export);
    assert_eq!(
        split_comment(r#"cortado run --command 'echo #1' # exit 4"#),
        (r#"cortado run --command 'echo #1'"#, Some("exit 4"))
    );
    assert_eq!(
        normalize(
            "21:28:48 hello: task 098b74eaa67dc0db1d54db73ce48415b stopped [3s] 0.0s, 58ms  "
        ),
        "HH:MM:SS hello: task <id> stopped [<n>s] <n>s, <n>s"
    );
    assert_eq!(
        normalize("deployment ecs-svc/7601020890568580928 at http://127.0.0.1:36367 (hello:12)"),
        "deployment ecs-svc/<id> at http://127.0.0.1:<port> (hello:12)"
    );
    assert_eq!(
        normalize("v1--crash-20s 256 vCPU"),
        "v1--crash-<n>s 256 vCPU"
    );
    let missing = missing_lines(&["b".into(), "a".into(), "x".into()], "a\nb\n", "x\n");
    assert_eq!(
        missing,
        vec!["a".to_string()],
        "order within a stream counts"
    );
}

// ---------------------------------------------------------------------------------------------
// Links

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown page (headings outside code fences; repeats get `-1`, `-2`).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced || !t.starts_with('#') {
            continue;
        }
        let title = t.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let s = slug(&title.replace('`', ""));
        let n = seen.entry(s.clone()).or_insert(0);
        out.insert(if *n == 0 {
            s.clone()
        } else {
            format!("{s}-{n}")
        });
        *n += 1;
    }
    out
}

/// Link targets of a page, with their lines: inline links and reference definitions, outside
/// code fences and code spans.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let plain: String = line
            .split('`')
            .enumerate()
            .map(|(k, part)| if k % 2 == 0 { part } else { "" })
            .collect();
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push((i + 1, target.trim_matches(['<', '>']).to_string()));
            rest = &after[end..];
        }
        if let Some(def) = t.strip_prefix('[')
            && let Some((_, target)) = def.split_once("]: ")
        {
            out.push((
                i + 1,
                target.split_whitespace().next().unwrap_or("").to_string(),
            ));
        }
    }
    out
}

/// Relative links of `page` that lead nowhere: a missing file, or a missing heading.
fn broken_links(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).unwrap_or_default();
    let dir = page.parent().unwrap_or(Path::new("."));
    let mut broken = Vec::new();
    for (line, target) in link_targets(&text) {
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (target.as_str(), None),
        };
        let file = if path.is_empty() {
            page.to_path_buf()
        } else {
            dir.join(path)
        };
        let at = format!("{}:{line}: {target}", rel(page));
        if !file.exists() {
            broken.push(format!("{at}: no such file"));
            continue;
        }
        if let Some(a) = anchor
            && file.extension().is_some_and(|x| x == "md")
        {
            let headings = anchors(&std::fs::read_to_string(&file).unwrap_or_default());
            if !headings.contains(a) {
                broken.push(format!("{at}: no heading #{a}"));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_resolves() {
    let pages = pages();
    assert!(pages.len() > 10, "{pages:?}");
    let broken: Vec<String> = pages.iter().flat_map(|p| broken_links(p)).collect();
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn the_link_check_finds_a_missing_file_and_a_missing_heading() {
    let dir = std::env::temp_dir().join(format!("cortado-docs-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("b.md"), "# B page\n\n## Exit codes\n").unwrap();
    let a = dir.join("a.md");
    std::fs::write(
        &a,
        "[ok](b.md#exit-codes) [top](#a) [gone](c.md) [bad](b.md#exit-code) `[code](x.md)`\n\n# A\n\n```\n[fenced](y.md)\n```\n[ref]: ./missing/\n",
    )
    .unwrap();
    let broken = broken_links(&a);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].contains("c.md: no such file"));
    assert!(broken[1].contains("no heading #exit-code"));
    assert!(broken[2].contains("./missing/: no such file"));
    assert_eq!(
        slug("`cortado exec`: shell, port forwarding & file copy"),
        "cortado-exec-shell-port-forwarding--file-copy"
    );
}

// ---------------------------------------------------------------------------------------------
// No test ids in the docs: a page explains what a test checks, it does not name the function.

/// Names of test functions (three underscores or more) in the repository's test files.
fn test_function_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    // Every test file, in folders too (tests/it/, tests/common/).
    let mut files = Vec::new();
    for dir in ["tests", "crates/sandbox/tests", "crates/ssm-session/tests"] {
        walk(&root().join(dir), &mut files);
    }
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "rs"))
    {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for part in text.split("fn ").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.matches('_').count() >= 3 {
                names.insert(name);
            }
        }
    }
    names
}

/// A scenario id such as `s07_...`, `s36` or `cd15`, as a word of its own.
fn scenario_ids(line: &str) -> Vec<String> {
    line.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| {
            let (prefix, rest) = if let Some(r) = w.strip_prefix("cd") {
                ("cd", r)
            } else if let Some(r) = w.strip_prefix('s') {
                ("s", r)
            } else {
                return false;
            };
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let tail = &rest[digits..];
            digits == 2
                && (tail.is_empty() || tail.starts_with('_') || (prefix == "s" && tail.len() == 1))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn the_docs_name_no_test_ids() {
    let names = test_function_names();
    assert!(
        names.len() > 100,
        "the scan found {} test names",
        names.len()
    );
    let mut found = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            let ids = scenario_ids(line);
            let named: Vec<&String> = names.iter().filter(|n| line.contains(n.as_str())).collect();
            if !ids.is_empty() || !named.is_empty() {
                found.push(format!("{}:{}: {ids:?} {named:?}", rel(&page), i + 1));
            }
        }
    }
    assert!(found.is_empty(), "{found:#?}");
    assert_eq!(
        scenario_ids("see s07_superseded, s36/s37 and cd15; not rs256 or sha256 or s3 or cd"),
        vec!["s07_superseded", "s36", "s37", "cd15"]
    );
}

// ---------------------------------------------------------------------------------------------
// The install story the README tells: `version: source` builds once and is cached; a release
// is one command. (These check action.yml and scripts/; they belong beside tests/github.rs.)

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cortado-docs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_source_install_builds_once_and_then_uses_the_restored_binary() {
    let dir = temp_dir("source-install");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // A cargo that records its calls and "installs" a cortado that answers `version`.
    let fake = "#!/bin/sh\necho \"$*\" >> \"$FAKE_LOG\"\nroot=\"\"\nwhile [ $# -gt 0 ]; do [ \"$1\" = --root ] && root=\"$2\"; shift; done\nmkdir -p \"$root/bin\"\nprintf '#!/bin/sh\\necho cortado 0.0.0\\n' > \"$root/bin/cortado\"\nchmod +x \"$root/bin/cortado\"\n";
    std::fs::write(bin.join("cargo"), fake).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("cargo"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.join("cargo.log");
    let run = || {
        Command::new("bash")
            .arg(root().join("scripts/install.sh"))
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("FAKE_LOG", &log)
            .env("CORTADO_VERSION", "source")
            .env("RUNNER_TEMP", dir.join("runner-temp"))
            .env("GITHUB_PATH", dir.join("github-path"))
            .env_remove("CORTADO_SOURCE_ROOT")
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{first:?}");
    let second = run();
    assert!(second.status.success(), "{second:?}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.lines().count(), 1, "cargo ran again: {calls}");
    assert!(calls.contains("install --locked --path"), "{calls}");
    assert!(String::from_utf8_lossy(&second.stderr).contains("by an earlier job"));
    let path = std::fs::read_to_string(dir.join("github-path")).unwrap();
    let want = format!("{}/runner-temp/cortado-source/bin", dir.display());
    assert_eq!(path.lines().collect::<Vec<_>>(), vec![want.as_str(); 2]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_source_cache_key_follows_the_sources_and_the_runner() {
    let dir = temp_dir("source-key");
    let checkout = dir.join("action");
    std::fs::create_dir_all(checkout.join("src")).unwrap();
    std::fs::write(checkout.join("Cargo.toml"), "[package]\n").unwrap();
    std::fs::write(checkout.join("Cargo.lock"), "# lock\n").unwrap();
    std::fs::write(checkout.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(checkout.join("README.md"), "not a source\n").unwrap();
    let key = |os: &str| {
        let out = Command::new("bash")
            .arg(root().join("scripts/source-key.sh"))
            .env("GITHUB_ACTION_PATH", &checkout)
            .env("RUNNER_OS", os)
            .env("RUNNER_ARCH", "ARM64")
            .env("ImageOS", "ubuntu24")
            .env("RUNNER_TEMP", dir.join("tmp"))
            .env("GITHUB_OUTPUT", dir.join("output"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = std::fs::read_to_string(dir.join("output")).unwrap();
        std::fs::remove_file(dir.join("output")).unwrap();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("key="))
            .unwrap()
            .to_string();
        let folder = text
            .lines()
            .find_map(|l| l.strip_prefix("dir="))
            .unwrap()
            .to_string();
        assert_eq!(
            folder,
            format!("{}/cortado-source", dir.join("tmp").display())
        );
        key
    };
    let first = key("Linux");
    assert!(
        first.starts_with("cortado-source-Linux-ARM64-ubuntu24-"),
        "{first}"
    );
    assert_eq!(key("Linux"), first, "the same sources give the same key");
    std::fs::write(checkout.join("README.md"), "edited\n").unwrap();
    assert_eq!(
        key("Linux"),
        first,
        "files cargo does not build from do not count"
    );
    assert_ne!(key("macOS"), first, "another runner, another binary");
    std::fs::write(checkout.join("src/main.rs"), "fn main() { }\n").unwrap();
    assert_ne!(key("Linux"), first, "a changed source is another build");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_action_caches_a_source_build_around_the_install() {
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let action: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let steps = action
        .pointer("/runs/steps")
        .and_then(|s| s.as_array())
        .unwrap();
    let field = |s: &serde_json::Value, k: &str| {
        s.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| steps.iter().position(pred);
    let key = at(&|s| field(s, "id") == "source").expect("a step computing the cache key");
    let restore = at(&|s| field(s, "uses").starts_with("actions/cache/restore@")).expect("restore");
    let install = at(&|s| field(s, "run").contains("scripts/install.sh")).expect("install");
    let save = at(&|s| field(s, "uses").starts_with("actions/cache/save@")).expect("save");
    assert!(
        key < restore && restore < install && install < save,
        "{steps:#?}"
    );
    assert!(field(&steps[key], "run").contains("scripts/source-key.sh"));
    for i in [key, restore, save] {
        assert!(
            field(&steps[i], "if").contains("inputs.version == 'source'"),
            "step {i} runs only for version: source"
        );
    }
    assert!(field(&steps[save], "if").contains("steps.restore.outputs.cache-hit != 'true'"));
    assert_eq!(field(&steps[restore], "id"), "restore");
    for i in [restore, save] {
        let with = &steps[i]["with"];
        assert_eq!(with["path"], "${{ steps.source.outputs.dir }}");
        assert_eq!(with["key"], "${{ steps.source.outputs.key }}");
    }
    assert_eq!(
        field(&steps[restore], "uses").split('@').nth(1),
        field(&steps[save], "uses").split('@').nth(1),
        "restore and save pinned to the same commit"
    );
    assert_eq!(
        steps[install]["env"]["CORTADO_SOURCE_ROOT"],
        "${{ steps.source.outputs.dir }}"
    );
}

#[test]
fn the_release_script_refuses_before_it_changes_anything() {
    let run = |args: &[&str]| {
        let out = Command::new("bash")
            .arg(root().join("scripts/release.sh"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["1.2"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("'1.2' is not a version tag like v1.2.3"),
        "{err}"
    );
    let (code, err) = run(&["v9.9.9"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("Cargo.toml's version is"), "{err}");
    assert!(err.contains("not 9.9.9"), "{err}");
    let (code, err) = run(&["v9.9.9", "--bogus"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown argument '--bogus'"), "{err}");
    let (code, _) = run(&[]);
    assert_eq!(code, Some(1));
}

// ---------------------------------------------------------------------------------------------
// Generated reference pages and the help's docs links

#[test]
fn reference_pages_match_the_code() {
    let update = std::env::var_os("CORTADO_UPDATE_DOCS").is_some();
    let mut stale = Vec::new();
    for (path, generated) in cortado::reference::pages() {
        let file = root().join(path);
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        if committed == generated {
            continue;
        }
        if update {
            std::fs::write(&file, &generated).unwrap();
            eprintln!("rewrote {path}");
            continue;
        }
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(generated.lines().count()));
        stale.push(format!(
            "{path}:{}: committed {:?}, generated {:?}",
            first + 1,
            committed.lines().nth(first).unwrap_or("<end>"),
            generated.lines().nth(first).unwrap_or("<end>"),
        ));
    }
    assert!(
        stale.is_empty(),
        "generated reference pages differ from what the code generates:\n{}\n\nRegenerate them with\n\n    {}\n\nand commit the result.",
        stale.join("\n"),
        cortado::reference::REGENERATE
    );
}

/// Every command and subcommand of `cmd`, with its path (`cortado sandbox serve`).
fn command_tree(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let p = format!("{path} {}", sub.get_name());
        out.push((p.clone(), sub.clone()));
        command_tree(sub, &p, out);
    }
}

#[test]
fn reference_lists_every_command_and_flag() {
    let page = cortado::reference::commands_page();
    let mut cmds = Vec::new();
    command_tree(&cortado::cli::command(), "cortado", &mut cmds);
    assert!(cmds.len() > 25, "{}", cmds.len());
    let mut missing = Vec::new();
    for (path, cmd) in &cmds {
        if !page.contains(&format!("`{path}`\n")) {
            missing.push(path.clone());
        }
        for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = a.get_long()
                && !page.contains(&format!("--{long}"))
            {
                missing.push(format!("{path} --{long}"));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
    for global in ["--config <", "--sandbox-throttle <", "--release <"] {
        let rows = page
            .lines()
            .filter(|l| l.split(" | ").next().is_some_and(|c| c.contains(global)))
            .count();
        assert_eq!(rows, 1, "{global} is listed once, with the global options");
    }
    assert!(
        page.contains("| `--output <OUTPUT>` | Output format of results. One of: `text`: "),
        "{page}"
    );
}

#[test]
fn reference_config_keys_all_have_a_description() {
    let problems = cortado::reference::key_doc_problems();
    assert!(problems.is_empty(), "{problems:#?}");
    let page = cortado::reference::config_page();
    for key in [
        "`same_reason_stops`",
        "`on_failure`",
        "`required_version`",
        "`rollout.verify[]`",
    ] {
        assert!(page.contains(key), "{key} missing:\n{page}");
    }
}

/// Help is short: a command's line in a list fits one line, a flag's short help two; the
/// long prose lives in the docs pages the help ends with.
#[test]
fn help_texts_are_short() {
    let root_cmd = cortado::cli::command();
    let mut cmds = vec![("cortado".to_string(), root_cmd.clone())];
    command_tree(&root_cmd, "cortado", &mut cmds);
    let mut long = Vec::new();
    for (path, cmd) in &cmds {
        let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
        if about.len() > 85 || about.contains('\n') {
            long.push(format!("{path}: {} chars: {about}", about.len()));
        }
        for a in cmd.get_arguments() {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            if help.len() > 130 {
                long.push(format!(
                    "{path} {}: {} chars: {help}",
                    a.get_id(),
                    help.len()
                ));
            }
        }
    }
    assert!(long.is_empty(), "{long:#?}");
}

#[test]
fn every_help_groups_its_commands_and_names_a_docs_page_that_exists() {
    let mut root_cmd = cortado::cli::command();
    let help = root_cmd.render_long_help().to_string();
    let mut at = 0;
    for (group, names) in cortado::cli::COMMAND_GROUPS {
        let heading = help[at..]
            .find(&format!("\n{group}:\n"))
            .unwrap_or_else(|| panic!("no heading {group:?} (in order) in:\n{help}"));
        at += heading;
        for n in *names {
            assert!(
                help[at..].contains(&format!("\n  {n} ")),
                "{n} under {group}"
            );
        }
    }
    let ungrouped: Vec<String> = cortado::cli::groups_of(&root_cmd)
        .into_iter()
        .filter(|(g, _)| *g == "Other commands")
        .flat_map(|(_, n)| n)
        .collect();
    assert!(
        ungrouped.is_empty(),
        "commands without a group in `cortado --help`: {ungrouped:?}; add each to COMMAND_GROUPS \
         and COMMAND_DOCS in src/cli.rs, then run {}",
        cortado::reference::REGENERATE
    );
    let mut cmds = Vec::new();
    command_tree(&root_cmd, "cortado", &mut cmds);
    let mut broken = Vec::new();
    for (path, mut cmd) in cmds {
        let text = cmd.render_long_help().to_string();
        // The help ends with `Docs: URL` (the URL may wrap onto a line of its own).
        let tail: Vec<&str> = text
            .rfind("Docs:")
            .map(|at| text[at + 5..].split_whitespace().collect())
            .unwrap_or_default();
        let Some(page) = (tail.len() == 1)
            .then(|| tail[0].strip_prefix(cortado::cli::DOCS_URL))
            .flatten()
        else {
            broken.push(format!(
                "{path}: help does not end with `Docs: URL` (add it to COMMAND_DOCS in src/cli.rs)"
            ));
            continue;
        };
        let (file, anchor) = page.split_once('#').unwrap_or((page, ""));
        let text = std::fs::read_to_string(root().join(file)).unwrap_or_default();
        if text.is_empty() {
            broken.push(format!("{path}: {file}: no such page"));
        } else if !anchor.is_empty() && !anchors(&text).contains(anchor) {
            broken.push(format!("{path}: {file}: no heading #{anchor}"));
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
}

// ---------------------------------------------------------------------------------------------
// Source paths the docs name exist

/// Every file and folder of the repository's sources, as paths from the root (`src/cli.rs`,
/// `src/deploy/core/`).
fn source_paths() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.insert(rel(&p));
                out.insert(format!("{}/", rel(&p)));
                walk(&p, out);
            } else {
                out.insert(rel(&p));
            }
        }
    }
    // Named as another project's: ecspresso's CI suite.
    let mut out = BTreeSet::from(["tests/ci".to_string()]);
    for dir in [
        "src",
        "crates",
        "tests",
        "examples",
        "scripts",
        "benches",
        "docs",
        "checksums",
    ] {
        out.insert(format!("{dir}/"));
        walk(&root().join(dir), &mut out);
    }
    out
}

/// Code spans of `text` that name a source path: one under a top-level folder
/// (`src/deploy/core/outcome.rs`), or a Rust file or folder named from inside `src/`
/// (`deploy/watch.rs`, `render/template/`, `ecs.rs`).
fn named_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for (k, span) in line.split('`').enumerate() {
            let path_like = !span.is_empty()
                && span
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.'));
            let rooted = [
                "src/",
                "crates/",
                "tests/",
                "examples/",
                "scripts/",
                "benches/",
            ]
            .iter()
            .any(|r| span.starts_with(r));
            let rust = span.ends_with(".rs") || (span.ends_with('/') && span.len() > 1);
            if k % 2 == 1
                && path_like
                && (rooted || rust)
                && !span.contains("..")
                && !span.starts_with('/')
            {
                out.push((i + 1, span.to_string()));
            }
        }
    }
    out
}

#[test]
fn every_source_path_the_docs_name_exists() {
    let known = source_paths();
    let mut missing = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        for (line, path) in named_paths(&text) {
            checked += 1;
            let exists = known.contains(&path)
                || known.iter().any(|k| {
                    k.ends_with(&format!("/{path}")) && k.starts_with("src/")
                        || k.starts_with("crates/") && k.ends_with(&format!("/{path}"))
                });
            if !exists {
                missing.push(format!("{}:{line}: `{path}`", rel(&page)));
            }
        }
    }
    assert!(checked > 50, "only {checked} paths found");
    assert!(missing.is_empty(), "{missing:#?}");
    assert_eq!(
        named_paths(
            "`src/deploy/outcome.rs` and `watch.rs`, `render/template/`; not `cortado deploy` or `a/b c`"
        ),
        vec![
            (1, "src/deploy/outcome.rs".to_string()),
            (1, "watch.rs".to_string()),
            (1, "render/template/".to_string())
        ]
    );
}
