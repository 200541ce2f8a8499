//! Runs the `unix_echo` example as a process: it echoes over its socket
//! file, refuses to start over a live server or a file that is not a
//! socket, and replaces a stale socket file (left by a killed server),
//! saying so.
//!
//! Plain `cargo test` builds the examples; `cargo test --test examples_unix`
//! alone does not (run `cargo build --examples` first). Each test runs with
//! the example on each driver (`CORIO_DRIVER`).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use corio::DriverKind;

const TIMEOUT: Duration = Duration::from_secs(10);

/// `target/<profile>/examples/unix_echo`, next to this test's `deps/`.
fn example_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join("examples").join("unix_echo");
    assert!(
        path.is_file(),
        "{} not found: run `cargo build --examples` (plain `cargo test` does)",
        path.display()
    );
    path
}

/// A name no other test or variant of this process uses (both variants run
/// on the poll driver where io_uring is missing).
fn unique(tag: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{tag}-{n}", std::process::id())
}

/// A directory of its own for one test variant, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("corio-unix-example-{}", unique(tag)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The example process; killed when dropped, also when a test panics.
struct Server {
    child: Child,
    /// What it printed up to its `listening on` line.
    said: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(path: &Path) -> Command {
    let driver = match support::driver() {
        DriverKind::Uring => "uring",
        DriverKind::Poll => "poll",
        _ => "auto",
    };
    let mut cmd = Command::new(example_path());
    cmd.arg("--path")
        .arg(path)
        .env("CORIO_DRIVER", driver)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts the example on `path` and waits for its `listening on` line.
fn start(path: &Path) -> Server {
    let mut child = command(path).spawn().expect("spawn unix_echo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let done = line.starts_with("listening on ");
            lines.push(line);
            if done {
                break;
            }
        }
        let _ = tx.send(lines);
    });
    let mut server = Server {
        child,
        said: Vec::new(),
    };
    server.said = rx.recv_timeout(TIMEOUT).expect("unix_echo printed nothing");
    let want = format!("listening on {}", path.display());
    assert_eq!(server.said.last(), Some(&want), "{:?}", server.said);
    // The example runs on the driver asked for.
    let uring = std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .unwrap()
        .flatten()
        .any(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:[io_uring]")
        });
    match support::driver() {
        DriverKind::Uring => assert!(uring, "no io_uring fd in the example"),
        _ => assert!(
            !uring,
            "the example uses io_uring despite CORIO_DRIVER=poll"
        ),
    }
    server
}

/// Runs the example on `path` expecting it to fail; returns its stderr.
fn start_failing(path: &Path) -> String {
    let mut child = command(path).spawn().expect("spawn unix_echo");
    let (tx, rx) = mpsc::channel();
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let err = rx.recv_timeout(TIMEOUT);
    let _ = child.kill();
    let status = child.wait().unwrap();
    let err = err.expect("unix_echo did not exit");
    assert!(!status.success(), "unix_echo started: {err}");
    err
}

/// One round trip through the server at `path`.
fn echo_once(path: &Path, msg: &[u8]) {
    let mut c = UnixStream::connect(path).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    c.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
}

both_drivers! {
fn unix_echo_echoes_and_keeps_a_live_server() {
    let dir = TempDir::new("live");
    let path = dir.0.join("echo.sock");
    let _server = start(&path);
    for i in 0..5 {
        echo_once(&path, format!("hello {i}\n").repeat(100 * i + 1).as_bytes());
    }
    // A second server on the same path does not steal it.
    let err = start_failing(&path);
    assert!(err.contains("another server is listening"), "{err}");
    echo_once(&path, b"still here");
}
}

both_drivers! {
fn unix_echo_replaces_only_a_stale_socket_file() {
    let dir = TempDir::new("stale");
    let path = dir.0.join("echo.sock");
    // Killed, the first server leaves its file behind. Its listening
    // socket may outlive the process for a moment (an accept in flight on
    // its ring holds it until the kernel tears the ring down): wait until
    // connecting is refused, as it is for a stale file.
    drop(start(&path));
    assert!(path.exists());
    let deadline = std::time::Instant::now() + TIMEOUT;
    while UnixStream::connect(&path).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the killed server still accepts");
        std::thread::sleep(Duration::from_millis(5));
    }
    let server = start(&path);
    let notice = format!("removed stale socket file {}", path.display());
    assert!(server.said[0].starts_with(&notice), "{:?}", server.said);
    echo_once(&path, b"after the stale file");
    drop(server);
    // A file that is not a socket is left alone.
    let file = dir.0.join("plain");
    std::fs::write(&file, b"keep me").unwrap();
    let err = start_failing(&file);
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}
}
