//! Benchmark program for `cortado exec`: the real binary against an in-process sandbox over
//! its WebSocket data channel. Prints figures; asserts nothing about time.
//!
//! ```text
//! cargo build --release && cargo bench --bench exec
//! ```
//!
//! `CORTADO_BIN` runs another binary; `CORTADO_BENCH_N` sets the latency runs (default 20);
//! `CORTADO_BENCH_MB` the payload (default 10).
//!
//! Figures:
//! 1. `exec run --command 'echo hi'`: wall time from spawning cortado to "hi" on its stdout
//!    (config load, DescribeTasks/DescribeClusters/DescribeTaskDefinition/
//!    SimulatePrincipalPolicy, ExecuteCommand, WebSocket, handshake, output), and to its exit;
//! 2. `exec portforward`: MB/s of the payload sent through the tunnel to a loopback sink
//!    (upstream), and read from a loopback source through it (downstream);
//! 3. `exec cp`: MB/s of the payload uploaded and downloaded (base64 through the pty);
//! 4. raw loopback TCP: MB/s of the payload over one plain connection, the ceiling.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use common::{Res, locate_binary, sandbox_env};

struct Env {
    bin: PathBuf,
    endpoint: String,
    config: PathBuf,
}

impl Env {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.bin);
        c.env_clear()
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .envs(sandbox_env(&self.endpoint))
            .env("TAG", "v1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }
}

fn mb_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Spawn to "hi", spawn to exit.
async fn echo_latency(env: &Env) -> Res<(Duration, Duration)> {
    let t0 = Instant::now();
    let mut child = env
        .command(&["exec", "--command", "echo hi"])
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.windows(2).any(|w| w == b"hi") {
        let n = out.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("cortado ended without printing hi".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    let first = t0.elapsed();
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("exec exited {status}"));
    }
    Ok((first, t0.elapsed()))
}

/// Raw loopback: `bytes` over one TCP connection.
async fn loopback(bytes: usize) -> Res<Duration> {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let sink = tokio::spawn(async move {
        let (mut c, _) = l.accept().await.ok()?;
        let mut n = 0usize;
        let mut buf = vec![0u8; 65536];
        while n < bytes {
            n += c.read(&mut buf).await.ok().filter(|k| *k > 0)?;
        }
        c.write_all(b"k").await.ok()
    });
    let data = vec![7u8; bytes];
    let t0 = Instant::now();
    let mut c = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    c.write_all(&data).await.map_err(|e| e.to_string())?;
    let mut k = [0u8; 1];
    c.read_exact(&mut k).await.map_err(|e| e.to_string())?;
    let d = t0.elapsed();
    let _ = sink.await;
    Ok(d)
}

/// Portforward: upstream (client -> task's sink) and downstream (task's source -> client).
async fn portforward(env: &Env, bytes: usize) -> Res<(Duration, Duration)> {
    let server = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = server.local_addr().map_err(|e| e.to_string())?.port();
    tokio::spawn(async move {
        // First connection: a sink that acknowledges `bytes`; second: a source of `bytes`.
        if let Ok((mut c, _)) = server.accept().await {
            let (mut n, mut buf) = (0usize, vec![0u8; 65536]);
            while n < bytes {
                match c.read(&mut buf).await {
                    Ok(k) if k > 0 => n += k,
                    _ => return,
                }
            }
            let _ = c.write_all(b"k").await;
        }
        if let Ok((mut c, _)) = server.accept().await {
            let mut one = [0u8; 1];
            let _ = c.read_exact(&mut one).await;
            let _ = c.write_all(&vec![9u8; bytes]).await;
        }
    });
    let p = port.to_string();
    let mut child = env
        .command(&["exec", "portforward", "--port", &p, "--local-port", "0"])
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut err = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
    let local: u16 = loop {
        let line = err
            .next_line()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("portforward ended")?;
        if let Some(rest) = line.split("forwarding 127.0.0.1:").nth(1) {
            break rest
                .split(' ')
                .next()
                .unwrap_or("")
                .parse()
                .map_err(|_| "bad port line")?;
        }
    };
    let data = vec![7u8; bytes];
    let t0 = Instant::now();
    let mut c = TcpStream::connect(("127.0.0.1", local))
        .await
        .map_err(|e| e.to_string())?;
    c.write_all(&data).await.map_err(|e| e.to_string())?;
    let mut k = [0u8; 1];
    c.read_exact(&mut k).await.map_err(|e| e.to_string())?;
    let up = t0.elapsed();
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = TcpStream::connect(("127.0.0.1", local))
        .await
        .map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    c.write_all(b"g").await.map_err(|e| e.to_string())?;
    let mut got = vec![0u8; bytes];
    c.read_exact(&mut got).await.map_err(|e| e.to_string())?;
    let down = t0.elapsed();
    let _ = child.start_kill();
    Ok((up, down))
}

