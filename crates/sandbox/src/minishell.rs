//! The sandbox's stand-in for a container's shell in an ECS Exec session: a pseudo-terminal
//! line discipline and a tiny shell, both in memory. It never runs a host program and never
//! touches the host's files: commands are built in, and files live in a per-task in-memory
//! tree ([`Fs`]) holding a few fixed files plus what sessions write (bounded in size).
//!
//! Receives the session's input (keystrokes, terminal sizes) and the command ECS Exec was
//! asked to run; hands on terminal output and, when the command ends, its exit status.
//!
//! The terminal behaves like a Linux pty in its default (cooked) mode: input is echoed,
//! `\r` becomes `\n`, lines are delivered when complete, backspace and ^U edit the line, ^C
//! interrupts what runs, ^D on an empty line is end of input, and output `\n` becomes `\r\n`.
//!
//! The shell knows: `echo [-n]`, `printf FMT [ARG...]` (`%s %d %%`, `\n \t \\ \0NNN`),
//! `env`, `cat [FILE...]`, `ls [DIR]`, `wc -c [FILE]`, `base64 [-d] [FILE]`, `sleep N`,
//! `exit [N]`, `true`, `false`, `pwd`, `hostname`, `export NAME=VALUE`, `NAME=VALUE`,
//! `stty size | -echo | echo`, and `sh [-c STRING]` (an interactive shell with a `# `
//! prompt when there is no `-c`). Command lines take `;`, `&&`, `||`, single and double
//! quotes, backslash escapes, `$?`, `$NAME`, `${NAME}`, and the redirections `> FILE`,
//! `>> FILE`, `< FILE`, `2>/dev/null`, `2>&1`. Anything else is "not found" (exit 127).

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

/// Bytes all files of one task may hold together.
pub const FS_LIMIT: usize = 64 * 1024 * 1024;

/// A task's files: a few fixed ones (read-only) and what sessions wrote.
#[derive(Debug, Default)]
pub struct Fs {
    files: BTreeMap<String, Vec<u8>>,
    fixed: Vec<String>,
}

impl Fs {
    /// The fixed files of a task.
    pub fn for_task(task_id: &str, container: &str) -> Fs {
        let mut fs = Fs::default();
        let short = &task_id[..12.min(task_id.len())];
        for (path, text) in [
            ("/etc/hostname", format!("{short}\n")),
            (
                "/etc/os-release",
                "NAME=\"cortado sandbox\"\nID=sandbox\nPRETTY_NAME=\"cortado sandbox (built-in shell)\"\n"
                    .to_string(),
            ),
            (
                "/etc/motd",
                format!(
                    "This is cortado's sandbox: a built-in shell standing in for container {container}.\n"
                ),
            ),
        ] {
            fs.files.insert(path.to_string(), text.into_bytes());
            fs.fixed.push(path.to_string());
        }
        fs
    }

    fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| format!("{path}: No such file or directory"))
    }

    fn write(&mut self, path: &str, data: Vec<u8>, append: bool) -> Result<(), String> {
        if self.fixed.iter().any(|f| f == path) {
            return Err(format!("{path}: Read-only file system"));
        }
        if path.ends_with('/') || path.is_empty() {
            return Err(format!("{path}: Is a directory"));
        }
        let old = self.files.get(path).map_or(0, Vec::len);
        let used: usize = self.files.values().map(Vec::len).sum::<usize>() - old;
        let new_len = if append { old + data.len() } else { data.len() };
        if used + new_len > FS_LIMIT {
            return Err(format!("{path}: No space left on device"));
        }
        let f = self.files.entry(path.to_string()).or_default();
        if !append {
            f.clear();
        }
        f.extend(data);
        Ok(())
    }

    /// Names directly under `dir` (files and folders).
    fn list(&self, dir: &str) -> Option<Vec<String>> {
        if self.files.contains_key(dir) {
            return Some(vec![dir.to_string()]);
        }
        let prefix = if dir.ends_with('/') {
            dir.to_string()
        } else {
            format!("{dir}/")
        };
        let mut names: Vec<String> = self
            .files
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| match rest.split_once('/') {
                Some((d, _)) => format!("{d}/"),
                None => rest.to_string(),
            })
            .collect();
        names.dedup();
        (!names.is_empty() || dir == "/").then_some(names)
    }
}

