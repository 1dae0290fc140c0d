//! The `external` plugin: a template function (and Jsonnet native) that runs a command.
//!
//! Receives one `plugins:` entry's `config` (ecspresso's keys: `name`, `command`, `num_args`,
//! `parser`, `timeout`, `mode`), checked at config load with located findings; hands on the
//! function [`func`] makes. The function's string arguments are appended to `command`
//! (no shell); its value is the command's standard output, decoded as JSON (`parser: json`,
//! the default) or taken as text (`parser: string`).
//!
//! - `mode: exec` (the default) starts the command once per call.
//! - `mode: jsonrpc` starts it on the first call and keeps it: each call writes one JSON-RPC
//!   2.0 request line (`{"jsonrpc":"2.0","method":NAME,"params":[ARGS],"id":N}`) to its
//!   standard input and reads one response line (`result` or `error`) from its standard
//!   output; a response with another id, a broken pipe or a timeout ends the process (the next
//!   call starts a new one; its standard error is kept, not shown, and quoted when a call
//!   fails so). The process's standard input is closed when the render context
//!   that holds the function is dropped, and the process is killed if it has not exited a
//!   second later.
//!
//! Every call has a deadline: `timeout` (a duration such as `30s`, or a number of seconds),
//! [`DEFAULT_TIMEOUT`] when it is not set (ecspresso waits for ever; cortado never does). A
//! command that fails, exits non-zero, times out or prints what the parser cannot read is an
//! input error (exit 1) located at the template call, with the end of its standard error.
//! Output is read up to [`MAX_OUTPUT`]. The command runs in cortado's folder with the
//! environment templates see (the process's, overlaid with `--envfile`s), as in ecspresso.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::template::{Func, FuncError, Value};
use crate::error::Diagnostic;

/// The deadline of one call when the plugin sets no `timeout`.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The most of a command's standard output (or of one JSON-RPC response line) that is read.
pub(crate) const MAX_OUTPUT: usize = 10 << 20;

/// How much of a failed command's standard error an error message quotes (its end).
const STDERR_SHOWN: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Exec,
    JsonRpc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parser {
    Json,
    Text,
}

/// An `external` plugin's checked `config`.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The function's name (before the plugin's `func_prefix`), also the JSON-RPC method.
    pub(crate) name: String,
    pub(crate) command: Vec<String>,
    /// How many arguments the Jsonnet native takes (templates take any number).
    pub(crate) num_args: usize,
    pub(crate) parser: Parser,
    pub(crate) timeout: Duration,
    pub(crate) mode: Mode,
}

impl Spec {
    /// Reads an `external` plugin's `config`; `at(key)` locates a key under it (`""` is the
    /// plugin entry itself).
    pub(crate) fn from_config(
        config: &Json,
        at: &dyn Fn(&str) -> crate::error::Location,
    ) -> std::result::Result<Spec, Diagnostic> {
        let Some(obj) = config.as_object() else {
            return Err(
                Diagnostic::error("the external plugin has no `config` mapping")
                    .at(at(""))
                    .hint(USAGE),
            );
        };
        Ok(Spec {
            name: read_name(obj, at)?,
            command: read_command(obj, at)?,
            num_args: read_num_args(obj, at)?,
            parser: read_parser(obj, at)?,
            // Checked in this order so the first bad key is the one reported.
            mode: read_mode(obj, at)?,
            timeout: read_timeout(obj, at)?,
        })
    }
}

/// How an `external` plugin's `config` is written, for hints.
const USAGE: &str = "configure it as `config: {name: FUNC, command: [PROGRAM, ARG...]}` (optional: num_args, parser: json|string, timeout: 30s, mode: exec|jsonrpc)";

type ConfigMap = serde_json::Map<String, Json>;
type Locate<'a> = &'a dyn Fn(&str) -> crate::error::Location;

