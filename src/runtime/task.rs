//! Tasks: `spawn`, `JoinHandle`, `JoinError`, `yield_now`.
//!
//! How it works: a task is one allocation (`raw.rs`) whose future is wrapped
//! in [`TaskFuture`]. The wrapper catches panics (so a panicking task yields a
//! [`JoinError`] and the runtime goes on), honours `abort()` (a bit of the
//! task's state word, checked before each poll), keeps the task's [`Origin`]
//! (its spawn location, or its tracking), and keeps the task registered
//! with its runtime until the future is dropped, so shutdown can drop every
//! task on its own thread. The schedule function pushes to the runtime's
//! local queue on its own thread and to the remote queue elsewhere, which makes
//! wakers `Send + Sync` while the future itself never leaves its thread.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::core::SchedRef;
use super::core::Shared;
use super::meta::Origin;
use super::raw::{self, AbortRaw, JoinRaw};
use super::{context, ctxvar};
use crate::trace;
use std::sync::Arc;

/// Spawns a task on the current runtime.
///
/// The future need not be `Send`: it is polled and dropped only on the
/// runtime's thread. The returned [`JoinHandle`] resolves to the task's output,
/// or to a [`JoinError`] if it panicked or was aborted. Dropping the handle
/// detaches the task; it keeps running.
///
/// # Panics
///
/// Panics when called outside a corio runtime.
///
/// ```
/// corio::run(async {
///     let h = corio::spawn(async { 40 + 2 });
///     assert_eq!(h.await.unwrap(), 42);
/// });
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let location = Location::caller();
    let handle = context::with_core(|core| {
        core.map(|core| {
            // SAFETY: the runnable goes to this thread's runtime, the one
            // owning the unit, right below: the future (which need not be
            // `Send`) is polled and dropped on this thread only.
            let (runnable, handle) =
                unsafe { make_task(SchedRef::of(core), future, ctxvar::capture(), location) };
            // Queued here directly (no look for the thread's runtime: this
            // is it).
            core.queue.push_back(runnable);
            handle
        })
    });
    match handle {
        Some(handle) => handle,
        None => context::outside_runtime("corio::spawn"),
    }
}

/// Spawns a detached task of the runtime's own (reaping a dropped child,
/// say) on the current runtime. It does not hold a graceful shutdown up:
/// the drain ends when only such tasks are left.
#[track_caller]
pub(crate) fn spawn_background<F: Future<Output = ()> + 'static>(future: F) {
    /// Counts the task as background while its future lives.
    struct Background(Arc<Shared>);
    impl Drop for Background {
        fn drop(&mut self) {
            self.0.drain.background(false);
        }
    }
    let core = context::current("a corio background task");
    core.shared.drain.background(true);
    let guard = Background(core.shared.clone());
    drop(spawn(async move {
        let _guard = guard;
        future.await
    }));
}

/// Creates a task whose runnable is scheduled on the runtime owning `shared`,
/// starting with the context variables of `ctx`.
///
/// # Safety
///
/// Unless `F` is `Send` and `ctx` is `None`, the caller must be on that
/// runtime's thread: the future (and the context) is polled and dropped by
/// that runtime only (remote wakes push its runnable to a queue only that
/// thread drains, and at shutdown every live task is dropped there).
pub(crate) unsafe fn spawn_onto<F>(
    shared: SchedRef,
    future: F,
    ctx: Option<ctxvar::Context>,
    location: &'static Location<'static>,
) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    // SAFETY: the runnable goes to the runtime owning `shared` right below,
    // and this function's contract is `make_task`'s.
    let (runnable, handle) = unsafe { make_task(shared, future, ctx, location) };
    runnable.schedule();
    handle
}

