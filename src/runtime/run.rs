//! Starting and stopping the shards of a runtime: `Builder::run` and
//! `Builder::start`.
//!
//! How it works: `start` starts one thread per shard; each builds its own
//! runtime, optionally pins itself to a CPU, and reports its shared part
//! back. Once all are up, every shard learns the set and runs the entry
//! closure with its [`ShardId`] inside its main future, which then keeps the
//! shard serving (tasks, `spawn_on`) until every shard's entry has returned
//! and, when a [`Handle::shutdown`] is on, until the shard has drained. A
//! panic in one shard stops the others (their entry futures are dropped);
//! the deadline of a shutdown drops the entries still running. `start`
//! returns [`Shards`] (its [`Handle`] and `join`); `run` is `start` then
//! `join`.

use std::any::Any;
use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::{fmt, io};

use super::builder::Builder;
use super::core::Shared;
use super::core::{ShardCtx, ShardId, ShardSet};
use super::handle::Handle;

/// Coordinates the end of a `run`: shards keep serving (tasks, `spawn_on`)
/// until every entry future has returned, and all stop after a panic.
#[derive(Debug)]
struct Stop {
    stopped: AtomicBool,
    running: AtomicUsize,
    wakers: Mutex<Vec<Waker>>,
}

impl Stop {
    fn new(shards: usize) -> Stop {
        Stop {
            stopped: AtomicBool::new(false),
            running: AtomicUsize::new(shards),
            wakers: Mutex::new(Vec::new()),
        }
    }

    fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|e| e.into_inner()));
        for w in wakers {
            w.wake();
        }
    }

    /// A shard panicked: everyone stops.
    fn trigger(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    /// A shard's entry future returned.
    fn entry_done(&self) {
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.wake_all();
        }
    }

    /// Pending until `ready` holds; re-checked under the waker lock.
    fn poll_until(&self, cx: &mut Context<'_>, ready: impl Fn(&Stop) -> bool) -> Poll<()> {
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        if ready(self) {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// How a shard's main future ended.
enum Ended<T> {
    /// The entry returned this.
    Output(T),
    /// Another shard panicked.
    Stopped,
    /// A shutdown's deadline dropped the entry.
    Cancelled,
}

/// A shard's main future: the entry (unless the shards are stopped or a
/// shutdown's deadline passes), then serving until every shard's entry has
/// returned and, during a shutdown, until this shard has drained.
async fn shard_main<F: Future>(
    entry: F,
    stop: Arc<Stop>,
    shared: Arc<Shared>,
    set: Arc<ShardSet>,
) -> Ended<F::Output> {
    let drain = &shared.drain;
    // `Handle::shutdown` starts the shards' drains one after the other: an
    // entry may return on seeing shard 0's before this shard's has started.
    let shutting_down = || set.shards.iter().any(|s| s.drain.started());
    // In a block: the entry future is dropped (its listeners closed, say)
    // before the shard goes on serving.
    let out = {
        let mut entry = std::pin::pin!(entry);
        poll_fn(|cx| {
            if let Poll::Ready(v) = entry.as_mut().poll(cx) {
                return Poll::Ready(Ended::Output(v));
            }
            // The executor wakes this future when the deadline passes.
            if drain.cancelled() {
                return Poll::Ready(Ended::Cancelled);
            }
            stop.poll_until(cx, |s| s.stopped.load(Ordering::SeqCst))
                .map(|()| Ended::Stopped)
        })
        .await
    };
    if !matches!(out, Ended::Stopped) {
        stop.entry_done();
    }
    // The executor wakes this future when the drain finishes.
    poll_fn(|cx| {
        stop.poll_until(cx, |s| {
            s.stopped.load(Ordering::SeqCst)
                || drain.cancelled()
                || (s.running.load(Ordering::SeqCst) == 0 && (!shutting_down() || drain.finished()))
        })
    })
    .await;
    out
}

/// Why [`Builder::run`](crate::Builder::run) (or [`Shards::join`]) failed.
#[non_exhaustive]
pub enum RunError {
    /// A shard's runtime could not be built (or pinned to its CPU).
    Build {
        /// The shard that failed.
        shard: ShardId,
        /// The error.
        error: io::Error,
    },
    /// A shard's entry future panicked; the other shards were stopped.
    Panic {
        /// The shard that panicked.
        shard: ShardId,
        /// The panic payload.
        payload: Box<dyn Any + Send + 'static>,
    },
    /// A [shutdown](crate::runtime::Handle::shutdown)'s deadline passed
    /// while the shard's entry future still ran: it was dropped.
    ShutDown {
        /// The shard whose entry was dropped.
        shard: ShardId,
    },
}

impl RunError {
    fn message(&self) -> String {
        match self {
            RunError::Build { shard, error } => format!("{shard} failed to start: {error}"),
            RunError::Panic { shard, payload } => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(|s| s.as_str()))
                    .unwrap_or("..");
                format!("{shard} panicked: {msg}")
            }
            RunError::ShutDown { shard } => {
                format!("{shard}: the entry future was still running at the shutdown deadline")
            }
        }
    }
}

