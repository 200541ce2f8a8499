//! Thread per core: shards, `spawn_on` and `shard::current`.
//!
//! How it works: [`Builder::run`](crate::Builder::run) starts one thread per
//! shard; each builds its own runtime (its own executor and driver, so its
//! own io_uring instance), optionally pins itself to a CPU, reports its
//! remote queue back, and once all shards are up, runs the entry closure
//! with its [`ShardId`]. [`spawn_on`] creates a task whose schedule function
//! targets another shard's remote queue: the `Send` future travels there and
//! runs on that shard's thread; waking a parked shard goes through its ring
//! (an eventfd read kept in flight), never a busy poll. A panic in one shard
//! stops the others (their entry futures are dropped) and `run` reports it.

use std::any::Any;
use std::future::Future;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::{fmt, io};

use super::core::Shared;
use super::task::spawn_onto;
use super::{Builder, JoinHandle, context};

/// The index of a shard in a sharded runtime (0 for a plain runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub(crate) usize);

impl ShardId {
    /// The shard with this index.
    pub fn new(index: usize) -> ShardId {
        ShardId(index)
    }

    /// This shard's index, `0..count`.
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}", self.0)
    }
}

/// Which shard the current task runs on, and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    id: ShardId,
    count: usize,
}

impl Shard {
    /// This shard's id.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// How many shards the runtime has (1 for a plain runtime).
    pub fn count(&self) -> usize {
        self.count
    }
}

/// The shards of one `Builder::run`, as each shard's core sees them.
#[derive(Debug)]
pub(crate) struct ShardSet {
    shards: Vec<Arc<Shared>>,
}

/// Where a core sits in its shard set.
#[derive(Debug)]
pub(crate) struct ShardCtx {
    pub(crate) id: usize,
    pub(crate) set: Arc<ShardSet>,
}

/// The shard the calling task runs on.
///
/// # Panics
///
/// Panics outside a corio runtime.
///
/// ```
/// corio::run(async {
///     let me = corio::shard::current();
///     assert_eq!((me.id().index(), me.count()), (0, 1));
/// });
/// ```
#[track_caller]
pub fn current() -> Shard {
    let core = context::current("corio::shard::current");
    match core.shard.get() {
        Some(ctx) => Shard {
            id: ShardId(ctx.id),
            count: ctx.set.shards.len(),
        },
        None => Shard {
            id: ShardId(0),
            count: 1,
        },
    }
}

/// Runs `future` as a task on another shard and returns its handle, which
/// may be awaited on any shard or thread.
///
/// On a plain (unsharded) runtime, shard 0 is the runtime itself. If the
/// target shard has already shut down, the handle yields a cancelled
/// [`JoinError`](crate::JoinError).
///
/// # Panics
///
/// Panics outside a corio runtime, or when `shard` does not exist.
///
/// ```
/// use corio::shard::ShardId;
///
/// let out = corio::Builder::new()
///     .shards(2)
///     .run(|shard| async move {
///         if shard.index() == 0 {
///             let h = corio::spawn_on(ShardId::new(1), async { corio::shard::current().id() });
///             assert_eq!(h.await.unwrap(), ShardId::new(1));
///         }
///         shard.index()
///     })
///     .unwrap();
/// assert_eq!(out, vec![0, 1]);
/// ```
#[track_caller]
pub fn spawn_on<F>(shard: ShardId, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let core = context::current("corio::spawn_on");
    let target = match core.shard.get() {
        Some(ctx) => ctx.set.shards.get(shard.0).cloned(),
        None if shard.0 == 0 => Some(core.shared.clone()),
        None => None,
    };
    let Some(target) = target else {
        panic!("corio::spawn_on: there is no {shard} in this runtime");
    };
    // SAFETY: `F` is `Send`, so it may be polled and dropped on any thread,
    // and the task carries no context variables of this thread (`None`).
    unsafe { spawn_onto(target, future, None) }
}

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

/// A shard's main future: the entry (unless the shards are stopped), then
/// serving until every shard's entry has returned.
async fn shard_main<F: Future>(entry: F, stop: Arc<Stop>) -> Option<F::Output> {
    let mut entry = std::pin::pin!(entry);
    let out = poll_fn(|cx| {
        if let Poll::Ready(v) = entry.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        stop.poll_until(cx, |s| s.stopped.load(Ordering::SeqCst))
            .map(|()| None)
    })
    .await;
    if out.is_some() {
        stop.entry_done();
    }
    poll_fn(|cx| {
        stop.poll_until(cx, |s| {
            s.stopped.load(Ordering::SeqCst) || s.running.load(Ordering::SeqCst) == 0
        })
    })
    .await;
    out
}

/// Why [`Builder::run`](crate::Builder::run) failed.
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

type Outcome<T> = Result<Option<T>, Box<dyn Any + Send>>;

impl Builder {
    /// Runs `entry` on every shard (one thread each, its own runtime) and
    /// returns every shard's output, in shard order.
    ///
    /// The calling thread only waits. If one shard's entry future panics,
    /// the other shards' entry futures are dropped and the panic is returned
    /// as [`RunError::Panic`].
    pub fn run<F, Fut>(self, entry: F) -> Result<Vec<Fut::Output>, RunError>
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
                            return Ok(None);
                        }
                    };
                    let Ok(Some(set)) = set_rx.recv() else {
                        return Ok(None);
                    };
                    let _ = rt.core.shard.set(ShardCtx { id: i, set });
                    let fut = shard_main(entry(ShardId(i)), shard_stop.clone());
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
        drop(set);
        let mut outputs = Vec::with_capacity(n);
        for (i, t) in threads.into_iter().enumerate() {
            match t.join() {
                Ok(Ok(Some(v))) => outputs.push(v),
                Ok(Ok(None)) => {}
                Ok(Err(payload)) | Err(payload) => {
                    failure.get_or_insert(RunError::Panic {
                        shard: ShardId(i),
                        payload,
                    });
                }
            }
        }
        match failure {
            Some(f) => Err(f),
            None if outputs.len() == n => Ok(outputs),
            None => unreachable!("corio: a shard stopped without a panic"),
        }
    }
}
