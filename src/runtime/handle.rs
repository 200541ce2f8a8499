//! `Handle`: a runtime (or all the shards of a `Builder::run`/`start`) as
//! seen from any thread: spawn `Send` futures on it, shut it down gracefully.
//!
//! How it works: a handle holds the shared part of each runtime it stands
//! for (`Arc<Shared>`: the remote run queue, the unparker, the [`Drain`]).
//! `spawn` makes a task whose runnable goes to a runtime's remote queue,
//! round robin over the shards. `shutdown` starts every runtime's drain and
//! unparks it (see `drain.rs`); the `shutdown_requested` and
//! `shutdown_finished` futures wait on the drains' wait lists, so they work
//! from any runtime or thread.
//!
//! [`Drain`]: super::drain::Drain

use std::fmt;
use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use super::core::Shared;
use super::core::{ShardId, ShardSet};
use super::drain::WaitList;
use super::task::spawn_onto;
use super::{JoinHandle, Runtime, context};

/// A cheap, cloneable, `Send + Sync` handle to a runtime, or to every shard
/// of a sharded one: spawns `Send` futures from any thread and shuts the
/// runtime down gracefully.
///
/// Get one with [`Runtime::handle`], [`Handle::current`] (inside a runtime
/// or a shard, the latter reaching all shards) or
/// [`Shards::handle`](crate::shard::Shards::handle).
///
/// [`shutdown`](Handle::shutdown) starts a graceful shutdown: listeners stop
/// accepting (`accept` and `Incoming::next` fail; see [`is_shutting_down`]),
/// tasks get until the deadline to finish, then those left are dropped,
/// which closes their sockets and files. The runtime's thread does this
/// work, so a plain [`Runtime`] needs a `block_on` running meanwhile.
///
/// A handle keeps the runtime's shared part alive (its run queue and the
/// fd that wakes it), not the runtime: once the runtime is gone, `spawn`
/// yields cancelled tasks and the shutdown futures resolve at once.
///
/// ```
/// use std::time::Duration;
///
/// let rt = corio::Runtime::new().unwrap();
/// let handle = rt.handle();
/// rt.block_on(async {
///     corio::spawn(async {
///         // A request still in flight: it gets until the deadline.
///         corio::time::sleep(Duration::from_millis(20)).await;
///     });
///     // From any thread, e.g. on a signal:
///     handle.shutdown(Duration::from_secs(10));
///     handle.shutdown_finished().await; // the task ended, no need to wait 10 s
/// });
/// ```
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

struct Inner {
    runtimes: Vec<Arc<Shared>>,
    /// Round robin for `spawn`.
    next: AtomicUsize,
}

impl Handle {
    fn new(runtimes: Vec<Arc<Shared>>) -> Handle {
        Handle {
            inner: Arc::new(Inner {
                runtimes,
                next: AtomicUsize::new(0),
            }),
        }
    }

    /// A handle to all shards of a set.
    pub(crate) fn for_set(set: Arc<ShardSet>) -> Handle {
        Handle::new(set.shards.clone())
    }

    pub(crate) fn for_runtime(rt: &Runtime) -> Handle {
        Handle::new(vec![rt.core.shared.clone()])
    }

    /// The handle of the runtime the caller runs on; inside a shard of
    /// [`Builder::run`](crate::Builder::run), of all its shards.
    ///
    /// # Panics
    ///
    /// Panics outside a corio runtime.
    #[track_caller]
    pub fn current() -> Handle {
        let core = context::current("corio::runtime::Handle::current");
        match core.shard.get() {
            Some(ctx) => Handle::new(ctx.set.shards.clone()),
            None => Handle::new(vec![core.shared.clone()]),
        }
    }

    /// How many runtimes (shards) this handle reaches.
    pub fn shards(&self) -> usize {
        self.inner.runtimes.len()
    }