/// A task's block for `future` on the runtime owning `shared`: its
/// runnable (for that runtime's queue: see `spawn_onto`'s contract) and
/// its handle.
///
/// # Safety
///
/// As for [`spawn_onto`]: the runnable goes only to the runtime owning
/// `shared`, and unless `F` is `Send` and `ctx` is `None` the caller is on
/// that runtime's thread (a runnable is `Send` whatever its future).
#[inline(always)]
unsafe fn make_task<F>(
    shared: SchedRef,
    future: F,
    ctx: Option<ctxvar::Context>,
    location: &'static Location<'static>,
) -> (super::core::Runnable, JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
{
    let origin = Origin::new(location, shared.track_tasks);
    let span = trace::TaskSpan::new(location);
    // The wrapper finds its abort flag through the waker its task's run
    // polls it with (`raw::abort_requested`).
    let (runnable, raw) = raw::spawn(
        shared,
        TaskFuture {
            origin: ManuallyDrop::new(origin),
            ctx,
            span,
            future,
        },
    );
    (runnable, JoinHandle { raw: Some(raw) })
}

/// Wraps a task's future: panic capture, abort flag, origin, live-task
/// registration. Made only by `spawn_onto`, straight into a task's block,
/// and polled and dropped only there.
///
/// `repr(C)` with the origin first: the observer finds a task's origin at
/// the start of its future (`meta::origin_of`) whatever the future's type. Two
/// words and the future (and the span, with `tracing`).
#[repr(C)]
struct TaskFuture<F> {
    /// Where the task was spawned, or its tracking; once it waits, its key
    /// in the runtime's registry, which holds those (see `meta.rs`).
    /// Dropped by `let_go`.
    origin: ManuallyDrop<Origin>,
    /// The task's context variables, the thread's current ones while it
    /// is polled.
    ctx: Option<ctxvar::Context>,
    /// The task's `tracing` span (nothing without the feature).
    span: trace::TaskSpan,
    future: F,
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = Result<F::Output, JoinError>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of
        // `self` and `TaskFuture` has no `Unpin` impl or `Drop` that moves it.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: a `TaskFuture` is only polled by its task's run (made
        // by `make_task`, never moved out of its block), with the task's
        // own waker: a task of scheduler `SchedRef`.
        if unsafe { raw::abort_requested::<SchedRef>(cx) } {
            return Poll::Ready(Err(JoinError::cancelled()));
        }
        // SAFETY: see above; `future` stays in place until the wrapper drops.
        let fut = unsafe { Pin::new_unchecked(&mut this.future) };
        let _span = this.span.enter(this.origin.key().is_none(), || {
            context::with_core(|c| c.map_or(0, |c| c.shard_index()))
        });
        // A task's context is set only where some variable was (`in_use`).
        let swap = ctxvar::in_use();
        let outer = swap.then(|| ctxvar::replace(this.ctx.take()));
        let polled = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
        if let Some(outer) = outer {
            this.ctx = ctxvar::replace(outer);
        } else if ctxvar::in_use() {
            // The first variable on this thread was set during this poll:
            // what it set is the task's, and the thread's context was empty.
            this.ctx = ctxvar::replace(None);
        }
        match polled {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => {
                // A task that waits is registered, so shutdown can reach it
                // (one that finishes in its first poll never needs it).
                if this.origin.key().is_none() {
                    // The origin moves into the registry, the key into its
                    // place.
                    // SAFETY: replaced right below, never read meanwhile.
                    let origin = unsafe { ManuallyDrop::take(&mut this.origin) };
                    let word = context::with_core(|c| match c {
                        Some(c) => Origin::registered(c.register_task(cx.waker().clone(), origin)),
                        None => origin,
                    });
                    this.origin = ManuallyDrop::new(word);
                }
                Poll::Pending
            }
            Err(payload) => Poll::Ready(Err(JoinError::panic(payload))),
        }
    }
}

impl<F> Drop for TaskFuture<F> {
    /// One check for both the registry and the tracking box: a task that
    /// finished in its first poll, untracked, has neither (and the drop of
    /// a finished `async` block stays small enough to be inlined).
    #[inline(always)]
    fn drop(&mut self) {
        if self.origin.owns_something() {
            self.let_go();
        }
    }
}

impl<F> TaskFuture<F> {
    /// Leaves the registry and frees the tracking box, as the wrapper drops.
    #[cold]
    #[inline(never)]
    fn let_go(&mut self) {
        if let Some(key) = self.origin.key() {
            // The entry (with the origin) goes; without the core (its
            // registry dropped already) there is nothing left to free.
            context::with_core(|c| {
                if let Some(c) = c {
                    c.unregister_task(key)
                }
            });
        }
        // SAFETY: the wrapper is being dropped: the word is not used again
        // (a key frees nothing).
        unsafe { ManuallyDrop::drop(&mut self.origin) };
    }
}

/// An owned permission to await a spawned task's output.
///
/// Resolves to `Ok(output)`, or `Err(JoinError)` when the task panicked or was
/// aborted. It is `Send` when the output is, so it can be awaited from another
/// thread. Dropping it detaches the task.
///
/// ```
/// use std::time::Duration;
///
/// corio::run(async {
///     let quick = corio::spawn(async { 1 + 1 });
///     assert_eq!(quick.await.unwrap(), 2);
///
///     let slow = corio::spawn(corio::time::sleep(Duration::from_secs(3600)));
///     slow.abort(); // may be called from any thread
///     assert!(slow.await.unwrap_err().is_cancelled());
///
///     // A panicking task does not take the runtime down: its handle says so.
///     let bad = corio::spawn(async { Vec::<u8>::new()[0] });
///     assert!(bad.await.unwrap_err().is_panic());
/// });
/// ```
pub struct JoinHandle<T> {
    /// `None` once the output was returned.
    raw: Option<JoinRaw<Result<T, JoinError>, SchedRef>>,
}

