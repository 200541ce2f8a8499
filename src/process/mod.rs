//! Child processes (asyncio's `create_subprocess_exec`, tokio's `process`):
//! [`Command`] to start one, [`Child`] to wait for it, its pipes as corio
//! streams with the owned-buffer API.
//!
//! How it works: std's `Command` forks and execs (so its error for a missing
//! program, `NotFound`, comes from `spawn`), then corio opens a pidfd for the
//! child at once (pidfd_open(2); the child cannot be reaped by anyone else
//! before, since nothing waits for it yet). Waiting is an op on that pidfd
//! (`op/process.rs`): `IORING_OP_WAITID` where the ring has it, else the
//! pidfd's readiness and waitid(2) with `WNOHANG`; no `SIGCHLD` handler is
//! installed. The parent's ends of the pipes are `SharedFd`s read and
//! written with pipe ops (`op/pipe.rs`). A `Child` dropped before it was
//! reaped is killed first with [`Command::kill_on_drop`], then reaped in
//! the background by a task of the runtime (waiting on its pidfd; such a
//! task does not hold a graceful shutdown up), so no zombie is left behind.
//! A killed child whose runtime is gone (dropped outside one, or at the
//! runtime's shutdown) is reaped by a short-lived thread; one still running
//! then is left to run, as std leaves it.
//!
//! What breaks this: a `SIGCHLD` disposition of `SIG_IGN` (the kernel then
//! reaps children itself and `wait` fails with `ECHILD`), or other code
//! reaping every child (`waitpid(-1)`).

mod pipe;

use std::ffi::OsStr;
use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};

use crate::fd::SharedFd;
use crate::op::Op;
use crate::op::process::{Reaped, WaitPid, try_reap};
use crate::signal::SignalKind;

/// A process to start, in the shape of std's and tokio's `Command`.
///
/// ```
/// use corio::process::{Command, Stdio};
///
/// corio::run(async {
///     let mut child = Command::new("ls").arg("-l").stdout(Stdio::piped()).spawn()?;
///     let stdout = child.stdout.take().unwrap();
///     let (res, listing) = stdout.read_to_end(Vec::new()).await;
///     res?;
///     let status = child.wait().await?;
///     println!("{} bytes, {status}", listing.len());
///
///     // All at once: run to the end, collect stdout and stderr.
///     let out = Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]).output().await?;
///     assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
///     assert_eq!(out.status.code(), Some(3));
///
///     // A missing program fails at spawn.
///     let err = Command::new("no-such-program-here").spawn().unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
    /// `stdin` was set: `output` keeps it (else it uses `Stdio::null`).
    stdin_set: bool,
}

impl Command {
    /// A command running `program` (looked up in `PATH` when it has no
    /// slash), inheriting this process's environment, directory and stdio.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        std::process::Command::new(program).into()
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// The child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// The child's stdin: `Stdio::piped()` gives [`Child::stdin`],
    /// `Stdio::null()`, `Stdio::inherit()` (the default for `spawn`), or a
    /// file.
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// The child's stdout: `Stdio::piped()` gives [`Child::stdout`].
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdout(cfg);
        self
    }

    /// The child's stderr: `Stdio::piped()` gives [`Child::stderr`].
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stderr(cfg);
        self
    }

    /// With `true`, a [`Child`] dropped before it was reaped is killed
    /// (`SIGKILL`) and then reaped in the background. Default `false`: the
    /// child runs on, and is reaped in the background once it ends.
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Command {
        self.kill_on_drop = kill;
        self
    }

    /// The std command inside, for what this type does not wrap
    /// (`std::os::unix::process::CommandExt`: `uid`, `process_group`, ...).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// The std command inside.
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// Starts the child. A program that does not exist gives
    /// `ErrorKind::NotFound`, one that cannot run `PermissionDenied`.
    ///
    /// The returned child must be used on this thread's runtime (its pipes
    /// and its wait are ops there).
    pub fn spawn(&mut self) -> io::Result<Child> {
        let mut child = self.std.spawn()?;
        let pid = child.id();
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                // Without a pidfd we cannot wait without blocking: stop it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Child {
            stdin: child.stdin.take().map(|s| ChildStdin::new(s.into())),
            stdout: child.stdout.take().map(|s| ChildStdout::new(s.into())),
            stderr: child.stderr.take().map(|s| ChildStderr::new(s.into())),
            pid,
            pidfd: SharedFd::new(pidfd),
            reaped: Rc::default(),
            kill_on_drop: self.kill_on_drop,
        })
    }

    /// Runs the child to its end and collects its stdout and stderr (always
    /// piped here); stdin is `Stdio::null()` unless set.
    pub async fn output(&mut self) -> io::Result<Output> {
        self.std.stdout(Stdio::piped()).stderr(Stdio::piped());
        if !self.stdin_set {
            self.std.stdin(Stdio::null());
        }
        self.spawn()?.wait_with_output().await
    }

    /// Runs the child to its end (stdio inherited unless set; pipes asked
    /// for are closed at once) and returns its exit status.
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        drop((child.stdin.take(), child.stdout.take(), child.stderr.take()));
        child.wait().await
    }
}

