//! Child processes: spawn, output, status, pipes both ways, kill, wait
//! (cancel-safe), kill_on_drop, reaping of dropped children, 1,000 children
//! without a zombie or an fd left.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use corio::TaskGroup;
use corio::process::{Command, Stdio};
use corio::signal::SignalKind;
use corio::time::{sleep, timeout};

/// Bound for every wait here: a hang fails the test instead.
const GUARD: Duration = Duration::from_secs(20);

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

/// True while `pid` exists (running, or a zombie nobody reaped).
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits (letting the runtime run) until `pid` is gone: reaped.
async fn until_reaped(pid: u32) {
    let deadline = Instant::now() + GUARD;
    while exists(pid) {
        assert!(Instant::now() < deadline, "process {pid} was never reaped");
        sleep(Duration::from_millis(2)).await;
    }
}

both_drivers! {
fn output_collects_stdout_stderr_and_the_exit_code() {
    support::run(async {
        let out = timeout(GUARD, sh("echo out; echo err >&2; exit 3").output())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
        // Large output on both pipes at once: they are drained together.
        let out = sh("head -c 1000000 /dev/zero; head -c 300000 /dev/zero >&2")
            .output()
            .await
            .unwrap();
        assert_eq!((out.stdout.len(), out.stderr.len()), (1_000_000, 300_000));
        assert!(out.status.success());
        // stdin defaults to null for output().
        let out = Command::new("cat").output().await.unwrap();
        assert!(out.stdout.is_empty() && out.status.success());
    });
}
}

both_drivers! {
fn status_env_and_current_dir() {
    support::run(async {
        assert!(Command::new("true").status().await.unwrap().success());
        let st = sh("kill -TERM $$").status().await.unwrap();
        assert_eq!(st.signal(), Some(libc::SIGTERM));
        let out = sh("echo \"$FOO:$BAR\"; pwd")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs([("FOO", "foo")])
            .env("BAR", "x")
            .env_remove("BAR")
            .current_dir("/")
            .output()
            .await
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "foo:\n/\n");
    });
}
}

both_drivers! {
fn a_missing_program_is_not_found_and_leaks_nothing() {
    // Alone in a process: the other tests here open pipes meanwhile.
    if !support::is_child("a_missing_program_is_not_found_and_leaks_nothing") {
        support::run_in_child("a_missing_program_is_not_found_and_leaks_nothing", GUARD);
        return;
    }
    support::run(async {
        // Warm-up (the runtime's own fds).
        corio::nop().await.unwrap();
        let before = support::open_fds();
        for program in ["/nonexistent/corio-test-program", "corio-no-such-program"] {
            let e = Command::new(program).stdout(Stdio::piped()).spawn().unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{program}");
            let e = Command::new(program).output().await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{program}");
        }
        let e = Command::new("/").spawn().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(support::open_fds(), before);
    });
}
}

both_drivers! {
fn pipes_carry_data_both_ways() {
    support::run(async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        // Small round trips.
        for i in 0..20 {
            let line = format!("line {i}\n").into_bytes();
            let len = line.len();
            stdin.write_all(line).await.0.unwrap();
            let (res, buf) = timeout(GUARD, stdout.read_exact(vec![0u8; len])).await.unwrap();
            res.unwrap();
            assert_eq!(buf, format!("line {i}\n").into_bytes());
        }
        // 4 MiB through the pipe (more than it buffers) while reading.
        let data: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
        let expect = data.clone();
        let writer = corio::spawn(async move {
            let (res, _) = stdin.write_all(data).await;
            res.unwrap();
            stdin.shutdown().await.unwrap(); // the child sees end of file
            let (res, _) = stdin.write(b"late".as_slice()).await;
            assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
        });
        let (res, got) = timeout(GUARD, stdout.read_to_end(Vec::new())).await.unwrap();
        assert_eq!(res.unwrap(), expect.len());
        assert!(got == expect, "the data came back changed");
        writer.await.unwrap();
        let (res, _) = stdout.read(vec![0u8; 8]).await;
        assert_eq!(res.unwrap(), 0, "end of file stays");
        assert!(child.wait().await.unwrap().success());
    });
}
}

both_drivers! {
fn writing_to_a_closed_pipe_is_broken_pipe() {
    support::run(async {
        let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
        let stdin = child.stdin.take().unwrap();
        assert!(child.wait().await.unwrap().success());
        let (res, _) = stdin.write_all(vec![1u8; 1 << 20]).await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
    });
}
}

both_drivers! {
fn dropped_reads_keep_their_bytes() {
    support::run(async {
        let mut child = sh("printf abc; sleep 0.1; printf def; sleep 0.1; printf ghi")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + GUARD;
        loop {
            assert!(Instant::now() < deadline);
            // Short timeouts drop reads in flight, some after data arrived.
            match timeout(Duration::from_micros(300), stdout.read(vec![0u8; 2])).await {
                Err(_) => continue,
                Ok((res, buf)) => match res.unwrap() {
                    0 => break,
                    n => got.extend_from_slice(&buf[..n]),
                },
            }
        }
        assert_eq!(got, b"abcdefghi");
        child.wait().await.unwrap();
    });
}
}

