//! Helpers shared by the integration tests: running each test on both
//! drivers, fd counting and child processes.
//!
//! Each test file that needs them declares `mod support;`. Not every file
//! uses every helper, hence the `dead_code` allowance.
//!
//! Every I/O test is written once inside [`both_drivers!`], which expands it
//! into `name::uring` and `name::poll`; the body builds its runtime with
//! [`run`], [`runtime`] or [`builder`], which use the variant's driver.
#![allow(dead_code)]

use std::cell::Cell;
use std::future::Future;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use corio::{Builder, DriverKind, Runtime};

thread_local! {
    static DRIVER: Cell<DriverKind> = const { Cell::new(DriverKind::Auto) };
}

/// Expands each test into a `uring` and a `poll` variant (in a module named
/// after the test). Attributes such as `#[should_panic]` apply to both.
#[macro_export]
macro_rules! both_drivers {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body() $body

            $(#[$meta])*
            #[test]
            fn uring() {
                $crate::support::with_driver(corio::DriverKind::Uring, body)
            }

            $(#[$meta])*
            #[test]
            fn poll() {
                $crate::support::with_driver(corio::DriverKind::Poll, body)
            }
        }
    };
}

/// Runs `test` with `kind` as the driver of [`builder`]. Where io_uring is
/// unavailable the io_uring variant says so and runs on the fallback driver
/// (so `#[should_panic]` tests keep their meaning).
pub fn with_driver(kind: DriverKind, test: fn()) {
    let mut kind = kind;
    if kind == DriverKind::Uring && !uring_available() {
        eprintln!("io_uring is not available here: running the uring variant on the poll driver");
        kind = DriverKind::Poll;
    }
    DRIVER.with(|d| d.set(kind));
    test();
}

/// The driver the current test variant runs on (`Auto` outside the macro).
pub fn driver() -> DriverKind {
    DRIVER.with(|d| d.get())
}

/// A runtime builder for the current variant's driver.
pub fn builder() -> Builder {
    Builder::new().driver(driver())
}

/// A runtime on the current variant's driver.
pub fn runtime() -> Runtime {
    builder().build().expect("build a runtime")
}

/// Runs `f` on a fresh runtime with the current variant's driver.
pub fn run<F: Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

/// A runtime on io_uring for tests of completion-driver behaviour (results
/// kept for dropped futures); `None`, with a message, where io_uring is
/// unavailable.
pub fn uring_runtime() -> Option<Runtime> {
    match Builder::new().driver(DriverKind::Uring).build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("skipped: io_uring is not available here ({e})");
            None
        }
    }
}

/// The full name of the running test (`name::uring` inside
/// [`both_drivers!`]), as the harness names its thread, if it extends `test`.
fn full_name(test: &str) -> String {
    match std::thread::current().name() {
        Some(n) if n.starts_with(test) => n.to_string(),
        _ => test.to_string(),
    }
}

/// Whether an io_uring runtime can be built here; asked once per process.
/// False when `CORIO_DRIVER=poll` turns every runtime into a poll one.
///
/// The answer is cached because asking builds (and drops) a ring: done
/// from a test's variant while another test counts fds, that ring's fd
/// would show up in, or vanish from, the other test's count.
pub fn uring_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Builder::new()
            .driver(DriverKind::Uring)
            .build()
            .is_ok_and(|rt| rt.driver_kind() == DriverKind::Uring)
    })
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A temp-dir path no other test (nor the other driver's variant of this
/// one: with `--cfg corio_no_uring` both run on the poll driver at once)
/// uses: `<tmp>/<prefix>-<pid>-<n>`.
pub fn unique_temp_path(prefix: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()))
}

/// Serialises the tests of one binary that count the whole process's fds
/// (the `uring` and `poll` variants of a test otherwise run at once).
///
/// The io_uring check of [`with_driver`] is done before the lock is taken,
/// so no test makes a probe ring while a serial test counts fds.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    uring_available();
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

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
    // The child may run on a thread not named after the test, so accept
    // any variant of `test`.
    std::env::var(CHILD_ENV).is_ok_and(|v| v == test || v.starts_with(&format!("{test}::")))
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
    run_in_child_with_env(test, timeout, &[])
}