/// `name`: the function's name, an identifier.
fn read_name(obj: &ConfigMap, at: Locate<'_>) -> std::result::Result<String, Diagnostic> {
    match obj.get("name") {
        Some(Json::String(n)) if is_identifier(n) => Ok(n.clone()),
        Some(Json::String(n)) => Err(Diagnostic::error(format!(
            "the external plugin's `name` {n:?} is not a function name"
        ))
        .at(at("/config/name"))
        .hint("use letters, digits and `_`, not starting with a digit (e.g. `jq`)")),
        _ => Err(Diagnostic::error(
            "the external plugin's `name` (its function's name) is missing or not a string",
        )
        .at(at("/config"))
        .hint(USAGE)),
    }
}

/// `command`: a non-empty list of strings whose first (the program) is not empty.
fn read_command(obj: &ConfigMap, at: Locate<'_>) -> std::result::Result<Vec<String>, Diagnostic> {
    let command: Option<Vec<String>> = match obj.get("command") {
        Some(Json::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    };
    command.filter(|c| !c[0].is_empty()).ok_or_else(|| {
        Diagnostic::error("the external plugin's `command` must be a non-empty list of strings")
            .at(at(if obj.contains_key("command") {
                "/config/command"
            } else {
                "/config"
            }))
            .hint("write it as `command: [\"jq\", \"-n\"]`: the program, then its arguments")
    })
}

/// `num_args`: 0 to 16, 0 when not set.
fn read_num_args(obj: &ConfigMap, at: Locate<'_>) -> std::result::Result<usize, Diagnostic> {
    match obj.get("num_args") {
        None | Some(Json::Null) => Ok(0),
        Some(Json::Number(n)) if n.as_u64().is_some_and(|n| n <= 16) => {
            Ok(n.as_u64().unwrap_or(0) as usize)
        }
        Some(other) => Err(Diagnostic::error(format!(
            "the external plugin's `num_args` must be a whole number from 0 to 16, found {other}"
        ))
        .at(at("/config/num_args"))
        .hint("it is the number of arguments the Jsonnet function takes")),
    }
}

/// `parser`: `json` (the default, also for `""`) or `string`.
fn read_parser(obj: &ConfigMap, at: Locate<'_>) -> std::result::Result<Parser, Diagnostic> {
    match obj.get("parser").and_then(Json::as_str) {
        None if obj.get("parser").is_none_or(Json::is_null) => Ok(Parser::Json),
        Some("json") | Some("") => Ok(Parser::Json),
        Some("string") => Ok(Parser::Text),
        _ => Err(Diagnostic::error(format!(
            "the external plugin's `parser` must be \"json\" or \"string\", found {}",
            obj.get("parser").unwrap_or(&Json::Null)
        ))
        .at(at("/config/parser"))
        .hint("json decodes the command's output; string takes it as text")),
    }
}

/// `mode`: `exec` (the default, also for `""`) or `jsonrpc`.
fn read_mode(obj: &ConfigMap, at: Locate<'_>) -> std::result::Result<Mode, Diagnostic> {
    match obj.get("mode").and_then(Json::as_str) {
        None if obj.get("mode").is_none_or(Json::is_null) => Ok(Mode::Exec),
        Some("exec") | Some("") => Ok(Mode::Exec),
        Some("jsonrpc") => Ok(Mode::JsonRpc),
        _ => Err(Diagnostic::error(format!(
            "the external plugin's `mode` must be \"exec\" or \"jsonrpc\", found {}",
            obj.get("mode").unwrap_or(&Json::Null)
        ))
        .at(at("/config/mode"))
        .hint("exec starts the command for each call; jsonrpc starts it once and speaks JSON-RPC 2.0 over its standard input and output")),
    }
}

/// `timeout`: a duration or a number of seconds (up to a day), [`DEFAULT_TIMEOUT`] when not set.
fn read_timeout(obj: &ConfigMap, at: Locate<'_>) -> std::result::Result<Duration, Diagnostic> {
    let Some(t) = obj.get("timeout").filter(|t| !t.is_null()) else {
        return Ok(DEFAULT_TIMEOUT);
    };
    match timeout_value(t) {
        Ok(d) if !d.is_zero() => Ok(d),
        parsed => {
            let why = parsed.err().unwrap_or_else(|| "zero".to_string());
            Err(Diagnostic::error(format!(
                "the external plugin's `timeout` {t} is not usable: {why}"
            ))
            .at(at("/config/timeout"))
            .hint("write a duration such as 30s or 5m, or a number of seconds"))
        }
    }
}

/// A `timeout` value as a duration, or what it should have been.
fn timeout_value(t: &Json) -> std::result::Result<Duration, String> {
    match t {
        Json::Number(n) => n
            .as_f64()
            .filter(|s| *s > 0.0 && s.is_finite() && *s <= 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| "a positive number of seconds".to_string()),
        Json::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=86_400).contains(n))
            .map(Duration::from_secs)
            .ok_or_else(|| "a positive number of seconds".to_string()),
        Json::String(s) => crate::config::parse_duration(s),
        _ => Err("a duration".to_string()),
    }
}

