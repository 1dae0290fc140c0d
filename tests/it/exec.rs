//! `cortado exec` against the sandbox: the real binary, a real WebSocket to the sandbox's data
//! channel, the sandbox's built-in agent on the other end, and no session-manager-plugin on
//! the machine. Covers output, input, the terminal size, exit codes, lost, reordered and
//! dropped messages, port forwarding, file copies, and each refusal (with no session started).

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use crate::common::{FaultsPatch, Prepare, Run, Scenario, fixture, sandbox};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const TASK_ROLE: &str = "arn:aws:iam::123456789012:role/shell-task";

/// A sandbox with the `exec` fixture deployed: one running task with ECS Exec on (unless
/// `env` says EXEC=false).
async fn deployed(env: &[(&str, &str)]) -> Scenario {
    let sb = sandbox::start(sandbox::Options {
        speed: 200.0,
        rng_seed: 11,
        ..sandbox::Options::default()
    })
    .await
    .unwrap();
    Prepare {
        cluster: "scenarios".into(),
        images: vec![format!("{}:v1", common::REPO)],
        roles: vec![TASK_ROLE.into(), common::EXECUTION_ROLE.into()],
        ..Default::default()
    }
    .apply(&sb)
    .unwrap();
    let ecs = common::ecs_client(&sb.endpoint());
    let s = Scenario {
        sb,
        config: fixture("exec").join("cortado.yml"),
        ecs,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    s.deploy("v1", &[]).await.expect_code(0);
    s
}

/// `cortado exec ARGS` with `stdin` as its standard input.
async fn exec(s: &Scenario, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let mut cmd = s.command("v1", &all);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    drop(input);
    let t0 = std::time::Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("exec ends within 60 s")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t0.elapsed(),
    }
}

fn sessions_started(s: &Scenario) -> Vec<String> {
    s.sb.control()
        .requests()
        .into_iter()
        .filter(|r| r.operation == "ExecuteCommand" || r.operation == "StartSession")
        .map(|r| r.operation)
        .collect()
}

#[tokio::test]
async fn a_command_runs_with_its_output_and_exit_code() {
    let s = deployed(&[]).await;
    let r = exec(&s, &["--command", "echo hi; echo \"$GREETING\""], b"").await;
    r.expect_code(0);
    assert_eq!(r.stdout, "hi\r\nhello from the sandbox\r\n", "{}", r.dump());
    let r = exec(&s, &["run", "--command", "sh -c 'exit 42'"], b"").await;
    r.expect_code(42);
    let r = exec(&s, &["run", "--command", "no-such-program"], b"").await;
    r.expect_code(127);
    assert!(
        r.stdout.contains("no-such-program: not found"),
        "{}",
        r.dump()
    );
    // --raw: as given, no wrapper; the session's end is exit 0.
    let r = exec(&s, &["--raw", "--command", "sh -c 'exit 5'"], b"").await;
    r.expect_code(0);
}

#[tokio::test]
async fn the_shell_takes_stdin_and_passes_the_exit_status_on() {
    let s = deployed(&[]).await;
    // The default command is an interactive shell; stdin is typed into the pty.
    let r = exec(&s, &[], b"echo typed\nexit 3\n").await;
    r.expect_code(3);
    assert!(r.stdout.contains("typed\r\n"), "{}", r.dump());
    // End of stdin is ^D: the shell ends with its last status.
    let r = exec(&s, &[], b"false\n").await;
    r.expect_code(1);
    // Without a terminal, cortado sends the plugin's default size (300x100).
    let r = exec(&s, &["--command", "stty size"], b"").await;
    r.expect_code(0);
    assert_eq!(r.stdout, "100 300\r\n", "{}", r.dump());
}

