//! `exec cp`: a file to or from a container over ECS Exec's shell channel.
//!
//! Session Manager has no file transfer. ecspresso has no `cp`; its exec is ecsta's, whose
//! `cp` uploads a small TCP agent binary (tncl) into the container through exec (base64 in
//! a here-document), then port-forwards to it. cortado needs no binary in the container: it
//! moves the file as base64 text through the pty, with marks ([`super::marker`]) to know when
//! the container is ready and where the bytes start, and checks the size at the end:
//!
//! - upload: `sh -c 'stty -echo; MARK ready; base64 -d > DEST; s=$?; MARK begin; wc -c < DEST; MARK exit $s'`,
//!   then the file as base64 lines of 76 characters (well under a pty's 4096-byte line) and
//!   ^D. `stty -echo` keeps the pty from echoing the data back;
//! - download: `sh -c 'MARK begin; base64 SRC; MARK exit $?'`, the lines decoded here.
//!
//! The container needs `sh` and `base64` (coreutils or busybox). Receives the two sides
//! (`PATH` local, `:PATH` or `TASK:PATH` remote, `-` for stdin/stdout); shows progress on a
//! terminal (a plain summary line otherwise); hands on exit 0 or an error.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Instant;

use cortado_ssm_session::{Event, PayloadType};

use super::channel::{self, Channel};
use super::marker::{Mark, Scanner, print_mark, sh_c, sh_quote};
use super::target::Picked;
use crate::aws::Clients;
use crate::error::{Diagnostic, Error, ErrorKind, Result};
use crate::report::Printer;

/// Which way a copy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dir {
    Upload,
    Download,
}

/// A copy, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Copy {
    pub dir: Dir,
    /// A local path, or `-` (stdin / stdout).
    pub local: String,
    /// A path in the container.
    pub remote: String,
}

fn bad(message: impl Into<String>, hint: &str) -> Error {
    Error::input(Diagnostic::error(message).hint(hint))
}

/// `(task, path)` of a remote side (`:PATH`, `TASK:PATH`, `_:PATH`); None for a local one.
fn remote(s: &str) -> Option<(Option<String>, String)> {
    if s.starts_with('/') || s.starts_with('.') || s == "-" {
        return None;
    }
    let (task, path) = s.split_once(':')?;
    let task = (!task.is_empty() && task != "_").then(|| task.to_string());
    Some((task, path.to_string()))
}