/// A timeout for messages: `90s`, `1.5s`.
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The template function of an `external` plugin; `vars` is the environment the command gets.
pub(crate) fn func(spec: Spec, vars: Arc<BTreeMap<String, String>>) -> Func {
    let rpc = Arc::new(Mutex::new(None::<RpcProcess>));
    let spec = Arc::new(spec);
    Arc::new(move |args: &[Value]| {
        let args = args
            .iter()
            .enumerate()
            .map(|(i, a)| match a {
                Value::Str(s) => Ok(s.clone()),
                other => Err(FuncError::input(format!(
                    "{}: argument {} is a {}, the command takes strings",
                    spec.name,
                    i + 1,
                    other.kind()
                ))
                .hint("quote it, or convert it with printf \"%v\"")),
            })
            .collect::<std::result::Result<Vec<String>, FuncError>>()?;
        blocking(|| match spec.mode {
            Mode::Exec => run_once(&spec, &vars, &args),
            Mode::JsonRpc => call_rpc(&spec, &vars, &rpc, &args),
        })
    })
}

/// Runs `f`, which blocks, without stalling a multi-thread tokio runtime it may be inside.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn command(spec: &Spec, vars: &BTreeMap<String, String>, args: &[String]) -> Command {
    let mut c = Command::new(&spec.command[0]);
    c.args(&spec.command[1..])
        .args(args)
        .env_clear()
        .envs(vars.iter());
    c
}

fn shown(spec: &Spec) -> String {
    spec.command.join(" ")
}

fn spawn_error(spec: &Spec, e: &std::io::Error) -> FuncError {
    FuncError::input(format!(
        "{}: cannot start {}: {e}",
        spec.name, spec.command[0]
    ))
    .hint("check the plugin's `command` (the program must be on PATH, or a path from the folder cortado runs in)")
}

/// Reads all of `r` (up to `limit` bytes, then drains the rest) on a thread of its own.
fn read_all(mut r: impl Read + Send + 'static, limit: usize) -> Receiver<(Vec<u8>, bool)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        let mut over = false;
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if kept.len() + n > limit {
                        over = true;
                        kept.extend_from_slice(&buf[..limit.saturating_sub(kept.len())]);
                    } else {
                        kept.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
        let _ = tx.send((kept, over));
    });
    rx
}

fn stderr_tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let start = text
        .char_indices()
        .rev()
        .nth(STDERR_SHOWN)
        .map_or(0, |(i, _)| i);
    format!("; its standard error ends: {}", &text[start..])
}