/// [`run_in_child`] with the environment variables `env` set in the child
/// (for a test of a variable the library reads: the environment is the
/// whole process's).
pub fn run_in_child_with_env(test: &str, timeout: Duration, env: &[(&str, &str)]) -> Output {
    let test = &full_name(test);
    let exe = std::env::current_exe().expect("current test binary");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .envs(env.iter().copied())
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

/// Sets its flag when dropped: shows that the future (or value) holding it
/// is gone.
pub struct DropFlag(std::rc::Rc<Cell<bool>>);

impl DropFlag {
    /// A flag guard and the flag it sets.
    pub fn new() -> (DropFlag, std::rc::Rc<Cell<bool>>) {
        let flag = std::rc::Rc::new(Cell::new(false));
        (DropFlag(flag.clone()), flag)
    }
}

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Ends the whole test process (exit code 3) with `what` on stderr unless
/// dropped within `limit` (times [`slowdown`]): a hang (a lost completion,
/// say) then fails with the seed or schedule that caused it instead of
/// waiting for ever.
pub struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

/// Starts a [`Watchdog`].
pub fn watchdog(limit: Duration, what: impl Into<String>) -> Watchdog {
    let what = what.into();
    watchdog_with(limit, move || what.clone())
}

/// A [`Watchdog`] whose message is made when it fires (to include the
/// state the hung code reached).
pub fn watchdog_with(limit: Duration, what: impl Fn() -> String + Send + 'static) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let limit = limit * slowdown();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            // Straight to fd 2: `eprintln!` in a test thread is captured by
            // the harness and lost with the exit below.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "watchdog: {} still running after {limit:?}: hung",
                what()
            );
            // `CORIO_WATCHDOG_GDB=1`: every thread's stack first (gdb must
            // be installed), to see where the hung code waits.
            if std::env::var_os("CORIO_WATCHDOG_GDB").is_some() {
                // The kernel's view of every ring first (heads, tails,
                // pending work), before a tracer disturbs the waits.
                for entry in std::fs::read_dir("/proc/self/fd")
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let link = std::fs::read_link(entry.path()).unwrap_or_default();
                    if link.to_string_lossy().contains("io_uring") {
                        let name = entry.file_name();
                        let info = std::fs::read_to_string(
                            std::path::Path::new("/proc/self/fdinfo").join(&name),
                        )
                        .unwrap_or_default();
                        let _ = writeln!(std::io::stderr(), "fdinfo {name:?}:\n{info}");
                    }
                }
                let pid = std::process::id().to_string();
                let _ = std::process::Command::new("gdb")
                    .args(["-p", &std::process::id().to_string(), "-batch"])
                    .args(["-ex", "thread apply all bt 8"])
                    .args(["-ex", "thread 2"])
                    .args(["-ex", "frame function corio::runtime::executor::park"])
                    .args(["-ex", "print *core"])
                    .stdout(std::process::Stdio::inherit())
                    .status();
                let _ = std::process::Command::new("timeout")
                    .args(["2", "strace", "-f", "-tt", "-p", &pid])
                    .status();
            }
            std::process::exit(3);
        }
    });
    Watchdog(Some(tx))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Dropping the sender ends the watchdog's wait.
        self.0.take();
    }
}

/// This process's resident set size in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> u64 {
    proc_status("VmRSS:")
}

/// This process's thread count (`Threads` of /proc/self/status).
pub fn threads() -> u64 {
    proc_status("Threads:")
}

fn proc_status(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
}

/// CPU time (user + system) this process has used so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage writes one rusage into the zeroed struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// How many times longer a hang guard waits: 30 under valgrind (which runs
/// code 20-50 times slower; it preloads its `vgpreload_*` libraries), 1
/// otherwise. Only for guards against hangs, never for a bound a test checks.
pub fn slowdown() -> u32 {
    let under_valgrind =
        std::env::var_os("LD_PRELOAD").is_some_and(|p| p.to_string_lossy().contains("vgpreload"));
    if under_valgrind { 30 } else { 1 }
}