/// What the session hands the terminal.
#[derive(Debug)]
pub enum Input {
    Bytes(Vec<u8>),
    Size { cols: u32, rows: u32 },
}

/// One unit of cooked input.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    Text(Vec<u8>),
    Eof,
    Interrupt,
}

/// The terminal: cooked input from the session, output back to it.
pub struct Term {
    input: mpsc::Receiver<Input>,
    output: mpsc::Sender<Vec<u8>>,
    lines: VecDeque<Line>,
    partial: Vec<u8>,
    echo: bool,
    cols: u32,
    rows: u32,
    closed: bool,
}

impl Term {
    pub fn new(input: mpsc::Receiver<Input>, output: mpsc::Sender<Vec<u8>>) -> Term {
        Term {
            input,
            output,
            lines: VecDeque::new(),
            partial: Vec::new(),
            echo: true,
            cols: 80,
            rows: 24,
            closed: false,
        }
    }

    /// Output, with `\n` sent as `\r\n` (onlcr).
    async fn write(&mut self, bytes: &[u8]) {
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
        for &b in bytes {
            if b == b'\n' {
                out.push(b'\r');
            }
            out.push(b);
        }
        let _ = self.output.send(out).await;
    }

    /// Cooks raw input bytes into lines, echoing as a pty does.
    async fn cook(&mut self, bytes: Vec<u8>) {
        let mut echo = Vec::new();
        for b in bytes {
            match b {
                b'\r' | b'\n' => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.push(b'\n');
                    self.lines.push_back(Line::Text(line));
                    echo.extend_from_slice(b"\r\n");
                }
                0x03 => {
                    self.partial.clear();
                    self.lines.push_back(Line::Interrupt);
                    echo.extend_from_slice(b"^C\r\n");
                }
                0x04 if self.partial.is_empty() => self.lines.push_back(Line::Eof),
                0x04 => {
                    let line = std::mem::take(&mut self.partial);
                    self.lines.push_back(Line::Text(line));
                }
                0x7f | 0x08 => {
                    if self.partial.pop().is_some() {
                        echo.extend_from_slice(b"\x08 \x08");
                    }
                }
                0x15 => {
                    for _ in 0..self.partial.len() {
                        echo.extend_from_slice(b"\x08 \x08");
                    }
                    self.partial.clear();
                }
                _ => {
                    self.partial.push(b);
                    echo.push(b);
                }
            }
        }
        if self.echo && !echo.is_empty() {
            let _ = self.output.send(echo).await;
        }
    }

    /// Takes more input from the session; false once it has ended.
    async fn pull(&mut self) -> bool {
        if self.closed {
            return false;
        }
        match self.input.recv().await {
            Some(Input::Bytes(b)) => self.cook(b).await,
            Some(Input::Size { cols, rows }) => {
                self.cols = cols;
                self.rows = rows;
            }
            None => self.closed = true,
        }
        !self.closed
    }

    /// Takes what input has already arrived, without waiting (a pty applies sizes and echoes
    /// as input comes, whatever the program does).
    async fn catch_up(&mut self) {
        while let Ok(i) = self.input.try_recv() {
            match i {
                Input::Bytes(b) => self.cook(b).await,
                Input::Size { cols, rows } => {
                    self.cols = cols;
                    self.rows = rows;
                }
            }
        }
    }

    async fn next_line(&mut self) -> Line {
        loop {
            if let Some(l) = self.lines.pop_front() {
                return l;
            }
            if !self.pull().await {
                return Line::Eof;
            }
        }
    }

    /// Waits `d`; true when ^C interrupted it (other input stays queued).
    async fn sleep(&mut self, d: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            if let Some(i) = self.lines.iter().position(|l| *l == Line::Interrupt) {
                self.lines.remove(i);
                return true;
            }
            if self.closed {
                tokio::time::sleep_until(deadline).await;
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return false,
                _ = self.pull() => {}
            }
        }
    }
}