/// `mode: exec`: one process for this call.
fn run_once(
    spec: &Spec,
    vars: &BTreeMap<String, String>,
    args: &[String],
) -> std::result::Result<Value, FuncError> {
    let mut child = command(spec, vars, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(spec, &e))?;
    let out = read_all(child.stdout.take().expect("piped"), MAX_OUTPUT);
    let err = read_all(child.stderr.take().expect("piped"), MAX_OUTPUT);
    let deadline = Instant::now() + spec.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FuncError::input(format!(
                    "{}: `{}` did not finish within its timeout of {}",
                    spec.name,
                    shown(spec),
                    seconds(spec.timeout)
                ))
                .hint("raise the plugin's `timeout`, or make the command faster"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                let _ = child.kill();
                return Err(FuncError::input(format!(
                    "{}: cannot wait for `{}`: {e}",
                    spec.name,
                    shown(spec)
                )));
            }
        }
    };
    // The pipes close when the process exits, unless it left a child holding them.
    let grace = Duration::from_secs(2);
    let (stdout, over) = out.recv_timeout(grace).unwrap_or_default();
    let (stderr, _) = err.recv_timeout(grace).unwrap_or_default();
    if !status.success() {
        return Err(FuncError::input(format!(
            "{}: `{}` failed ({status}){}",
            spec.name,
            shown(spec),
            stderr_tail(&stderr)
        ))
        .hint("run the command by hand with the same arguments to see why"));
    }
    if over {
        return Err(FuncError::input(format!(
            "{}: `{}` printed more than {} MiB",
            spec.name,
            shown(spec),
            MAX_OUTPUT >> 20
        )));
    }
    parse_output(spec, &stdout)
}

/// The command's output as a template value, as the plugin's `parser` reads it.
fn parse_output(spec: &Spec, stdout: &[u8]) -> std::result::Result<Value, FuncError> {
    match spec.parser {
        Parser::Text => String::from_utf8(stdout.to_vec())
            .map(Value::Str)
            .map_err(|_| {
                FuncError::input(format!(
                    "{}: `{}` printed bytes that are not UTF-8 text",
                    spec.name,
                    shown(spec)
                ))
            }),
        Parser::Json => {
            // The first JSON value of the output, as ecspresso's decoder reads it.
            let first = serde_json::Deserializer::from_slice(stdout)
                .into_iter::<Json>()
                .next();
            match first {
                Some(Ok(v)) => Ok(from_json(v)),
                Some(Err(e)) => Err(FuncError::input(format!(
                    "{}: the output of `{}` is not JSON: {e}",
                    spec.name,
                    shown(spec)
                ))
                .hint("print JSON, or set `parser: string` to take the output as text")),
                None => Err(FuncError::input(format!(
                    "{}: `{}` printed nothing, and the plugin's parser expects JSON",
                    spec.name,
                    shown(spec)
                ))
                .hint("print a JSON value, or set `parser: string`")),
            }
        }
    }
}

/// A JSON value as a template value: scalars as themselves, lists and objects as compact JSON
/// text (templates have no field access; Jsonnet reads it back with `std.parseJson`).
fn from_json(v: Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Str(s),
        other => Value::Str(other.to_string()),
    }
}