/// The sandbox loses, reorders and cuts the data channel; the output arrives whole, in
/// order, after a ResumeSession and a reconnection.
#[tokio::test]
async fn lost_reordered_and_dropped_messages_are_recovered() {
    let s = deployed(&[]).await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let dir = std::env::temp_dir().join(format!("cortado-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let up = dir.join("up.bin");
    std::fs::write(&up, &data).unwrap();
    let r = exec(&s, &["cp", up.to_str().unwrap(), ":/tmp/data.bin"], b"").await;
    r.expect_code(0);
    s.sb.control().update_faults(FaultsPatch {
        exec: Some(sandbox::ExecFaults {
            lose: vec![3, 4, 40, 41, 42, 200],
            reorder: vec![10, 77],
            lose_input: vec![0],
            drop_after: Some(120),
            agent: None,
        }),
        ..Default::default()
    });
    let down = dir.join("down.bin");
    let r = exec(&s, &["cp", ":/tmp/data.bin", down.to_str().unwrap()], b"").await;
    r.expect_code(0);
    assert!(
        std::fs::read(&down).unwrap() == data,
        "the file came back whole"
    );
    let ops: Vec<String> =
        s.sb.control()
            .requests()
            .into_iter()
            .map(|r| r.operation)
            .collect();
    assert!(ops.contains(&"ResumeSession".to_string()), "{ops:?}");
    // A command's output and exit status survive the same faults.
    let r = exec(
        &s,
        &["--command", "sh -c 'echo one; echo two; exit 9'"],
        b"",
    )
    .await;
    r.expect_code(9);
    assert_eq!(r.stdout, "one\r\ntwo\r\n", "{}", r.dump());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn files_are_copied_both_ways() {
    let s = deployed(&[]).await;
    let r = exec(&s, &["cp", "-", ":/tmp/"], b"x").await;
    r.expect_code(1);
    assert!(r.stderr.contains("needs a file name"), "{}", r.dump());
    let r = exec(&s, &["cp", "-", ":/tmp/note.txt"], b"line one\nline two\n").await;
    r.expect_code(0);
    assert!(
        r.stderr.contains("copied - to app:/tmp/note.txt: 18 bytes"),
        "{}",
        r.dump()
    );
    let r = exec(&s, &["--command", "cat /tmp/note.txt"], b"").await;
    assert_eq!(r.stdout, "line one\r\nline two\r\n");
    let r = exec(&s, &["cp", ":/tmp/note.txt", "-"], b"").await;
    r.expect_code(0);
    assert_eq!(
        r.stdout, "line one\nline two\n",
        "bytes as they are, not through the pty"
    );
    let r = exec(&s, &["cp", ":/etc/nope", "-"], b"").await;
    r.expect_code(7);
    assert!(
        r.stderr.contains("/etc/nope: No such file or directory"),
        "{}",
        r.dump()
    );
    let r = exec(&s, &["cp", "-", ":/etc/hostname"], b"x").await;
    assert!(r.stderr.contains("Read-only file system"), "{}", r.dump());
}

#[tokio::test]
async fn a_port_is_forwarded_to_a_listener_of_the_task() {
    let s = deployed(&[]).await;
    // The "task's" server: a listener on loopback answering in upper case.
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = server.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = c.read(&mut buf).await {
                    if n == 0 || c.write_all(&buf[..n].to_ascii_uppercase()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let port_s = port.to_string();
    let mut cmd = s.command(
        "v1",
        &[
            "exec",
            "portforward",
            "--port",
            &port_s,
            "--local-port",
            "0",
        ],
    );
    let mut child = cmd.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    let local: u16 = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), err.next_line())
            .await
            .expect("the forwarding starts")
            .unwrap()
            .expect("a line on stderr");
        if let Some(rest) = line.split("forwarding 127.0.0.1:").nth(1) {
            break rest.split(' ').next().unwrap().parse().unwrap();
        }
    };
    // Two connections, one after the other (the second after DisconnectToPort).
    for word in ["first", "second"] {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", local))
            .await
            .unwrap();
        c.write_all(word.as_bytes()).await.unwrap();
        let mut got = vec![0u8; word.len()];
        tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut got))
            .await
            .expect("an answer through the tunnel")
            .unwrap();
        assert_eq!(got, word.to_uppercase().as_bytes());
    }
    // Ctrl-C ends the session: exit 0, TerminateSession sent.
    unsafe { libc::kill(child.id().unwrap() as i32, libc::SIGINT) };
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let ops: Vec<String> =
        s.sb.control()
            .requests()
            .into_iter()
            .map(|r| r.operation)
            .collect();
    assert!(ops.contains(&"StartSession".to_string()));
    assert!(ops.contains(&"TerminateSession".to_string()), "{ops:?}");
}