/// A word of a command line: parts that expand (`$...`) or not (single quotes).
#[derive(Debug, Clone, PartialEq)]
struct Word(Vec<(String, bool)>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Redir {
    Out,
    Append,
    In,
    ErrNull,
    ErrToOut,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Simple {
    words: Vec<Word>,
    redirs: Vec<(Redir, Word)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Conn {
    Always,
    And,
    Or,
}

/// Splits a command line into simple commands joined by `;`, `&&`, `||`.
fn parse(line: &str) -> Result<Vec<(Conn, Simple)>, String> {
    let mut out = Vec::new();
    let mut cur = Simple::default();
    let mut conn = Conn::Always;
    let mut chars = line.chars().peekable();
    let mut pending: Option<Redir> = None;
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let op = match c {
            ';' | '\n' => Some((Conn::Always, 1)),
            '&' | '|' => {
                chars.next();
                if chars.peek() != Some(&c) {
                    return Err(format!("syntax error: unsupported `{c}`"));
                }
                Some((if c == '&' { Conn::And } else { Conn::Or }, 1))
            }
            _ => None,
        };
        if let Some((next, skip)) = op {
            for _ in 0..skip {
                chars.next();
            }
            if pending.is_some() {
                return Err("syntax error: redirection without a file".into());
            }
            if !cur.words.is_empty() {
                out.push((conn, std::mem::take(&mut cur)));
            }
            conn = next;
            continue;
        }
        if c == '>' || c == '<' || (c == '2' && redirect_2(&chars)) {
            if pending.is_some() {
                return Err("syntax error: redirection without a file".into());
            }
            pending = read_redir(&mut chars, &mut cur)?;
            continue;
        }
        let w = read_word(&mut chars)?;
        match pending.take() {
            Some(r) => cur.redirs.push((r, w)),
            None => cur.words.push(w),
        }
    }
    if pending.is_some() {
        return Err("syntax error: redirection without a file".into());
    }
    if !cur.words.is_empty() || !cur.redirs.is_empty() {
        out.push((conn, cur));
    }
    Ok(out)
}

fn redirect_2(chars: &std::iter::Peekable<std::str::Chars<'_>>) -> bool {
    let mut ahead = chars.clone();
    ahead.next();
    ahead.peek() == Some(&'>')
}

/// A redirection operator waiting for its file; `2>/dev/null` and `2>&1` are complete in
/// themselves and go straight onto the command (None).
fn read_redir(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    cur: &mut Simple,
) -> Result<Option<Redir>, String> {
    match chars.next() {
        Some('<') => Ok(Some(Redir::In)),
        Some('>') if chars.peek() == Some(&'>') => {
            chars.next();
            Ok(Some(Redir::Append))
        }
        Some('>') => Ok(Some(Redir::Out)),
        Some('2') => {
            chars.next();
            let rest: String = chars
                .clone()
                .take_while(|c| !c.is_whitespace() && *c != ';')
                .collect();
            let r = match rest.as_str() {
                "&1" => Redir::ErrToOut,
                "/dev/null" => Redir::ErrNull,
                _ => return Err("syntax error: only 2>/dev/null and 2>&1 are supported".into()),
            };
            for _ in 0..rest.chars().count() {
                chars.next();
            }
            cur.redirs.push((r, Word(Vec::new())));
            Ok(None)
        }
        _ => Err("syntax error".into()),
    }
}

fn read_word(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Word, String> {
    let mut parts: Vec<(String, bool)> = Vec::new();
    let mut plain = String::new();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' | ';' | '\n' | '&' | '|' | '>' | '<' => break,
            '\'' => {
                chars.next();
                if !plain.is_empty() {
                    parts.push((std::mem::take(&mut plain), true));
                }
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => s.push(x),
                        None => return Err("syntax error: unterminated quoted string".into()),
                    }
                }
                parts.push((s, false));
            }
            '"' => {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => plain.push(x),
                            Some(x) => {
                                plain.push('\\');
                                plain.push(x);
                            }
                            None => return Err("syntax error: unterminated quoted string".into()),
                        },
                        Some(x) => plain.push(x),
                        None => return Err("syntax error: unterminated quoted string".into()),
                    }
                }
            }
            '\\' => {
                chars.next();
                if let Some(x) = chars.next() {
                    // An escaped `$` must not expand: keep it as a literal part.
                    if !plain.is_empty() {
                        parts.push((std::mem::take(&mut plain), true));
                    }
                    parts.push((x.to_string(), false));
                }
            }
            _ => {
                chars.next();
                plain.push(c);
            }
        }
    }
    if !plain.is_empty() || parts.is_empty() {
        parts.push((plain, true));
    }
    Ok(Word(parts))
}