/// A `mode: jsonrpc` process: its input, the lines it prints, the next request id.
struct RpcProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<std::io::Result<String>>,
    next_id: u64,
    /// The end of what it printed on its standard error (never passed through to cortado's).
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl RpcProcess {
    fn start(spec: &Spec, vars: &BTreeMap<String, String>) -> std::result::Result<Self, FuncError> {
        let mut child = command(spec, vars, &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(spec, &e))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut err) = child.stderr.take() {
            let tail = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    t.extend_from_slice(&buf[..n]);
                    let over = t.len().saturating_sub(4 * STDERR_SHOWN);
                    t.drain(..over);
                }
            });
        }
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                let read = (&mut r)
                    .take(MAX_OUTPUT as u64 + 1)
                    .read_until(b'\n', &mut line);
                let item = match read {
                    Ok(0) => break,
                    Ok(_) if line.len() > MAX_OUTPUT => Err(std::io::Error::other(format!(
                        "a response line is longer than {} MiB",
                        MAX_OUTPUT >> 20
                    ))),
                    Ok(_) => String::from_utf8(line)
                        .map_err(|_| std::io::Error::other("a response is not UTF-8 text")),
                    Err(e) => Err(e),
                };
                let stop = item.is_err();
                if tx.send(item).is_err() || stop {
                    break;
                }
            }
        });
        Ok(RpcProcess {
            child,
            stdin,
            lines,
            next_id: 0,
            stderr,
        })
    }

    /// One request and its response, within `timeout`; `Err` leaves the process unusable.
    fn call(
        &mut self,
        method: &str,
        params: &[String],
        timeout: Duration,
    ) -> std::result::Result<std::result::Result<Json, String>, String> {
        self.next_id += 1;
        let id = self.next_id;
        let request =
            serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
        let stdin = self.stdin.as_mut().ok_or("its input is closed")?;
        writeln!(stdin, "{request}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("cannot send the request: {e}"))?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(Ok(line)) => line,
                Ok(Err(e)) => return Err(format!("cannot read the response: {e}")),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "no response within its timeout of {}",
                        seconds(timeout)
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("the process ended before it answered".to_string());
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let response: Json = serde_json::from_str(line.trim())
                .map_err(|e| format!("its response is not JSON: {e}"))?;
            if response.get("id").and_then(Json::as_u64) != Some(id) {
                return Err(format!(
                    "its response has id {}, the request {id}",
                    response.get("id").unwrap_or(&Json::Null)
                ));
            }
            if let Some(error) = response.get("error").filter(|e| !e.is_null()) {
                let message = error
                    .get("message")
                    .and_then(Json::as_str)
                    .unwrap_or("(no message)");
                let code = error.get("code").unwrap_or(&Json::Null);
                return Ok(Err(format!("{message} (code {code})")));
            }
            return Ok(Ok(response.get("result").cloned().unwrap_or(Json::Null)));
        }
    }
}