impl From<std::process::Command> for Command {
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            kill_on_drop: false,
            stdin_set: false,
        }
    }
}

/// A running (or ended) child process; see [`Command::spawn`].
///
/// Its pipes are public fields, to `take()` into other tasks.
///
/// ```
/// use corio::process::{Command, Stdio};
///
/// corio::run(async {
///     let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
///     let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
///     // Write in one task while reading in this one: a pipe's buffer is small.
///     let writer = corio::spawn(async move {
///         let mut stdin = stdin;
///         stdin.write_all(vec![b'x'; 1 << 20]).await.0?;
///         stdin.shutdown().await // cat sees the end of its input
///     });
///     let (res, echoed) = stdout.read_to_end(Vec::new()).await;
///     res?;
///     writer.await??;
///     assert_eq!(echoed.len(), 1 << 20);
///     assert!(child.wait().await?.success());
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct Child {
    /// The child's stdin, if it was `Stdio::piped()`.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if it was `Stdio::piped()`.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if it was `Stdio::piped()`.
    pub stderr: Option<ChildStderr>,
    pid: u32,
    pidfd: SharedFd,
    reaped: Reaped,
    kill_on_drop: bool,
}

impl Child {
    /// The child's process id; `None` once it has been reaped (the number
    /// may then belong to another process).
    pub fn id(&self) -> Option<u32> {
        self.reaped.get().is_none().then_some(self.pid)
    }