fn base_name(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

impl Copy {
    /// The copy and the task the remote side names, if any.
    pub(super) fn parse(src: &str, dst: &str) -> Result<(Copy, Option<String>)> {
        let hint =
            "one side is in the container (`:PATH` or `TASK:PATH`), the other local (`PATH`, `-`)";
        let (dir, local, (task, mut path)) = match (remote(src), remote(dst)) {
            (Some(r), None) => (Dir::Download, dst.to_string(), r),
            (None, Some(r)) => (Dir::Upload, src.to_string(), r),
            (Some(_), Some(_)) => {
                return Err(bad("both sides of the copy are in a container", hint));
            }
            (None, None) => return Err(bad("neither side of the copy is in a container", hint)),
        };
        if path.is_empty() {
            return Err(bad("the container path is empty", hint));
        }
        let mut local = local;
        if dir == Dir::Upload && path.ends_with('/') {
            if local == "-" {
                return Err(bad(
                    "copying stdin needs a file name in the container",
                    hint,
                ));
            }
            path.push_str(base_name(&local));
        }
        if dir == Dir::Download
            && local != "-"
            && (local.ends_with('/') || Path::new(&local).is_dir())
        {
            local = Path::new(&local)
                .join(base_name(&path))
                .to_string_lossy()
                .into_owned();
        }
        Ok((
            Copy {
                dir,
                local,
                remote: path,
            },
            task,
        ))
    }
}

fn failed(message: String, hint: &str) -> Error {
    Error::new(ErrorKind::Aws, Diagnostic::error(message).hint(hint))
}

/// Output of the container shown in an error: printable text only, trimmed.
fn shown(out: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(out)
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    let t = text.trim();
    let t = if t.len() > 300 {
        &t[t.len() - 300..]
    } else {
        t
    };
    if t.is_empty() {
        "no output".into()
    } else {
        t.to_string()
    }
}

/// What a copy session has said so far.
struct Reading {
    scanner: Scanner,
    before: Vec<u8>,
    body: Vec<u8>,
    begun: bool,
    ready: bool,
    status: Option<i32>,
    ended: bool,
}

impl Reading {
    fn new(nonce: &str) -> Reading {
        Reading {
            scanner: Scanner::new(nonce),
            before: Vec::new(),
            body: Vec::new(),
            begun: false,
            ready: false,
            status: None,
            ended: false,
        }
    }

    /// Reads events until `done` holds or the session ends; `progress` sees body bytes.
    async fn until(
        &mut self,
        ch: &mut Channel,
        done: fn(&Reading) -> bool,
        progress: &dyn Fn(usize),
    ) -> Result<()> {
        while !done(self) && !self.ended {
            match ch.events.recv().await {
                Some(Event::Data {
                    payload_type: PayloadType::Output,
                    payload,
                }) => {
                    let (out, marks) = self.scanner.push(&payload);
                    let mut out = &out[..];
                    for m in marks {
                        // Marks come after the output that preceded them in this piece only
                        // when the piece held both; the wrappers print them on their own.
                        match m {
                            Mark::Ready => self.ready = true,
                            Mark::Begin => {
                                self.before.extend_from_slice(out);
                                out = &[];
                                self.begun = true;
                            }
                            Mark::Exit(c) => self.status = Some(c),
                        }
                    }
                    if self.begun {
                        progress(out.len());
                        self.body.extend_from_slice(out);
                    } else {
                        self.before.extend_from_slice(out);
                    }
                }
                Some(Event::Closed { .. }) | None => self.ended = true,
                Some(Event::Failed { error }) => {
                    return Err(failed(
                        format!("the copy's session failed: {error}"),
                        "try again",
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

fn bar(total: Option<u64>, progress: bool, label: &str) -> indicatif::ProgressBar {
    if !progress || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = match total {
        Some(t) => indicatif::ProgressBar::new(t),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let style = indicatif::ProgressStyle::with_template(
        "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    b.set_style(style);
    b.set_message(label.to_string());
    b
}

/// Runs the copy.
pub(super) async fn run(
    clients: &Clients,
    p: &Picked,
    copy: &Copy,
    progress: bool,
    printer: &Printer,
) -> Result<u8> {
    let t0 = Instant::now();
    let bytes = match copy.dir {
        Dir::Upload => upload(clients, p, copy, progress).await?,
        Dir::Download => download(clients, p, copy, progress).await?,
    };
    let secs = t0.elapsed().as_secs_f64().max(1e-6);
    let (from, to) = match copy.dir {
        Dir::Upload => (
            copy.local.clone(),
            format!("{}:{}", p.container, copy.remote),
        ),
        Dir::Download => (
            format!("{}:{}", p.container, copy.remote),
            copy.local.clone(),
        ),
    };
    printer.info(&format!(
        "exec: copied {from} to {to}: {bytes} bytes in {secs:.2} s ({:.1} MB/s)",
        bytes as f64 / secs / 1e6
    ));
    Ok(0)
}

async fn upload(clients: &Clients, p: &Picked, copy: &Copy, progress: bool) -> Result<usize> {
    let data = if copy.local == "-" {
        let mut d = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut d)
            .map_err(|e| bad(format!("cannot read stdin: {e}"), "pipe the file in"))?;
        d
    } else {
        std::fs::read(&copy.local).map_err(|e| {
            bad(
                format!("cannot read {}: {e}", copy.local),
                "give a readable file",
            )
        })?
    };
    let nonce = cortado_ssm_session::random_hex(8);
    let dest = sh_quote(&copy.remote);
    let script = format!(
        "stty -echo 2>/dev/null; {}; base64 -d > {dest}; s=$?; {}; wc -c < {dest}; {}",
        print_mark("ready", &nonce, None),
        print_mark("begin", &nonce, None),
        print_mark("exit", &nonce, Some("$s")),
    );
    let start = clients
        .execute_command(&p.cluster, p.task_arn(), &p.container, &sh_c(&script))
        .await?;
    let mut ch = channel::open(clients, start).await?;
    let mut r = Reading::new(&nonce);
    r.until(&mut ch, |r| r.ready, &|_| {}).await?;
    if !r.ready {
        return Err(failed(
            format!("the container did not start the copy: {}", shown(&r.before)),
            "the container needs `sh` and `base64`",
        ));
    }
    let bar = bar(Some(data.len() as u64), progress, "upload");
    let (h, b) = (ch.handle.clone(), bar.clone());
    let sender = tokio::spawn(async move {
        for chunk in data.chunks(57 * 13) {
            let mut lines = base64_lines(chunk);
            if !h.send_chunked(PayloadType::Output, &lines).await {
                return data.len();
            }
            b.inc(chunk.len() as u64);
            lines.clear();
        }
        h.send(PayloadType::Output, vec![0x04]).await;
        data.len()
    });
    r.until(&mut ch, |r| r.status.is_some(), &|_| {}).await?;
    bar.finish_and_clear();
    let sent = sender.await.unwrap_or(0);
    let size: Option<usize> = String::from_utf8_lossy(&r.body).trim().parse().ok();
    match (r.status, size) {
        (Some(0), Some(n)) if n == sent => Ok(n),
        (Some(0), n) => Err(failed(
            format!(
                "{} holds {} bytes after the copy, not {sent}",
                copy.remote,
                n.map_or("?".into(), |n| n.to_string())
            ),
            "try again",
        )),
        (Some(c), _) => Err(failed(
            format!(
                "writing {} in the container failed (exit {c}): {}",
                copy.remote,
                shown(&r.before)
            ),
            "check that the folder exists and is writable",
        )),
        (None, _) => Err(failed(
            format!(
                "the copy's session ended before it finished: {}",
                shown(&r.before)
            ),
            "try again",
        )),
    }
}

async fn download(clients: &Clients, p: &Picked, copy: &Copy, progress: bool) -> Result<usize> {
    let nonce = cortado_ssm_session::random_hex(8);
    let script = format!(
        "{}; base64 {}; {}",
        print_mark("begin", &nonce, None),
        sh_quote(&copy.remote),
        print_mark("exit", &nonce, Some("$?")),
    );
    let start = clients
        .execute_command(&p.cluster, p.task_arn(), &p.container, &sh_c(&script))
        .await?;
    let mut ch = channel::open(clients, start).await?;
    let mut r = Reading::new(&nonce);
    let bar = bar(None, progress, "download");
    let b = bar.clone();
    r.until(&mut ch, |r| r.status.is_some(), &move |n| {
        b.inc((n * 3 / 4) as u64)
    })
    .await?;
    bar.finish_and_clear();
    match r.status {
        Some(0) => {}
        Some(c) => {
            return Err(failed(
                format!(
                    "reading {} in the container failed (exit {c}): {}",
                    copy.remote,
                    shown(&r.body)
                ),
                "check the path",
            ));
        }
        None => {
            return Err(failed(
                "the copy's session ended before it finished".into(),
                "try again",
            ));
        }
    }
    let data = base64_decode(&r.body).ok_or_else(|| {
        failed(
            format!("the container's output for {} is not base64", copy.remote),
            "check that the container's `base64` is coreutils' or busybox's",
        )
    })?;
    if copy.local == "-" {
        let mut out = std::io::stdout();
        out.write_all(&data)
            .and_then(|_| out.flush())
            .map_err(|e| bad(format!("cannot write stdout: {e}"), ""))?;
    } else {
        std::fs::write(&copy.local, &data).map_err(|e| {
            bad(
                format!("cannot write {}: {e}", copy.local),
                "check the local path",
            )
        })?;
    }
    Ok(data.len())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 in lines of 76 characters, each ending in `\n`.
pub(super) fn base64_lines(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4 / 3 + data.len() / 57 + 4);
    for line in data.chunks(57) {
        for c in line.chunks(3) {
            let v = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                out.push(if k <= c.len() {
                    B64[(v >> (18 - 6 * k) & 63) as usize]
                } else {
                    b'='
                });
            }
        }
        out.push(b'\n');
    }
    out
}

/// Decodes base64 text, skipping `\r`, `\n` and spaces; None on anything else.
pub(super) fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' | b' ' => continue,
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
    use proptest::prelude::*;

    #[test]
    fn sides_are_told_apart() {
        let (c, t) = Copy::parse("a.txt", ":/tmp/").unwrap();
        assert_eq!(
            (c.dir, c.remote.as_str(), t),
            (Dir::Upload, "/tmp/a.txt", None)
        );
        let (c, t) = Copy::parse("0123:/var/log/x.log", "-").unwrap();
        assert_eq!(
            (c.dir, c.local.as_str(), t.as_deref()),
            (Dir::Download, "-", Some("0123"))
        );
        let (c, _) = Copy::parse("_:/x", "./y:z").unwrap();
        assert_eq!(c.local, "./y:z");
        assert!(Copy::parse(":/a", ":/b").is_err());
        assert!(Copy::parse("a", "b").is_err());
        assert!(Copy::parse("-", ":/tmp/").is_err());
    }

    proptest! {
        #[test]
        fn base64_round_trips(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let text = base64_lines(&data);
            prop_assert!(text.split(|b| *b == b'\n').all(|l| l.len() <= 76));
            let crlf: Vec<u8> = text.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
            prop_assert_eq!(base64_decode(&crlf), Some(data));
        }
    }
}