impl Drop for RpcProcess {
    /// Closes its input (the signal to finish), then kills it if it has not exited a second
    /// later, and reaps it.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mode: jsonrpc`: the call through the kept process (started on first use, ended and left
/// for the next call to restart when a call breaks the stream).
fn call_rpc(
    spec: &Spec,
    vars: &BTreeMap<String, String>,
    slot: &Mutex<Option<RpcProcess>>,
    args: &[String],
) -> std::result::Result<Value, FuncError> {
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        *slot = Some(RpcProcess::start(spec, vars)?);
    }
    let proc = slot.as_mut().expect("set above");
    match proc.call(&spec.name, args, spec.timeout) {
        Ok(Ok(result)) => Ok(from_json(result)),
        Ok(Err(message)) => Err(FuncError::input(format!(
            "{}: `{}` answered with an error: {message}",
            spec.name,
            shown(spec)
        ))),
        Err(broken) => {
            let stderr = stderr_tail(&proc.stderr.lock().unwrap_or_else(|e| e.into_inner()));
            // The stream can no longer be trusted: end the process (Drop), start anew next call.
            *slot = None;
            Err(FuncError::input(format!(
                "{}: JSON-RPC call to `{}` failed: {broken}{stderr}",
                spec.name,
                shown(spec)
            ))
            .hint("the process must answer each request line with one JSON-RPC 2.0 response line carrying the same id"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(config: Json) -> std::result::Result<Spec, String> {
        let at = |_: &str| crate::error::Location {
            path: "cortado.yml".into(),
            line: 1,
            col: 1,
            line_text: None,
            len: 1,
        };
        Spec::from_config(&config, &at).map_err(|d| d.message)
    }

    #[test]
    fn config_is_checked_with_ecspressos_keys_and_defaults() {
        let s = spec(
            serde_json::json!({"name": "jq", "command": ["jq", "-n"], "num_args": 1, "timeout": 5}),
        )
        .unwrap();
        assert_eq!(s.name, "jq");
        assert_eq!(s.command, vec!["jq", "-n"]);
        assert_eq!(s.num_args, 1);
        assert_eq!(s.parser, Parser::Json);
        assert_eq!(s.mode, Mode::Exec);
        assert_eq!(s.timeout, Duration::from_secs(5));
        let s = spec(serde_json::json!({"name": "x", "command": ["x"], "timeout": "1m30s", "mode": "jsonrpc", "parser": "string"})).unwrap();
        assert_eq!(
            (s.timeout, s.mode, s.parser),
            (Duration::from_secs(90), Mode::JsonRpc, Parser::Text)
        );
        assert_eq!(
            spec(serde_json::json!({"name": "x", "command": ["x"], "timeout": "30"}))
                .unwrap()
                .timeout,
            Duration::from_secs(30)
        );
        assert_eq!(
            spec(serde_json::json!({"name": "x", "command": ["x"]}))
                .unwrap()
                .timeout,
            DEFAULT_TIMEOUT
        );
        for (bad, want) in [
            (serde_json::json!(null), "no `config`"),
            (serde_json::json!({"command": ["x"]}), "`name`"),
            (
                serde_json::json!({"name": "a-b", "command": ["x"]}),
                "not a function name",
            ),
            (serde_json::json!({"name": "x"}), "`command`"),
            (
                serde_json::json!({"name": "x", "command": "jq -n"}),
                "`command`",
            ),
            (serde_json::json!({"name": "x", "command": []}), "`command`"),
            (
                serde_json::json!({"name": "x", "command": ["x"], "parser": "yaml"}),
                "`parser`",
            ),
            (
                serde_json::json!({"name": "x", "command": ["x"], "mode": "grpc"}),
                "`mode`",
            ),
            (
                serde_json::json!({"name": "x", "command": ["x"], "num_args": -1}),
                "`num_args`",
            ),
            (
                serde_json::json!({"name": "x", "command": ["x"], "timeout": "soon"}),
                "`timeout`",
            ),
            (
                serde_json::json!({"name": "x", "command": ["x"], "timeout": 0}),
                "`timeout`",
            ),
        ] {
            let err = spec(bad.clone()).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn the_first_bad_key_is_reported_and_null_means_unset() {
        // Keys are checked name, command, num_args, parser, mode, timeout: the first bad one
        // is the error.
        let all_bad = serde_json::json!({"name": "x", "command": ["x"], "num_args": 99,
            "parser": "yaml", "mode": "grpc", "timeout": "soon"});
        let mut bad = all_bad.clone();
        for key in ["num_args", "parser", "mode", "timeout"] {
            let err = spec(bad.clone()).unwrap_err();
            assert!(err.contains(&format!("`{key}`")), "{bad}: {err}");
            bad.as_object_mut().unwrap().remove(key);
        }
        assert!(spec(bad).is_ok());
        let s = spec(
            serde_json::json!({"name": "x", "command": ["x"], "num_args": null,
            "parser": null, "mode": null, "timeout": null}),
        )
        .unwrap();
        assert_eq!(
            (s.num_args, s.parser, s.mode, s.timeout),
            (0, Parser::Json, Mode::Exec, DEFAULT_TIMEOUT)
        );
        let err =
            spec(serde_json::json!({"name": "x", "command": ["x"], "timeout": "0"})).unwrap_err();
        assert!(err.contains("a positive number of seconds"), "{err}");
    }

    #[test]
    fn json_values_become_template_values() {
        assert_eq!(from_json(serde_json::json!("a")), Value::Str("a".into()));
        assert_eq!(from_json(serde_json::json!(3)), Value::Int(3));
        assert_eq!(from_json(serde_json::json!(1.5)), Value::Float(1.5));
        assert_eq!(from_json(serde_json::json!(true)), Value::Bool(true));
        assert_eq!(from_json(serde_json::json!(null)), Value::Nil);
        assert_eq!(
            from_json(serde_json::json!({"Now": "x", "n": [1]})),
            Value::Str(r#"{"Now":"x","n":[1]}"#.into())
        );
    }
}