    /// Waits for the child to end and reaps it. Closes the child's stdin
    /// first (if piped and still here), so a child reading it to its end
    /// can finish. Returns at once once the child has been reaped.
    ///
    /// Cancel-safe: if the future is dropped after the kernel reaped the
    /// child, the next call returns the status.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        loop {
            if let Some(status) = self.reaped.get() {
                return Ok(status);
            }
            let op = Op::new(WaitPid::new(self.pidfd.clone(), self.reaped.clone()));
            match op.await {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => {}
                Err(e) => return self.reaped_or(e),
            }
        }
    }

    /// The status if the child has ended (reaping it), `None` if it runs.
    /// Does not wait.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.reaped.get() {
            return Ok(Some(status));
        }
        // SAFETY: siginfo_t is plain data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        match try_reap(self.pidfd.raw(), &mut info) {
            Ok(status) => {
                self.reaped.set(status);
                Ok(status)
            }
            Err(e) => self.reaped_or(e).map(Some),
        }
    }

    /// The pidfd, for the op's unit tests.
    #[cfg(test)]
    pub(crate) fn pidfd_for_test(&self) -> SharedFd {
        self.pidfd.clone()
    }

    /// A wait that failed because an abandoned one reaped the child (say
    /// `ECHILD`) still has the status.
    fn reaped_or(&self, e: io::Error) -> io::Result<ExitStatus> {
        self.reaped.get().ok_or(e)
    }

    /// Sends `signal` to the child (pidfd_send_signal(2), which cannot hit
    /// another process that reused the pid). Fails with `InvalidInput` once
    /// the child has been reaped.
    pub fn signal(&self, signal: SignalKind) -> io::Result<()> {
        if self.reaped.get().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "corio: the child has already been reaped",
            ));
        }
        pidfd_send_signal(self.pidfd.raw(), signal.as_raw())
    }

    /// Sends `SIGKILL` and returns without waiting (see [`kill`](Self::kill)).
    pub fn start_kill(&mut self) -> io::Result<()> {
        self.signal(SignalKind::from_raw(libc::SIGKILL))
    }

    /// Kills the child (`SIGKILL`) and waits for it to end.
    ///
    /// ```
    /// use corio::process::Command;
    ///
    /// corio::run(async {
    ///     let mut child = Command::new("sleep").arg("60").spawn()?;
    ///     assert!(child.try_wait()?.is_none()); // still running
    ///     child.kill().await?;
    ///     let status = child.wait().await?; // already reaped: returns at once
    ///     assert!(!status.success());
    ///     assert_eq!(child.id(), None);
    ///     Ok::<_, std::io::Error>(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }

    /// Closes stdin, reads stdout and stderr (those piped) to their end
    /// while waiting for the child, and returns all three.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = (self.stdout.take(), self.stderr.take());
        let out = async {
            match &stdout {
                Some(s) => s.read_to_end(Vec::new()).await,
                None => (Ok(0), Vec::new()),
            }
        };
        let err = async {
            match &stderr {
                Some(s) => s.read_to_end(Vec::new()).await,
                None => (Ok(0), Vec::new()),
            }
        };
        let ((out_res, stdout), (err_res, stderr), status) = join3(out, err, self.wait()).await;
        out_res?;
        err_res?;
        Ok(Output {
            status: status?,
            stdout,
            stderr,
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.reaped.get().is_some() {
            return;
        }
        if self.kill_on_drop {
            let _ = pidfd_send_signal(self.pidfd.raw(), libc::SIGKILL);
        }
        // SAFETY: siginfo_t is plain data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        if !matches!(try_reap(self.pidfd.raw(), &mut info), Ok(None)) {
            return; // reaped now (or beyond reach: ECHILD)
        }
        let orphan = Orphan {
            pid: self.pid,
            pidfd: self.pidfd.clone(),
            reaped: self.reaped.clone(),
            killed: self.kill_on_drop,
        };
        if crate::runtime::context::with_core(|c| c.is_some()) {
            crate::runtime::spawn_background(orphan.reap());
        }
        // Else `orphan` is dropped here: see its `Drop`.
    }
}

/// A child dropped before it was reaped.
struct Orphan {
    pid: u32,
    pidfd: SharedFd,
    reaped: Reaped,
    /// It was sent `SIGKILL`, so it ends soon.
    killed: bool,
}

impl Orphan {
    /// Waits for the child to end and reaps it (a background task).
    async fn reap(self) {
        loop {
            let op = Op::new(WaitPid::new(self.pidfd.clone(), self.reaped.clone()));
            match op.await {
                Ok(None) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Some(_)) | Err(_) => return,
            }
        }
    }
}

impl Drop for Orphan {
    /// Not reaped, and no runtime to wait with (dropped outside one, or the
    /// runtime shut down first): a killed child ends at once, so a thread
    /// waits for it; one still running is left, as std leaves it.
    fn drop(&mut self) {
        if self.reaped.get().is_some() || !self.killed {
            return;
        }
        let pid = self.pid;
        let _ = std::thread::Builder::new()
            .name("corio-reap".into())
            .spawn(move || {
                // SAFETY: siginfo_t is plain data; all-zero is valid.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: waits for our own child (unreaped, so the pid is
                // still its own); `info` is valid.
                unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED) };
            });
    }
}

/// Polls three futures until all are done.
async fn join3<A: Future, B: Future, C: Future>(
    a: A,
    b: B,
    c: C,
) -> (A::Output, B::Output, C::Output) {
    let (mut a, mut b, mut c) = (pin!(a), pin!(b), pin!(c));
    let (mut ra, mut rb, mut rc) = (None, None, None);
    poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if rc.is_none()
            && let Poll::Ready(v) = c.as_mut().poll(cx)
        {
            rc = Some(v);
        }
        if ra.is_some() && rb.is_some() && rc.is_some() {
            Poll::Ready((ra.take().unwrap(), rb.take().unwrap(), rc.take().unwrap()))
        } else {
            Poll::Pending
        }
    })
    .await
}

/// pidfd_open(2): a close-on-exec fd for process `pid`.
fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: a plain syscall with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(2).
fn pidfd_send_signal(pidfd: RawFd, signal: i32) -> io::Result<()> {
    // SAFETY: a plain syscall; a null siginfo means "as kill(2) would".
    let res = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if res < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