impl fmt::Debug for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunError({})", self.message())
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for RunError {}

impl From<RunError> for io::Error {
    /// Keeps a build error as it is; a panic becomes an error carrying its
    /// message.
    fn from(e: RunError) -> io::Error {
        match e {
            RunError::Build { error, .. } => error,
            panic => io::Error::other(panic.message()),
        }
    }
}

/// The CPUs this process may run on.
fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: passes a valid pointer and the set's size.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect())
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: as in `allowed_cpus`; `cpu` is below CPU_SETSIZE.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set)
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

type Outcome<T> = Result<Ended<T>, Box<dyn Any + Send>>;

/// The shards started by [`Builder::start`]: a [`Handle`] to them, and
/// [`join`](Shards::join) to wait for their outputs.
pub struct Shards<T> {
    handle: Handle,
    threads: Vec<std::thread::JoinHandle<Outcome<T>>>,
}

impl<T> Shards<T> {
    /// A handle to every shard: spawn on them from any thread, or
    /// [`shutdown`](Handle::shutdown) them.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Waits for every shard to end; returns their entries' outputs in
    /// shard order.
    ///
    /// Fails with [`RunError::Panic`] when an entry panicked (the other
    /// shards were stopped), and with [`RunError::ShutDown`] when a
    /// shutdown's deadline dropped an entry that had not returned.
    pub fn join(self) -> Result<Vec<T>, RunError> {
        let n = self.threads.len();
        let mut outputs = Vec::with_capacity(n);
        let mut panic = None;
        let mut cancelled = None;
        for (i, t) in self.threads.into_iter().enumerate() {
            match t.join() {
                Ok(Ok(Ended::Output(v))) => outputs.push(v),
                Ok(Ok(Ended::Stopped)) => {}
                Ok(Ok(Ended::Cancelled)) => {
                    cancelled.get_or_insert(RunError::ShutDown { shard: ShardId(i) });
                }
                Ok(Err(payload)) | Err(payload) => {
                    panic.get_or_insert(RunError::Panic {
                        shard: ShardId(i),
                        payload,
                    });
                }
            }
        }
        match panic.or(cancelled) {
            Some(f) => Err(f),
            None if outputs.len() == n => Ok(outputs),
            None => unreachable!("corio: a shard stopped without a panic"),
        }
    }
}

