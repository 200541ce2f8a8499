//! Unix signals as async events: [`ctrl_c`], and [`signal`] for a stream of
//! deliveries of any catchable signal (asyncio's `add_signal_handler`).
//!
//! How it works: a signal is caught by a sigaction(2) handler that raises a
//! flag and bumps a process-wide eventfd (see `registry.rs`); each
//! [`Signal`] keeps a read of that eventfd in flight through its runtime's
//! driver (an io_uring `READ`, or readiness through mio on the poll driver).
//! Whichever read takes the counter dispatches the delivery to every
//! listener of the signal, in every runtime and shard, through their wakers.
//! The dispatch happens in the read's waker, as soon as the driver sees the
//! read complete (or the eventfd readable), not when the listener's future is
//! next polled: a listener whose read took the counter while its task was
//! busy elsewhere cannot hold back the others.
//!
//! Why a handler and not a `signalfd`: a signalfd only sees signals that are
//! blocked in *every* thread of the process, and a library cannot block them
//! in threads it did not start (the test harness, a logger, another
//! runtime): the signal would then go to such a thread's default action and,
//! for `SIGINT`, end the process. A handler works whatever the threads'
//! masks are, and it is what tokio does too.
//!
//! While a signal has listeners, corio's handler replaces its previous
//! disposition (a handler of the program's own, or `SIG_IGN`); when the last
//! listener is dropped the previous disposition is restored, and a signal
//! arriving from then on gets it (the default action of `SIGINT` and
//! `SIGTERM` ends the process). Deliveries coalesce as the kernel's do: a
//! listener that was not waiting sees one delivery for any number that
//! arrived meanwhile.

mod registry;

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::fd::SharedFd;
use crate::op::Op;
use crate::op::eventfd::ReadCounter;

/// A signal to listen for: a signal number with names for the common ones.
///
/// ```
/// use corio::signal::{SignalKind, signal};
///
/// corio::run(async {
///     // The usual ones by name, any other by number.
///     let _term = signal(SignalKind::terminate())?;
///     let _rt = signal(SignalKind::from_raw(libc::SIGRTMIN() + 1))?;
///     // A signal that cannot be caught is refused.
///     let err = signal(SignalKind::from_raw(libc::SIGKILL)).unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// Any signal number (`SIGRTMIN + 1`, say). Signals that cannot be
    /// caught, or must not be (`SIGKILL`, `SIGSTOP`, `SIGSEGV`, `SIGBUS`,
    /// `SIGILL`, `SIGFPE`), make [`signal`] fail with `InvalidInput`.
    pub const fn from_raw(signum: i32) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal number.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// `SIGINT`: Ctrl-C in a terminal.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// `SIGTERM`: the polite request to stop (`kill PID`, service managers).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// `SIGHUP`: the terminal went away; daemons often reload on it.
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// `SIGQUIT`: Ctrl-\ in a terminal.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// `SIGUSR1`.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// `SIGUSR2`.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// `SIGCHLD`: a child process stopped or ended. (corio's
    /// [`process`](crate::process) does not need it.)
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// `SIGALRM`.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }

    /// `SIGPIPE` (Rust programs ignore it by default; writes then fail with
    /// `BrokenPipe`).
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// `SIGWINCH`: the terminal changed size.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

/// The deliveries of one signal; see [`signal`].
///
/// It is not `Send` (its eventfd read belongs to a runtime's thread);
/// create one per task or shard that listens. Dropping it unregisters it.
///
/// ```
/// use corio::process::Command;
/// use corio::signal::{SignalKind, signal};
///
/// corio::run(async {
///     let mut usr2 = signal(SignalKind::user_defined2())?;
///     // Another process signals this one (`$PPID`: the shell's parent, us).
///     Command::new("sh").args(["-c", "kill -USR2 $PPID"]).status().await?;
///     assert_eq!(usr2.recv().await, Some(()));
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub struct Signal {
    signal: i32,
    key: usize,
    /// The generation of the signal last returned by `recv`.
    seen: u64,
    /// This listener's descriptor of the process-wide eventfd.
    fd: SharedFd,
    /// The eventfd read in flight, kept across `recv` calls.
    read: Option<Op<ReadCounter>>,
    /// The waker the read runs with: it dispatches, then wakes the task.
    read_waker: Waker,
    dispatcher: Arc<Dispatcher>,
}