/// Each refusal comes before any session, says why and what to do; exit 1.
#[tokio::test]
async fn refusals_come_before_any_session() {
    // ECS Exec off on the service: the task was started without it.
    let s = deployed(&[("EXEC", "false")]).await;
    let r = exec(&s, &["--command", "true"], b"").await;
    r.expect_code(1);
    assert!(
        r.stderr.contains("without enableExecuteCommand"),
        "{}",
        r.dump()
    );
    assert!(
        r.stderr.contains("\"enableExecuteCommand\": true"),
        "{}",
        r.dump()
    );
    assert!(sessions_started(&s).is_empty());

    let s = deployed(&[]).await;
    // A container the task does not have.
    let r = exec(&s, &["--container", "nope", "--command", "true"], b"").await;
    r.expect_code(1);
    assert!(
        r.stderr
            .contains("no container \"nope\"; its containers: app"),
        "{}",
        r.dump()
    );
    // The ExecuteCommandAgent is not running.
    s.sb.control().update_faults(FaultsPatch {
        exec: Some(sandbox::ExecFaults {
            agent: Some("STOPPED".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    let r = exec(&s, &["--command", "true"], b"").await;
    r.expect_code(1);
    assert!(
        r.stderr.contains("ExecuteCommandAgent of container app"),
        "{}",
        r.dump()
    );
    assert!(r.stderr.contains("is STOPPED, not RUNNING"), "{}", r.dump());
    assert!(sessions_started(&s).is_empty());
}

/// A task role without the ssmmessages permissions (a role created without policies), and a
/// cluster asking for KMS-encrypted sessions.
#[tokio::test]
async fn task_role_and_kms_refusals() {
    let s = deployed(&[("TASK_ROLE", "bare")]).await;
    let iam = aws_sdk_iam::Client::new(&s.sdk());
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    // `deploy` prepared nothing for TASK_ROLE=bare; the role exists with no policy.
    let _ = iam
        .create_role()
        .role_name("bare")
        .assume_role_policy_document(trust)
        .send()
        .await;
    let r = exec(&s, &["--command", "true"], b"").await;
    r.expect_code(1);
    assert!(r.stderr.contains("may not use ECS Exec"), "{}", r.dump());
    assert!(
        r.stderr
            .contains("ssmmessages:CreateControlChannel (implicitDeny)"),
        "{}",
        r.dump()
    );
    assert!(sessions_started(&s).is_empty());

    let s = deployed(&[]).await;
    s.ecs
        .create_cluster()
        .cluster_name("scenarios")
        .configuration(
            aws_sdk_ecs::types::ClusterConfiguration::builder()
                .execute_command_configuration(
                    aws_sdk_ecs::types::ExecuteCommandConfiguration::builder()
                        .kms_key_id("alias/exec")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let r = exec(&s, &["--command", "true"], b"").await;
    r.expect_code(1);
    assert!(
        r.stderr.contains("does not support KMS-encrypted sessions"),
        "{}",
        r.dump()
    );
    assert!(sessions_started(&s).is_empty());
}

/// Several running tasks without --id and no terminal: an error listing them.
#[tokio::test]
async fn several_tasks_need_an_id_without_a_terminal() {
    let s = deployed(&[]).await;
    s.cortado("v1", &["scale", "--tasks", "2"])
        .await
        .expect_code(0);
    let r = exec(&s, &["--command", "true"], b"").await;
    r.expect_code(1);
    assert!(r.stderr.contains("2 tasks are running"), "{}", r.dump());
    assert!(r.stderr.contains("--id"), "{}", r.dump());
}

/// On a terminal: raw mode (the container's pty echoes, not the local one), the terminal's
/// size at the start, and a resize (SIGWINCH) reaching the container while the shell runs.
// Multi-threaded: the waits below block their thread, and the sandbox runs in this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_is_raw_and_its_resizes_reach_the_container() {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    let s = deployed(&[]).await;
    let (mut master, mut slave) = (0, 0);
    let mut ws = libc::winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills two fds and reads the size given.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    assert_eq!(rc, 0);
    let mut cmd = s.command("v1", &["exec"]);
    // SAFETY: each Stdio owns a fresh dup of the slave; pre_exec only makes it the
    // controlling terminal of a new session.
    unsafe {
        cmd.stdin(Stdio::from_raw_fd(libc::dup(slave)))
            .stdout(Stdio::from_raw_fd(libc::dup(slave)))
            .stderr(Stdio::from_raw_fd(libc::dup(slave)))
            .pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
    }
    let mut child = cmd.spawn().unwrap();
    // SAFETY: the parent's copy of the slave is closed; the master is owned by `term`.
    unsafe { libc::close(slave) };
    let mut term = unsafe { std::fs::File::from_raw_fd(master) };
    let mut reader = term.try_clone().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen2
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut wait_for = |what: &str| {
        let t0 = std::time::Instant::now();
        while !seen.lock().unwrap().contains(what) {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "no {what:?} in {:?} (cortado: {:?})",
                seen.lock().unwrap(),
                child.try_wait()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("# ");
    term.write_all(b"stty size\r").unwrap();
    wait_for("30 100");
    let first = seen.lock().unwrap().clone();
    assert_eq!(
        first.matches("stty size").count(),
        1,
        "echoed by the container only: {first:?}"
    );
    ws.ws_row = 40;
    ws.ws_col = 120;
    // SAFETY: sets the size of the pty we own; the kernel signals its foreground group.
    unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) };
    std::thread::sleep(Duration::from_millis(300));
    term.write_all(b"stty size\r").unwrap();
    wait_for("40 120");
    term.write_all(b"exit 4\r").unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(4), "{:?}", seen.lock().unwrap());
}
