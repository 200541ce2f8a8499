//! Helpers shared by the integration tests: fd counting and child processes.
//!
//! Each test file that needs them declares `mod support;`. Not every file
//! uses every helper, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Environment variable that tells a re-executed test binary which test runs
/// as the child (its value is the test's name).
pub const CHILD_ENV: &str = "CORIO_TEST_CHILD";

/// Number of fds this process has open, from `/proc/self/fd`.
///
/// The count includes the directory fd used to list it, so compare two
/// counts with each other rather than with a constant.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// True in the child process started by [`run_in_child`] for `test`.
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == test)
}

/// Runs the single test `test` (its full name as the harness prints it, e.g.
/// `emfile_on_accept` or `module::name`) in a fresh copy of the current test
/// binary, with [`CHILD_ENV`] set to `test`, and waits for it.
///
/// The child is killed and this call panics if it runs longer than
/// `timeout`. It also panics, printing the child's output, if the child does
/// not exit successfully or if the harness did not run exactly that test (a
/// misspelt name would otherwise pass by running nothing).
///
/// Use it for tests that change process-wide state (signal dispositions,
/// resource limits):
///
/// ```ignore
/// #[test]
/// fn my_test() {
///     if !support::is_child("my_test") {
///         support::run_in_child("my_test", Duration::from_secs(20));
///         return;
///     }
///     // ... runs only in the child ...
/// }
/// ```
pub fn run_in_child(test: &str, timeout: Duration) -> Output {
    let exe = std::env::current_exe().expect("current test binary");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child test process");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "child test `{test}` still running after {timeout:?}; killed\n\
                 --- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr),
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        status.success() && stdout.contains("1 passed"),
        "child test `{test}` failed ({status})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stderr),
    );
    output
}