impl<T> JoinHandle<T> {
    /// Asks the task to stop. The task's future is dropped on its own thread
    /// the next time the runtime runs it; awaiting the handle then yields a
    /// cancelled [`JoinError`] (or the output, if the task had already
    /// finished). May be called from any thread.
    pub fn abort(&self) {
        if let Some(raw) = &self.raw {
            raw.abort();
        }
    }

    /// True once the task has finished (completed, panicked or been aborted).
    pub fn is_finished(&self) -> bool {
        self.raw.as_ref().is_none_or(JoinRaw::is_finished)
    }

    /// What [`abort`](Self::abort) needs, apart from the handle.
    pub(crate) fn abort_handle(&self) -> AbortHandle {
        let raw = self
            .raw
            .as_ref()
            .expect("corio: abort_handle of a JoinHandle that returned its result");
        raw.abort_raw()
    }
}

/// Aborts a task without owning its handle (`TaskGroup`'s fail-fast mode):
/// `abort` is [`JoinHandle::abort`]'s, harmless once the task has finished.
pub(crate) type AbortHandle = AbortRaw;

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `Ready` empties `raw` (the handle let go of the task); polled
        // again, it panics.
        JoinRaw::poll(&mut self.raw, cx).map(|out| {
            // `None`: the runtime dropped the task (shutdown) before it finished.
            out.unwrap_or_else(|| Err(JoinError::cancelled()))
        })
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Why a task did not produce its output.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panic(Box<dyn Any + Send + 'static>),
}

impl JoinError {
    fn cancelled() -> Self {
        JoinError {
            repr: Repr::Cancelled,
        }
    }

    fn panic(payload: Box<dyn Any + Send + 'static>) -> Self {
        JoinError {
            repr: Repr::Panic(payload),
        }
    }

    /// True when the task was aborted or dropped by runtime shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// True when the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload, e.g. to `std::panic::resume_unwind` it.
    ///
    /// # Panics
    ///
    /// Panics if the error is not a panic; check [`is_panic`](Self::is_panic).
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        self.try_into_panic()
            .expect("corio: JoinError::into_panic called on a cancelled task's error")
    }

    /// The panic payload, or the error itself when the task was cancelled.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic(p) => Ok(p),
            Repr::Cancelled => Err(self),
        }
    }

    fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic(p) => p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str())),
            Repr::Cancelled => None,
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("task was cancelled"),
            (Repr::Panic(_), Some(m)) => write!(f, "task panicked: {m}"),
            (Repr::Panic(_), None) => f.write_str("task panicked"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.repr, self.panic_message()) {
            (Repr::Cancelled, _) => f.write_str("JoinError::Cancelled"),
            (Repr::Panic(_), Some(m)) => write!(f, "JoinError::Panic({m:?})"),
            (Repr::Panic(_), None) => f.write_str("JoinError::Panic(..)"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> Self {
        std::io::Error::other(e.to_string())
    }
}

/// Yields once to the runtime, letting other tasks and I/O run.
///
/// ```
/// corio::run(async {
///     corio::yield_now().await;
/// });
/// ```
pub async fn yield_now() {
    YieldNow(false).await
}

struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_wrapper_is_three_words_for_a_tiny_future() {
        // The origin (one word: a location or a `Track`, or once the task
        // waits its registry key), the context (one word), the future's
        // byte: 24 bytes (a key of its own would make it 32), plus the span
        // (nothing without `tracing`).
        let size = std::mem::size_of::<TaskFuture<std::future::Ready<u8>>>();
        assert!(
            size <= 24 + std::mem::size_of::<trace::TaskSpan>(),
            "TaskFuture grew to {size} bytes"
        );
        // The observer finds the origin at the start of any wrapper.
        assert_eq!(std::mem::offset_of!(TaskFuture<[u64; 4]>, origin), 0);
    }

    /// Whose block a spawn of `future` makes.
    fn block_of<F: Future>(_: &F) -> usize {
        raw::block_size::<TaskFuture<F>, SchedRef>()
    }

    #[test]
    fn an_empty_async_task_is_a_56_byte_block() {
        // A 64-byte allocator chunk: 16 bytes more (72, an 80-byte chunk)
        // measured +9 ns per spawn-many and 16 bytes per task.
        let size = block_of(&async {});
        println!("task block of `async {{}}`: {size} bytes");
        assert!(
            size <= 56 + std::mem::size_of::<trace::TaskSpan>(),
            "the task block grew to {size} bytes"
        );
    }
}