/// What a command did.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Flow {
    Status(i32),
    Exit(i32),
}

/// Where a command's output goes.
enum Out {
    Term,
    Buffer(Vec<u8>),
}

/// The shell of one session.
pub struct Shell {
    pub term: Term,
    fs: Arc<Mutex<Fs>>,
    vars: BTreeMap<String, String>,
    status: i32,
    hostname: String,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Shell {
    pub fn new(
        term: Term,
        fs: Arc<Mutex<Fs>>,
        env: Vec<(String, String)>,
        hostname: String,
    ) -> Shell {
        let mut vars: BTreeMap<String, String> = [
            ("HOME", "/root"),
            (
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ),
            ("TERM", "xterm"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        vars.insert("HOSTNAME".into(), hostname.clone());
        vars.extend(env);
        Shell {
            term,
            fs,
            vars,
            status: 0,
            hostname,
        }
    }

    /// Runs the session's command (split like argv, as ECS Exec takes it); its exit status.
    pub async fn run_command(&mut self, command: &str) -> i32 {
        let list = match parse(command) {
            Ok(l) if l.len() == 1 => l,
            Ok(_) | Err(_) => {
                self.term
                    .write(b"executable file not found: the command must be one program and its arguments\n")
                    .await;
                return 127;
            }
        };
        match self.run_list(list).await {
            Flow::Status(s) | Flow::Exit(s) => s,
        }
    }

    fn run_list(&mut self, list: Vec<(Conn, Simple)>) -> Boxed<'_, Flow> {
        Box::pin(async move {
            for (conn, cmd) in list {
                let skip = match conn {
                    Conn::Always => false,
                    Conn::And => self.status != 0,
                    Conn::Or => self.status == 0,
                };
                if skip {
                    continue;
                }
                match self.run_simple(cmd).await {
                    Flow::Status(s) => self.status = s,
                    Flow::Exit(s) => {
                        self.status = s;
                        return Flow::Exit(s);
                    }
                }
            }
            Flow::Status(self.status)
        })
    }

    fn expand(&self, w: &Word) -> String {
        let mut out = String::new();
        for (text, expands) in &w.0 {
            if !expands {
                out.push_str(text);
                continue;
            }
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                if c != '$' {
                    out.push(c);
                    continue;
                }
                let name: String = match chars.peek() {
                    Some('?') => {
                        chars.next();
                        out.push_str(&self.status.to_string());
                        continue;
                    }
                    Some('{') => {
                        chars.next();
                        chars.by_ref().take_while(|c| *c != '}').collect()
                    }
                    _ => {
                        let mut n = String::new();
                        while let Some(&c) = chars.peek() {
                            if c.is_ascii_alphanumeric() || c == '_' {
                                n.push(c);
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        if n.is_empty() {
                            out.push('$');
                            continue;
                        }
                        n
                    }
                };
                out.push_str(self.vars.get(&name).map_or("", String::as_str));
            }
        }
        out
    }

    fn path(&self, p: &str) -> String {
        if p.starts_with('/') {
            p.to_string()
        } else {
            format!("/{p}")
        }
    }

    async fn run_simple(&mut self, cmd: Simple) -> Flow {
        let argv: Vec<String> = cmd.words.iter().map(|w| self.expand(w)).collect();
        let mut out = Out::Term;
        let mut target: Option<(String, bool)> = None;
        let mut stdin: Option<Vec<u8>> = None;
        for (r, w) in &cmd.redirs {
            let f = self.path(&self.expand(w));
            match r {
                Redir::Out | Redir::Append => {
                    out = Out::Buffer(Vec::new());
                    target = Some((f, *r == Redir::Append));
                }
                Redir::In => {
                    let r = self.fs.lock().unwrap_or_else(|p| p.into_inner()).read(&f);
                    match r {
                        Ok(d) => stdin = Some(d),
                        Err(e) => {
                            self.term.write(format!("sh: {e}\n").as_bytes()).await;
                            return Flow::Status(1);
                        }
                    }
                }
                Redir::ErrNull | Redir::ErrToOut => {}
            }
        }
        if argv.is_empty() {
            return Flow::Status(0);
        }
        let flow = self.builtin(&argv, &mut out, stdin).await;
        if let (Some((f, append)), Out::Buffer(data)) = (target, out) {
            let r = self
                .fs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write(&f, data, append);
            if let Err(e) = r {
                self.term.write(format!("sh: {e}\n").as_bytes()).await;
                return Flow::Status(1);
            }
        }
        flow
    }

    async fn emit(&mut self, out: &mut Out, bytes: &[u8]) {
        match out {
            Out::Term => self.term.write(bytes).await,
            Out::Buffer(b) => b.extend_from_slice(bytes),
        }
    }

    /// Standard input: a redirected file, else the terminal's lines until end of input.
    async fn read_stdin(&mut self, given: Option<Vec<u8>>) -> Result<Vec<u8>, i32> {
        if let Some(d) = given {
            return Ok(d);
        }
        let mut data = Vec::new();
        loop {
            match self.term.next_line().await {
                Line::Text(t) => data.extend(t),
                Line::Eof => return Ok(data),
                Line::Interrupt => return Err(130),
            }
        }
    }

    async fn builtin(&mut self, argv: &[String], out: &mut Out, stdin: Option<Vec<u8>>) -> Flow {
        let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        let name = argv[0].rsplit('/').next().unwrap_or(&argv[0]).to_string();
        if let Some((k, v)) = name.split_once('=').filter(|(k, _)| valid_name(k)) {
            self.vars.insert(k.to_string(), v.to_string());
            return Flow::Status(0);
        }
        let status = match name.as_str() {
            "echo" => {
                let (newline, words) = match args.first() {
                    Some(&"-n") => (false, &args[1..]),
                    _ => (true, &args[..]),
                };
                let mut s = words.join(" ");
                if newline {
                    s.push('\n');
                }
                self.emit(out, s.as_bytes()).await;
                0
            }
            "printf" => match args.split_first() {
                Some((fmt, rest)) => {
                    let s = printf(fmt, rest);
                    self.emit(out, &s).await;
                    0
                }
                None => 2,
            },
            "env" => {
                let s: String = self
                    .vars
                    .iter()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect();
                self.emit(out, s.as_bytes()).await;
                0
            }
            "true" | "cd" | ":" => 0,
            "false" => 1,
            "pwd" => {
                self.emit(out, b"/\n").await;
                0
            }
            "hostname" => {
                let h = format!("{}\n", self.hostname);
                self.emit(out, h.as_bytes()).await;
                0
            }
            "export" => {
                for a in &args {
                    if let Some((k, v)) = a.split_once('=') {
                        self.vars.insert(k.to_string(), v.to_string());
                    }
                }
                0
            }
            "exit" => {
                let code = args
                    .first()
                    .and_then(|a| a.parse::<i32>().ok())
                    .unwrap_or(self.status);
                return Flow::Exit(code & 0xff);
            }
            "sleep" => {
                let secs: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
                let d = Duration::from_secs_f64(secs.clamp(0.0, 3600.0));
                if self.term.sleep(d).await { 130 } else { 0 }
            }
            "stty" => self.stty(&args, out).await,
            "sh" | "bash" | "ash" => return self.sh(&args).await,
            "cat" | "base64" | "wc" | "ls" => return self.files(&name, &args, out, stdin).await,
            _ => {
                let msg = format!("sh: {}: not found\n", argv[0]);
                self.term.write(msg.as_bytes()).await;
                127
            }
        };
        Flow::Status(status)
    }

    async fn stty(&mut self, args: &[&str], out: &mut Out) -> i32 {
        self.term.catch_up().await;
        match args {
            ["size"] => {
                let s = format!("{} {}\n", self.term.rows, self.term.cols);
                self.emit(out, s.as_bytes()).await;
                0
            }
            ["-echo"] => {
                self.term.echo = false;
                0
            }
            ["echo"] => {
                self.term.echo = true;
                0
            }
            _ => 0,
        }
    }

    async fn sh(&mut self, args: &[&str]) -> Flow {
        if let ["-c", script, ..] = args {
            return match parse(script) {
                Ok(list) => match self.run_list(list).await {
                    Flow::Status(s) | Flow::Exit(s) => Flow::Status(s),
                },
                Err(e) => {
                    self.term.write(format!("sh: {e}\n").as_bytes()).await;
                    Flow::Status(2)
                }
            };
        }
        loop {
            self.term.write(b"# ").await;
            let line = match self.term.next_line().await {
                Line::Text(t) => String::from_utf8_lossy(&t).into_owned(),
                Line::Interrupt => continue,
                Line::Eof => {
                    self.term.write(b"\n").await;
                    return Flow::Status(self.status);
                }
            };
            match parse(&line) {
                Ok(list) => {
                    if let Flow::Exit(s) = self.run_list(list).await {
                        return Flow::Status(s);
                    }
                }
                Err(e) => {
                    self.term.write(format!("sh: {e}\n").as_bytes()).await;
                    self.status = 2;
                }
            }
        }
    }

    async fn files(
        &mut self,
        name: &str,
        args: &[&str],
        out: &mut Out,
        stdin: Option<Vec<u8>>,
    ) -> Flow {
        let decode = args.contains(&"-d");
        let paths: Vec<String> = args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .map(|a| self.path(a))
            .collect();
        if name == "ls" {
            let dir = paths.first().cloned().unwrap_or_else(|| "/".into());
            let listing = self.fs.lock().unwrap_or_else(|p| p.into_inner()).list(&dir);
            return match listing {
                Some(names) => {
                    let s: String = names.iter().map(|n| format!("{n}\n")).collect();
                    self.emit(out, s.as_bytes()).await;
                    Flow::Status(0)
                }
                None => {
                    let m = format!("ls: {dir}: No such file or directory\n");
                    self.term.write(m.as_bytes()).await;
                    Flow::Status(1)
                }
            };
        }
        if name == "cat" && !paths.is_empty() {
            let mut status = 0;
            for p in &paths {
                let r = self.fs.lock().unwrap_or_else(|e| e.into_inner()).read(p);
                match r {
                    Ok(d) => self.emit(out, &d).await,
                    Err(e) => {
                        self.term.write(format!("cat: {e}\n").as_bytes()).await;
                        status = 1;
                    }
                }
            }
            return Flow::Status(status);
        }
        let data = if paths.is_empty() {
            match self.read_stdin(stdin).await {
                Ok(d) => d,
                Err(code) => return Flow::Status(code),
            }
        } else {
            let mut all = Vec::new();
            for p in &paths {
                let r = self.fs.lock().unwrap_or_else(|e| e.into_inner()).read(p);
                match r {
                    Ok(d) => all.extend(d),
                    Err(e) => {
                        self.term.write(format!("{name}: {e}\n").as_bytes()).await;
                        return Flow::Status(1);
                    }
                }
            }
            all
        };
        let result = match name {
            "wc" => format!("{}\n", data.len()).into_bytes(),
            "base64" if decode => match base64_decode(&data) {
                Some(d) => d,
                None => {
                    self.term.write(b"base64: invalid input\n").await;
                    return Flow::Status(1);
                }
            },
            "base64" => base64_lines(&data),
            _ => data,
        };
        self.emit(out, &result).await;
        Flow::Status(0)
    }
}

fn valid_name(k: &str) -> bool {
    !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with(|c: char| c.is_ascii_digit())
}

/// POSIX printf, as far as `%s %d %%` and `\n \t \\ \0NNN \NNN \e`; the format is reused
/// while arguments remain.
fn printf(fmt: &str, args: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut args = args.iter();
    loop {
        let mut used = false;
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => out.push(b'\n'),
                    Some('t') => out.push(b'\t'),
                    Some('r') => out.push(b'\r'),
                    Some('a') => out.push(7),
                    Some('e') => out.push(0x1b),
                    Some('\\') => out.push(b'\\'),
                    Some(d) if d.is_digit(8) => {
                        let mut n = d.to_digit(8).unwrap_or(0);
                        let max = if d == '0' { 3 } else { 2 };
                        for _ in 0..max {
                            match chars.peek().and_then(|c| c.to_digit(8)) {
                                Some(x) => {
                                    n = n * 8 + x;
                                    chars.next();
                                }
                                None => break,
                            }
                        }
                        out.push(n as u8);
                    }
                    Some(x) => {
                        out.push(b'\\');
                        out.extend(x.to_string().as_bytes());
                    }
                    None => out.push(b'\\'),
                },
                '%' => match chars.next() {
                    Some('%') => out.push(b'%'),
                    Some('s') => {
                        used = true;
                        out.extend(args.next().unwrap_or(&"").as_bytes());
                    }
                    Some('d') => {
                        used = true;
                        let v: i64 = args.next().and_then(|a| a.trim().parse().ok()).unwrap_or(0);
                        out.extend(v.to_string().as_bytes());
                    }
                    Some(x) => {
                        out.push(b'%');
                        out.extend(x.to_string().as_bytes());
                    }
                    None => out.push(b'%'),
                },
                _ => {
                    let mut b = [0u8; 4];
                    out.extend(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        if !used || args.len() == 0 {
            return out;
        }
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 in lines of 76 characters, as `base64` prints it.
fn base64_lines(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + data.len() / 57 + 4);
    for (i, chunk) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push(b'\n');
        }
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= n {
                out.push(B64[(v >> (18 - 6 * k) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    if !data.is_empty() {
        out.push(b'\n');
    }
    out
}

/// Decodes base64, skipping whitespace; None on any other invalid byte.
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' | b' ' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `command` with `input` typed, and gives the terminal's output and the status.
    async fn session(command: &str, input: &[u8]) -> (String, i32) {
        typed(command, &[input]).await
    }

    /// Runs `command` with each of `inputs` typed 50 ms after the one before.
    async fn typed(command: &str, inputs: &[&[u8]]) -> (String, i32) {
        let (in_tx, in_rx) = mpsc::channel(64);
        let (out_tx, mut out_rx) = mpsc::channel(1024);
        let fs = Arc::new(Mutex::new(Fs::for_task("0123456789abcdef", "web")));
        let mut sh = Shell::new(
            Term::new(in_rx, out_tx),
            fs,
            vec![("GREETING".into(), "hello".into())],
            "ip-10-0-0-1".into(),
        );
        let inputs: Vec<Vec<u8>> = inputs.iter().map(|i| i.to_vec()).collect();
        tokio::spawn(async move {
            for i in inputs {
                if !i.is_empty() {
                    let _ = in_tx.send(Input::Bytes(i)).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let status = sh.run_command(command).await;
        drop(sh);
        let mut out = Vec::new();
        while let Some(b) = out_rx.recv().await {
            out.extend(b);
        }
        (String::from_utf8_lossy(&out).into_owned(), status)
    }

    #[tokio::test]
    async fn commands_lists_and_status() {
        assert_eq!(session("echo hi", b"").await, ("hi\r\n".into(), 0));
        assert_eq!(
            session("sh -c 'false; echo $?; true && echo and || echo or'", b"").await,
            ("1\r\nand\r\n".into(), 0)
        );
        assert_eq!(session("sh -c 'exit 7'", b"").await.1, 7);
        assert_eq!(
            session("nope", b"").await,
            ("sh: nope: not found\r\n".into(), 127)
        );
        assert_eq!(
            session(
                "sh -c 'echo \"$GREETING ${GREETING}\" '\\''$GREETING'\\'",
                b""
            )
            .await
            .0,
            "hello hello $GREETING\r\n"
        );
        assert_eq!(
            session("printf '\\033]x;%s;%d\\007' abc 42", b"").await.0,
            "\x1b]x;abc;42\x07"
        );
    }

    #[tokio::test]
    async fn interactive_shell_echoes_and_exits_with_the_status() {
        let (out, status) = typed("sh", &[b"echo one\r", b"echo tw\x7fwo\r", b"exit 3\r"]).await;
        assert_eq!(status, 3);
        assert!(out.contains("# echo one\r\none\r\n# "), "{out:?}");
        assert!(
            out.contains("echo tw\x08 \x08wo\r\ntwo\r\n# exit 3\r\n"),
            "{out:?}"
        );
        // Typed ahead, as on a pty: echoed when it arrives, run in turn.
        let (out, _) = session("sh", b"echo a\recho b\rexit\r").await;
        assert!(
            out.contains("echo a\r\necho b\r\nexit\r\na\r\n# b\r\n"),
            "{out:?}"
        );
        let (_, status) = session("sh", b"false\r\x04").await;
        assert_eq!(
            status, 1,
            "end of input ends the shell with the last status"
        );
    }

    #[tokio::test]
    async fn files_round_trip_through_base64() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let encoded = base64_lines(&data);
        assert!(encoded.split(|b| *b == b'\n').all(|l| l.len() <= 76));
        assert_eq!(base64_decode(&encoded).unwrap(), data);
        let mut data_typed = encoded.clone();
        data_typed.push(4);
        let (out, status) = typed(
            "sh -c 'stty -echo; base64 -d > /tmp/x && wc -c < /tmp/x'",
            &[b"", &data_typed],
        )
        .await;
        assert_eq!(status, 0);
        assert_eq!(out, "1000\r\n", "no echo after stty -echo");
        let (out, _) = session("cat /etc/motd /nope", b"").await;
        assert!(out.contains("built-in shell"));
        assert!(out.contains("cat: /nope: No such file or directory"));
        let (out, status) = session("sh -c 'echo x > /etc/hostname'", b"").await;
        assert_eq!(
            (out.as_str(), status),
            ("sh: /etc/hostname: Read-only file system\r\n", 1)
        );
    }

    #[tokio::test]
    async fn sleep_is_interrupted_by_ctrl_c() {
        let t = std::time::Instant::now();
        let (out, status) = session("sleep 30", b"\x03").await;
        assert_eq!(status, 130);
        assert!(out.contains("^C"));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn parse_errors_are_reported() {
        assert!(parse("echo 'open").is_err());
        assert!(parse("a | b").is_err());
        assert!(parse("echo >").is_err());
        assert_eq!(parse("a; b && c || d").unwrap().len(), 4);
    }
}