/// Waker of a listener's eventfd read: the driver calls it when the read
/// completes or the eventfd turns readable, from then on the delivery is
/// dispatched to every listener even if this one is not polled.
#[derive(Default)]
struct Dispatcher {
    /// The task awaiting the listener's `recv`.
    task: Mutex<Option<Waker>>,
}

impl Wake for Dispatcher {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        registry::dispatch(0);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

/// Starts listening for `kind`: from now on each delivery of the signal is
/// seen by [`Signal::recv`] (and by every other listener of it, on any
/// runtime or shard), instead of the signal's previous disposition.
///
/// Fails with `InvalidInput` for signals that cannot or must not be caught
/// (`SIGKILL`, `SIGSTOP`, `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`) or that do
/// not exist.
///
/// ```no_run
/// use corio::signal::{SignalKind, signal};
///
/// corio::run(async {
///     let mut hangups = signal(SignalKind::hangup())?;
///     while hangups.recv().await.is_some() {
///         println!("reloading the configuration");
///     }
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let (key, seen) = registry::register(kind.0)?;
    let fd = match registry::dup_wake_fd() {
        Ok(fd) => fd,
        Err(e) => {
            registry::unregister(kind.0, key);
            return Err(e);
        }
    };
    let dispatcher = Arc::new(Dispatcher::default());
    Ok(Signal {
        signal: kind.0,
        key,
        seen,
        fd: SharedFd::new(fd),
        read: None,
        read_waker: Waker::from(dispatcher.clone()),
        dispatcher,
    })
}

impl Signal {
    /// Waits for the next delivery of the signal. Deliveries that arrived
    /// since the last call (or since the listener was made) count: `recv`
    /// then returns at once, once for all of them. `None` when the runtime
    /// shuts down.
    ///
    /// Cancel-safe: a delivery is never lost by dropping this future.
    ///
    /// # Panics
    ///
    /// Panics outside a corio runtime.
    pub async fn recv(&mut self) -> Option<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`recv`](Self::recv), e.g. to implement a stream.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        loop {
            let now = registry::generation(self.signal);
            if now != self.seen {
                self.seen = now;
                return Poll::Ready(Some(()));
            }
            registry::set_waker(self.signal, self.key, cx.waker());
            if registry::generation(self.signal) != now {
                continue;
            }
            {
                let mut task = self
                    .dispatcher
                    .task
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                    *task = Some(cx.waker().clone());
                }
            }
            let fd = &self.fd;
            let read = self
                .read
                .get_or_insert_with(|| Op::new(ReadCounter::new(fd.clone(), registry::dispatch)));
            match Pin::new(read).poll(&mut Context::from_waker(&self.read_waker)) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(res) => {
                    self.read = None;
                    match res {
                        Ok(count) => registry::dispatch(count),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        // The runtime is shutting down.
                        Err(_) => return Poll::Ready(None),
                    }
                }
            }
        }
    }

    /// The signal this listener listens for.
    pub fn kind(&self) -> SignalKind {
        SignalKind(self.signal)
    }
}

/// The deliveries of a signal as a [`Stream`](crate::stream::Stream), one
/// item per [`recv`](Signal::recv); it ends when the runtime shuts down.
impl futures_core::Stream for Signal {
    type Item = ();

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        self.get_mut().poll_recv(cx)
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        // An eventfd read still in flight is cancelled; a count it took
        // anyway is dispatched by the op (`ReadCounter::abandoned`).
        self.read = None;
        registry::unregister(self.signal, self.key);
    }
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("signal", &self.signal)
            .finish_non_exhaustive()
    }
}

/// Waits for `SIGINT` (Ctrl-C). While it waits, Ctrl-C no longer ends the
/// process; afterwards it does again (unless another listener remains).
///
/// The listener is registered when the future is first polled: a Ctrl-C
/// before that takes the previous disposition. Use [`signal`] with
/// [`SignalKind::interrupt`] to listen for more than one.
///
/// ```no_run
/// corio::run(async {
///     corio::spawn(async { /* serve */ });
///     corio::signal::ctrl_c().await?;
///     println!("bye");
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    let mut sig = signal(SignalKind::interrupt())?;
    sig.recv()
        .await
        .ok_or_else(|| io::Error::other("corio: the runtime shut down"))
}