    /// Runs `future` as a task on the runtime (on a sharded one, on the
    /// shards in turn) and returns its handle, which can be awaited
    /// anywhere. Callable from any thread.
    ///
    /// The task starts when its runtime next runs (a plain [`Runtime`] runs
    /// only inside `block_on`); on a runtime that has shut down, the handle
    /// yields a cancelled [`JoinError`](crate::JoinError).
    #[track_caller]
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let n = self.inner.runtimes.len();
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
        self.spawn_on(ShardId(i), future)
    }

    /// Like [`spawn`](Self::spawn), on the given shard (0 for a plain
    /// runtime).
    ///
    /// # Panics
    ///
    /// Panics when `shard` does not exist.
    #[track_caller]
    pub fn spawn_on<F>(&self, shard: ShardId, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(target) = self.inner.runtimes.get(shard.index()) else {
            panic!("corio: Handle::spawn_on: there is no {shard} in this runtime");
        };
        // SAFETY: `F` is `Send`, so it may be polled and dropped on any
        // thread, and the task carries no context variables (`None`).
        unsafe {
            spawn_onto(
                target.clone().into(),
                future,
                None,
                std::panic::Location::caller(),
            )
        }
    }

    /// Starts a graceful shutdown of every runtime of this handle: from now
    /// on accepts fail (listeners see [`is_shutting_down`]), tasks have
    /// `grace` to finish, and when it is over the tasks left are dropped
    /// (closing their fds). Returns at once; await
    /// [`shutdown_finished`](Self::shutdown_finished) (or join the shards)
    /// to know when it is done. Calling it again can only bring the deadline
    /// closer: `shutdown(Duration::ZERO)` forces the end now.
    ///
    /// A sharded runtime then ends once every shard's entry has returned and
    /// every shard has drained; an entry still running at the deadline is
    /// dropped. Do not await `shutdown_finished` in a task of the runtime
    /// being shut down: the task would hold the drain up until the deadline.
    pub fn shutdown(&self, grace: Duration) {
        let now = Instant::now();
        let deadline = now
            .checked_add(grace)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        for rt in &self.inner.runtimes {
            rt.drain.begin(deadline);
            // Let the runtime's thread notice (it may be parked).
            rt.unpark();
        }
    }

    /// True once [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.runtimes.iter().any(|rt| rt.drain.started())
    }

    /// Resolves once a shutdown has started: serving loops select on it to
    /// stop taking new work (an idle keep-alive connection closes, say).
    /// Usable from any runtime or thread.
    pub async fn shutdown_requested(&self) {
        let drain = &self.inner.runtimes[0].drain;
        let mut reg = Registration::new(drain.started_waiters());
        poll_fn(|cx| {
            if drain.started() {
                return Poll::Ready(());
            }
            reg.register(cx.waker());
            if drain.started() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Resolves once every runtime of this handle has finished its drain:
    /// no task left, or the deadline passed and the rest were dropped (or
    /// the runtime is gone). Usable from any runtime or thread.
    pub async fn shutdown_finished(&self) {
        let runtimes = &self.inner.runtimes;
        let mut regs: Vec<Registration<'_>> = runtimes
            .iter()
            .map(|rt| Registration::new(rt.drain.finished_waiters()))
            .collect();
        poll_fn(|cx| {
            let mut done = true;
            for (rt, reg) in runtimes.iter().zip(&mut regs) {
                if !rt.drain.finished() {
                    reg.register(cx.waker());
                    done &= rt.drain.finished();
                }
            }
            if done { Poll::Ready(()) } else { Poll::Pending }
        })
        .await
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("shards", &self.inner.runtimes.len())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

/// A waker in a drain's wait list, removed when the waiting future goes.
struct Registration<'a> {
    list: &'a WaitList,
    key: Option<usize>,
}

impl<'a> Registration<'a> {
    fn new(list: &'a WaitList) -> Registration<'a> {
        Registration { list, key: None }
    }

    fn register(&mut self, waker: &std::task::Waker) {
        self.list.register(&mut self.key, waker);
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.list.remove(self.key);
    }
}

/// True when the runtime the caller runs on has started a graceful
/// shutdown ([`Handle::shutdown`]); false outside a runtime.
///
/// An accept loop that gets an error checks it to tell "stop accepting"
/// from an error to back off from:
///
/// ```no_run
/// # async fn serve(_: corio::net::TcpStream) {}
/// # corio::run(async {
/// let listener = corio::net::TcpListener::bind("127.0.0.1:8080")?;
/// loop {
///     match listener.accept().await {
///         Ok((stream, _)) => drop(corio::spawn(serve(stream))),
///         Err(_) if corio::runtime::is_shutting_down() => break,
///         Err(e) => {
///             eprintln!("accept: {e}");
///             corio::time::sleep(std::time::Duration::from_millis(100)).await;
///         }
///     }
/// }
/// # Ok::<_, std::io::Error>(()) }).unwrap();
/// ```
pub fn is_shutting_down() -> bool {
    context::with_core(|c| c.is_some_and(|c| c.shared.drain.started()))
}

/// Runs `future` until it completes (`Some` of its output) or until the
/// runtime the caller runs on starts a graceful shutdown (`None`; `future`
/// is dropped), whichever comes first: an idle keep-alive connection stops
/// waiting for its next request, a periodic job stops.
///
/// It costs one flag check per poll and registers nothing: when a shutdown
/// starts, the runtime wakes each of its tasks (and `block_on`'s future)
/// once, and this looks at the flag then. `future` gets polled first, so
/// what is ready is not lost. (From another runtime or thread, await
/// [`Handle::shutdown_requested`] instead.)
///
/// ```
/// use std::time::Duration;
///
/// let rt = corio::Runtime::new().unwrap();
/// let handle = rt.handle();
/// rt.block_on(async {
///     let job = corio::spawn(async {
///         let mut ticks = 0;
///         while corio::runtime::run_until_shutdown(corio::time::sleep(Duration::from_millis(1)))
///             .await
///             .is_some()
///         {
///             ticks += 1;
///         }
///         ticks
///     });
///     corio::time::sleep(Duration::from_millis(20)).await;
///     handle.shutdown(Duration::from_secs(60));
///     assert!(job.await.unwrap() > 0); // it stopped: no need to wait 60 s
/// });
/// ```
pub async fn run_until_shutdown<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    poll_fn(|cx| {
        if let Poll::Ready(v) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if is_shutting_down() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
