//! What the benchmark programs share: finding the cortado binary they measure, the clean
//! environment that points it at a sandbox, running it with its output read on the side,
//! and small number helpers. Each bench includes this module (`mod common;`) and uses what
//! it needs.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

pub type Res<T> = Result<T, String>;

/// The cortado binary: `CORTADO_BIN`, else `<target>/<profile>/cortado` next to the bench
/// (`<target>/<profile>/deps/BENCH-HASH`).
pub fn locate_binary() -> Res<PathBuf> {
    if let Ok(p) = std::env::var("CORTADO_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("CORTADO_BIN={} is not a file", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the bench's path: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected bench path {}", exe.display()))?;
    let bin = profile_dir.join(format!("cortado{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "no cortado binary at {}\n  = hint: build it first with the bench's profile (`cargo build --release` for `cargo bench`, `cargo build` for `--profile dev`) and the same CARGO_TARGET_DIR, or set CORTADO_BIN=path/to/cortado",
            bin.display()
        ))
    }
}

/// A multi-threaded tokio runtime with two workers, for the in-process sandbox.
pub fn runtime() -> Res<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))
}

/// The value, or the error on stderr and exit code 2 (a bench that cannot start).
pub fn or_exit<T>(r: Res<T>) -> T {
    r.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    })
}

/// The environment of a cortado run against a sandbox at `endpoint`: the endpoint, fake
/// credentials, the region, and no instance metadata lookups. Start from `env_clear()`.
pub fn sandbox_env(endpoint: &str) -> [(&'static str, String); 5] {
    [
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// A positive, finite number from the environment variable `name`, else `default`.
pub fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(default)
}

/// Wall-clock epoch seconds (what the sandbox's request log records).
pub fn wall() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running cortado whose stdout lines arrive on `lines` as they are printed and whose
/// stderr is read whole on the side, so neither pipe fills up while the bench polls.
pub struct Running {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    reader: JoinHandle<()>,
    err_reader: JoinHandle<String>,
}

impl Running {
    /// Spawns `cmd` with stdin closed and stdout and stderr piped.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Running> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let (tx, lines) = mpsc::channel::<String>();
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        });
        let mut stderr = child.stderr.take();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(e) = stderr.as_mut() {
                let _ = e.read_to_string(&mut s);
            }
            s
        });
        Ok(Running {
            child,
            lines,
            reader,
            err_reader,
        })
    }

    /// After the process exited: the stdout lines not yet received, and all of stderr.
    pub fn finish(self) -> (Vec<String>, String) {
        let _ = self.reader.join();
        let rest = self.lines.try_iter().collect();
        (rest, self.err_reader.join().unwrap_or_default())
    }

    /// Kills the process (past a deadline); returns its stderr.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.err_reader.join().unwrap_or_default()
    }
}