impl<T> fmt::Debug for Shards<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shards")
            .field("shards", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Runs `entry` on every shard (one thread each, its own runtime) and
    /// returns every shard's output, in shard order: [`start`](Self::start)
    /// then [`Shards::join`].
    ///
    /// The calling thread only waits. If one shard's entry future panics,
    /// the other shards' entry futures are dropped and the panic is returned
    /// as [`RunError::Panic`]. Inside the shards,
    /// [`Handle::current`] reaches all of them.
    pub fn run<F, Fut>(self, entry: F) -> Result<Vec<Fut::Output>, RunError>
    where
        F: Fn(ShardId) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.start(entry)?.join()
    }

    /// Starts the shards as [`run`](Self::run) does and returns once every
    /// shard is up (its runtime built) and running `entry`, with a
    /// [`Handle`] to them: the caller's thread stays free, to watch for
    /// signals and [`shutdown`](Handle::shutdown) the shards, say.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let shards = corio::Builder::new()
    ///     .shards(2)
    ///     .start(|shard| async move {
    ///         // Serve until the shutdown starts.
    ///         corio::runtime::Handle::current().shutdown_requested().await;
    ///         shard.index()
    ///     })
    ///     .unwrap();
    /// shards.handle().shutdown(Duration::from_secs(5));
    /// assert_eq!(shards.join().unwrap(), vec![0, 1]);
    /// ```
    pub fn start<F, Fut>(self, entry: F) -> Result<Shards<Fut::Output>, RunError>
    where
        F: Fn(ShardId) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let n = self
            .shards
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let cpus = if self.pin_cpus {
            let allowed = allowed_cpus().map_err(|error| RunError::Build {
                shard: ShardId(0),
                error,
            })?;
            if allowed.len() < n {
                return Err(RunError::Build {
                    shard: ShardId(allowed.len()),
                    error: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "cannot pin {n} shards: only {} CPUs are allowed ({allowed:?})",
                            allowed.len()
                        ),
                    ),
                });
            }
            Some(allowed)
        } else {
            None
        };
        let entry = Arc::new(entry);
        let stop = Arc::new(Stop::new(n));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut set_txs = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let (set_tx, set_rx) = std::sync::mpsc::channel::<Option<Arc<ShardSet>>>();
            set_txs.push(set_tx);
            let (builder, entry, shard_stop, ready_tx) =
                (self.clone(), entry.clone(), stop.clone(), ready_tx.clone());
            let cpu = cpus.as_ref().map(|c| c[i]);
            let spawned = std::thread::Builder::new()
                .name(format!("corio-shard-{i}"))
                .spawn(move || -> Outcome<Fut::Output> {
                    let built = cpu.map_or(Ok(()), pin_to).and_then(|()| builder.build());
                    let rt = match built {
                        Ok(rt) => {
                            let _ = ready_tx.send((i, Ok(rt.core.shared.clone())));
                            rt
                        }
                        Err(e) => {
                            let _ = ready_tx.send((i, Err(e)));
                            return Ok(Ended::Stopped);
                        }
                    };
                    let Ok(Some(set)) = set_rx.recv() else {
                        return Ok(Ended::Stopped);
                    };
                    let _ = rt.core.shard.set(ShardCtx {
                        id: i,
                        set: set.clone(),
                    });
                    let shared = rt.core.shared.clone();
                    let fut = shard_main(entry(ShardId(i)), shard_stop.clone(), shared, set);
                    let out =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(fut)));
                    if out.is_err() {
                        shard_stop.trigger();
                    }
                    out
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(error) => {
                    stop.trigger();
                    for tx in &set_txs {
                        let _ = tx.send(None);
                    }
                    return Err(RunError::Build {
                        shard: ShardId(i),
                        error,
                    });
                }
            }
        }
        drop(ready_tx);
        let mut shareds: Vec<Option<Arc<Shared>>> = vec![None; n];
        let mut failure = None;
        for _ in 0..n {
            match ready_rx.recv() {
                Ok((i, Ok(shared))) => shareds[i] = Some(shared),
                Ok((i, Err(error))) => {
                    failure.get_or_insert(RunError::Build {
                        shard: ShardId(i),
                        error,
                    });
                }
                Err(_) => break,
            }
        }
        let shards = shareds.into_iter().collect::<Option<Vec<_>>>();
        let set = match (&failure, shards) {
            (None, Some(shards)) => Some(Arc::new(ShardSet { shards })),
            _ => None,
        };
        for tx in &set_txs {
            let _ = tx.send(set.clone());
        }
        let Some(set) = set else {
            // A shard failed to start: the others end without running
            // their entries.
            for t in threads {
                let _ = t.join();
            }
            return Err(failure.unwrap_or_else(|| RunError::Build {
                shard: ShardId(0),
                error: io::Error::other("corio: a shard thread ended before it started"),
            }));
        };
        Ok(Shards {
            handle: Handle::for_set(set),
            threads,
        })
    }
}