both_drivers! {
fn kill_try_wait_and_id() {
    support::run(async {
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        let pid = child.id().unwrap();
        assert!(child.try_wait().unwrap().is_none());
        timeout(GUARD, child.kill()).await.unwrap().unwrap();
        let status = child.try_wait().unwrap().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(child.wait().await.unwrap(), status);
        assert_eq!(child.id(), None);
        assert!(!exists(pid), "reaped");
        let e = child.start_kill().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);

        // A signal of the caller's choice; try_wait reaps an ended child.
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        child.signal(SignalKind::terminate()).unwrap();
        let deadline = Instant::now() + GUARD;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline);
            sleep(Duration::from_millis(1)).await;
        };
        assert_eq!(status.signal(), Some(libc::SIGTERM));
    });
}
}

both_drivers! {
fn wait_is_cancel_safe() {
    support::run(async {
        let mut child = sh("sleep 0.2; exit 7").spawn().unwrap();
        let deadline = Instant::now() + GUARD;
        let status = loop {
            assert!(Instant::now() < deadline);
            // Dropped waits, some maybe after the kernel reaped the child.
            if let Ok(res) = timeout(Duration::from_micros(200), child.wait()).await {
                break res.unwrap();
            }
        };
        assert_eq!(status.code(), Some(7));
        assert_eq!(child.wait().await.unwrap().code(), Some(7));
        assert_eq!(child.try_wait().unwrap().unwrap().code(), Some(7));
    });
}
}

both_drivers! {
fn dropped_children_are_reaped_and_killed_with_kill_on_drop() {
    support::run(async {
        // kill_on_drop: killed and reaped.
        let child = Command::new("sleep").arg("60").kill_on_drop(true).spawn().unwrap();
        let pid = child.id().unwrap();
        drop(child);
        until_reaped(pid).await;
        // Without it: runs on, and is reaped once it ends.
        let child = sh("sleep 0.05").spawn().unwrap();
        let pid = child.id().unwrap();
        drop(child);
        until_reaped(pid).await;
        // Dropped by a task that is aborted while it waits.
        let task = corio::spawn(async {
            let mut child = Command::new("sleep").arg("60").kill_on_drop(true).spawn().unwrap();
            let pid = child.id().unwrap();
            (pid, child.wait().await)
        });
        sleep(Duration::from_millis(20)).await;
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    });
}
}

both_drivers! {
fn a_killed_child_is_reaped_even_when_its_runtime_goes_first() {
    let rt = support::runtime();
    let pid = rt.block_on(async {
        let mut child = Command::new("sleep").arg("60").kill_on_drop(true).spawn().unwrap();
        let pid = child.id().unwrap();
        // A task waits for it when the runtime is dropped: the child is
        // dropped with the task, at the runtime's shutdown.
        drop(corio::spawn(async move { child.wait().await }));
        corio::yield_now().await;
        pid
    });
    drop(rt);
    let deadline = Instant::now() + GUARD;
    while exists(pid) {
        assert!(Instant::now() < deadline, "process {pid} was never reaped");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Dropped outside any runtime.
    let child = support::runtime().block_on(async {
        Command::new("sleep").arg("60").kill_on_drop(true).spawn().unwrap()
    });
    let pid = child.id().unwrap();
    drop(child);
    while exists(pid) {
        assert!(Instant::now() < deadline, "process {pid} was never reaped");
        std::thread::sleep(Duration::from_millis(2));
    }
}
}

/// No zombie child: waitid(P_ALL, WNOHANG | WNOWAIT) finds none that ended.
fn no_zombie() -> bool {
    // SAFETY: siginfo_t is plain data; waitid only writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: as above.
    let res = unsafe { libc::waitid(libc::P_ALL, 0, &mut info, flags) };
    // ECHILD: no child at all; else no child has ended.
    // SAFETY: waitid filled (or left zeroed) the child fields.
    res < 0 || unsafe { info.si_pid() } == 0
}

both_drivers! {
fn a_thousand_children_leave_no_zombie_and_no_fd() {
    if !support::is_child("a_thousand_children_leave_no_zombie_and_no_fd") {
        support::run_in_child("a_thousand_children_leave_no_zombie_and_no_fd", Duration::from_secs(120));
        return;
    }
    support::run(async {
        corio::nop().await.unwrap();
        let before = support::open_fds();
        let started = Instant::now();
        for batch in 0..20 {
            let mut group = TaskGroup::new();
            for i in 0..50 {
                group.spawn(async move {
                    let mut cmd = Command::new("true");
                    if i % 3 == 0 {
                        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
                    }
                    let mut child = cmd.kill_on_drop(i % 2 == 0).spawn().unwrap();
                    match i % 10 {
                        // Dropped at once: reaped in the background.
                        0 => drop(child),
                        // Waits dropped halfway.
                        1 => {
                            let _ = timeout(Duration::from_micros(100), child.wait()).await;
                        }
                        2 => {
                            let out = child.wait_with_output().await.unwrap();
                            assert!(out.status.success() && out.stdout.is_empty());
                        }
                        _ => assert!(child.wait().await.unwrap().success()),
                    }
                });
            }
            timeout(GUARD, group.join_all()).await.unwrap_or_else(|_| panic!("batch {batch}"));
        }
        let deadline = Instant::now() + GUARD;
        while !no_zombie() || support::open_fds() != before {
            assert!(
                Instant::now() < deadline,
                "zombie: {}, fds: {} (before {before})",
                !no_zombie(),
                support::open_fds()
            );
            sleep(Duration::from_millis(5)).await;
        }
        eprintln!("1,000 children in {:?}", started.elapsed());
    });
}
}