async fn cp(env: &Env, bytes: usize) -> Res<(Duration, Duration)> {
    let dir = std::env::temp_dir().join(format!("cortado-bench-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let up = dir.join("up.bin");
    let data: Vec<u8> = (0..bytes).map(|i| (i * 131 % 251) as u8).collect();
    std::fs::write(&up, &data).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let out = env
        .command(&["exec", "cp", up.to_str().unwrap_or(""), ":/tmp/bench.bin"])
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let d_up = t0.elapsed();
    if !out.status.success() {
        return Err(format!("cp up: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let down = dir.join("down.bin");
    let t0 = Instant::now();
    let out = env
        .command(&["exec", "cp", ":/tmp/bench.bin", down.to_str().unwrap_or("")])
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let d_down = t0.elapsed();
    if !out.status.success() || std::fs::read(&down).ok().as_deref() != Some(&data[..]) {
        return Err(format!("cp down: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok((d_up, d_down))
}

async fn bench() -> Res<()> {
    let bin = locate_binary()?;
    let n: usize = std::env::var("CORTADO_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mb: usize = std::env::var("CORTADO_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let bytes = mb * 1024 * 1024;
    let sb = cortado_sandbox::start(cortado_sandbox::Options {
        speed: 200.0,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    cortado_sandbox::Prepare {
        cluster: "scenarios".into(),
        images: vec!["123456789012.dkr.ecr.us-east-1.amazonaws.com/web:v1".into()],
        roles: vec![
            "arn:aws:iam::123456789012:role/shell-task".into(),
            "arn:aws:iam::123456789012:role/web-execution".into(),
        ],
        ..Default::default()
    }
    .apply(&sb)
    .map_err(|e| e.to_string())?;
    let env = Env {
        bin,
        endpoint: sb.endpoint(),
        config: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/deploy/exec/cortado.yml"),
    };
    let out = env
        .command(&["deploy"])
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "deploy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    println!(
        "cortado exec against the sandbox ({}), no session-manager-plugin",
        env.bin.display()
    );
    let mut firsts = Vec::new();
    let mut totals = Vec::new();
    for _ in 0..n {
        let (f, t) = echo_latency(&env).await?;
        firsts.push(f);
        totals.push(t);
    }
    let (fmax, tmax) = (
        *firsts.iter().max().unwrap_or(&Duration::ZERO),
        *totals.iter().max().unwrap_or(&Duration::ZERO),
    );
    println!(
        "exec run --command 'echo hi' ({n} runs): to output median {:.1} ms (max {:.1}); to exit median {:.1} ms (max {:.1})",
        median(firsts).as_secs_f64() * 1e3,
        fmax.as_secs_f64() * 1e3,
        median(totals).as_secs_f64() * 1e3,
        tmax.as_secs_f64() * 1e3,
    );
    let raw = loopback(bytes).await?;
    let (up, down) = portforward(&env, bytes).await?;
    let (cp_up, cp_down) = cp(&env, bytes).await?;
    let base = mb_s(bytes, raw);
    for (what, d) in [
        ("raw loopback TCP", raw),
        ("portforward upstream", up),
        ("portforward downstream", down),
        ("cp upload (whole command)", cp_up),
        ("cp download (whole command)", cp_down),
    ] {
        println!(
            "{what:<30} {mb} MiB in {:>8.1} ms = {:>8.1} MB/s ({:.2}% of loopback)",
            d.as_secs_f64() * 1e3,
            mb_s(bytes, d),
            100.0 * mb_s(bytes, d) / base
        );
    }
    Ok(())
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    if let Err(e) = rt.block_on(bench()) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}
