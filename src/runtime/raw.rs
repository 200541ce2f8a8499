//! The task allocation: one header word of state, then the future or its output.
//!
//! How it works: a task is one heap block, a [`Header`] (the state word, a
//! vtable, the task's metadata and the join handle's waker) followed by the
//! stage: the future while it runs, then its output until the handle takes
//! it. Three kinds of owner keep the block alive, all counted in the state
//! word: the one runnable token (`SCHEDULED` while a [`Runnable`] is queued,
//! `RUNNING` while it is being polled), the join handle (`HANDLE`) and the
//! wakers (`REF` each). Whoever moves the word to "no owner left" frees the
//! block; no other field is atomic.
//!
//! It replaces `async-task` (same design: a state word, a waker vtable, a
//! join handle that may live on another thread) where a runtime that polls
//! each task on one thread can do less: waking an idle task sets one bit
//! (the token is the bit, no reference taken), a run is one add before the
//! poll and one subtract after it, and the handle needs no waker of its own.
//! Measured by callgrind: async-task's `run` and `wake` were 212 of corio's
//! 1,856 instructions per 64-byte echo.
//!
//! The join handle's waker sits behind a lock bit (`LOCKED`) in the state
//! word: the handle stores it, the task takes it when it completes or is
//! closed, each under the bit for a few instructions.

#[cfg(all(test, corio_loom))]
use loom::sync::atomic::{AtomicUsize, Ordering};
use std::cell::UnsafeCell;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
#[cfg(not(all(test, corio_loom)))]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::meta::TaskMeta;

mod blocks;
mod join;
mod waker;

pub(crate) use self::join::JoinRaw;
use self::waker::{Wakers, clone_waker, queue, raw_waker, wake_by_ref};

/// A runnable token exists (queued, or about to be): set by the wake that
/// finds the task idle, cleared by the run that takes the token. Set while
/// `RUNNING`, it tells the run to queue the task again when its poll ends.
const SCHEDULED: usize = 1 << 0;
/// The runnable token is being polled (on the task's own thread).
const RUNNING: usize = 1 << 1;
/// The future returned `Ready`; its output is in the stage until taken.
const COMPLETED: usize = 1 << 2;
/// The future is gone without an output (a runnable dropped: shutdown), or
/// the output was taken or dropped. Nothing schedules the task again.
const CLOSED: usize = 1 << 3;
/// The join handle is alive.
const HANDLE: usize = 1 << 4;
/// The join handle's waker is stored in `Header::awaiter`.
const AWAITER: usize = 1 << 5;
/// Someone is reading or writing `Header::awaiter`.
const LOCKED: usize = 1 << 6;
/// One waker: the count lives in the bits from here up.
const REF: usize = 1 << 7;
const REFS: usize = !(REF - 1);

/// True when nothing owns the task any more: whoever made the state so
/// frees it.
#[inline(always)]
fn unowned(state: usize) -> bool {
    state & (REFS | SCHEDULED | RUNNING | HANDLE) == 0
}

/// Where a woken task goes: the runtime's queue.
pub(crate) trait Schedule: Sized + 'static {
    /// Queues `runnable` to be run on its task's own thread.
    fn schedule(runnable: Runnable<Self>);
}

/// The start of every task allocation, the same whatever its scheduler:
/// what a waker needs.
#[repr(C)]
struct Head {
    state: AtomicUsize,
    vtable: &'static TaskVTable,
}

/// The task's header: [`Head`], then what depends on the scheduler.
#[repr(C)]
struct Header<S> {
    head: Head,
    meta: TaskMeta<S>,
    /// The join handle's waker (under `LOCKED`, present when `AWAITER`).
    awaiter: UnsafeCell<Option<Waker>>,
}

impl<S> std::ops::Deref for Header<S> {
    type Target = Head;

    #[inline(always)]
    fn deref(&self) -> &Head {
        &self.head
    }
}

/// What depends on the future's type and the scheduler.
struct TaskVTable {
    /// The task's waker functions (see [`raw_waker`]).
    waker: &'static RawWakerVTable,
    /// Queues the task (gives the runnable token to its scheduler).
    schedule: unsafe fn(NonNull<()>),
    /// Polls the future once (consumes the runnable token).
    run: unsafe fn(NonNull<()>),
    /// Drops the future (a runnable dropped unrun).
    drop_future: unsafe fn(NonNull<()>),
    /// Moves the output to `*mut F::Output`.
    take_output: unsafe fn(NonNull<()>, *mut ()),
    /// Drops the output nobody will take.
    drop_output: unsafe fn(NonNull<()>),
    /// Frees the allocation (dropping what is left in it).
    free: unsafe fn(NonNull<()>),
}

/// A task allocation: the header, then the stage.
#[repr(C)]
struct Alloc<F: Future, S> {
    header: Header<S>,
    stage: UnsafeCell<Stage<F>>,
}

/// The future until it completes, then its output until it is taken or
/// dropped: which one is there (or neither) the state word says, so no tag
/// takes room. A freed task has neither left (the last owner to go does
/// not drop the stage: each path empties it before).
union Stage<F: Future> {
    future: ManuallyDrop<F>,
    output: ManuallyDrop<F::Output>,
}

/// Creates a task of `future` (which may find the metadata from its place
/// in the block: [`meta_of_future`]). Returns the runnable to queue first
/// and the join handle.
pub(crate) fn spawn<F, S>(meta: TaskMeta<S>, future: F) -> (Runnable<S>, JoinRaw<F::Output, S>)
where
    F: Future,
    S: Schedule,
{
    let cell = blocks::allocate(std::alloc::Layout::new::<Alloc<F, S>>())
        .cast::<Alloc<F, S>>()
        .as_ptr();
    // SAFETY: `cell` is a fresh (or kept, unused), aligned, uninitialised
    // block with room for an `Alloc<F, S>` (`blocks` rounds the size up,
    // never down); each field is written once before anything reads it.
    unsafe {
        (&raw mut (*cell).header).write(Header {
            head: Head {
                state: AtomicUsize::new(SCHEDULED | HANDLE),
                vtable: &Alloc::<F, S>::VTABLE,
            },
            meta,
            awaiter: UnsafeCell::new(None),
        });
        (&raw mut (*cell).stage).write(UnsafeCell::new(Stage {
            future: ManuallyDrop::new(future),
        }));
    }
    // SAFETY: `cell` came from a `NonNull`.
    let ptr = unsafe { NonNull::new_unchecked(cell.cast::<()>()) };
    (
        Runnable {
            ptr,
            _s: PhantomData,
        },
        JoinRaw {
            ptr,
            _p: PhantomData,
        },
    )
}

/// The metadata of the task whose future `future` is, found from where the
/// future lies in its task's block (so the future need not keep a pointer
/// to it: 8 bytes less per task).
///
/// # Safety
///
/// `future` points at the future of a task that [`spawn`] made with
/// scheduler `S` (in its block's stage, where it stays until dropped: a
/// spawned future is pinned there), and the task is alive.
#[inline(always)]
pub(crate) unsafe fn meta_of_future<F: Future, S>(future: *const F) -> *const TaskMeta<S> {
    // The stage is an `UnsafeCell` (transparent) of a union of
    // `ManuallyDrop`s (transparent): the future starts where it does.
    let offset = std::mem::offset_of!(Alloc<F, S>, stage);
    // SAFETY: per the contract, `future - offset` is the start of the
    // task's live `Alloc<F, S>`, whose header holds the metadata.
    unsafe { &raw const (*future.byte_sub(offset).cast::<Alloc<F, S>>()).header.meta }
}

/// The head of a task allocation (any scheduler).
///
/// # Safety
///
/// `ptr` is a live task allocation.
#[inline(always)]
unsafe fn head<'a>(ptr: NonNull<()>) -> &'a Head {
    // SAFETY: per the contract; every allocation starts with a `Head`
    // (`repr(C)` all the way down).
    unsafe { ptr.cast::<Head>().as_ref() }
}

/// The header behind a task pointer.
///
/// # Safety
///
/// `ptr` is a live task allocation with scheduler type `S`.
#[inline(always)]
unsafe fn header<'a, S>(ptr: NonNull<()>) -> &'a Header<S> {
    // SAFETY: per the contract; the header is the allocation's first field.
    unsafe { ptr.cast::<Header<S>>().as_ref() }
}

impl<F: Future, S: Schedule> Alloc<F, S> {
    const VTABLE: TaskVTable = TaskVTable {
        waker: &Wakers::<S>::VTABLE,
        schedule: queue::<S>,
        run: Self::run,
        drop_future: Self::drop_future,
        take_output: Self::take_output,
        drop_output: Self::drop_output,
        free: Self::free,
    };

    /// # Safety
    ///
    /// `ptr` is a live `Alloc<F, S>` allocation.
    #[inline(always)]
    unsafe fn stage<'a>(ptr: NonNull<()>) -> &'a mut Stage<F> {
        // SAFETY: per the contract; each caller holds the right to touch the
        // stage (the runnable token, or the output once completed).
        unsafe { &mut *(*ptr.cast::<Self>().as_ptr()).stage.get() }
    }

    /// # Safety
    ///
    /// The caller holds the runnable token (`SCHEDULED` set by the wake
    /// that queued it, not yet `RUNNING`), on the task's own thread.
    unsafe fn run(ptr: NonNull<()>) {
        // SAFETY: the token keeps the allocation alive.
        let header = unsafe { header::<S>(ptr) };
        // The token moves from `SCHEDULED` to `RUNNING`: both known (set,
        // clear), so one add swaps them whatever else changes meanwhile.
        let prev = header
            .state
            .fetch_add(RUNNING - SCHEDULED, Ordering::Acquire);
        debug_assert!(prev & (SCHEDULED | RUNNING | COMPLETED) == SCHEDULED);
        if prev & CLOSED != 0 {
            // SAFETY: the caller's token is now `RUNNING`.
            return unsafe { Self::run_orphan(ptr) };
        }
        // SAFETY: the vtable's functions expect a pointer to a live task
        // with scheduler `S`, as this is; the waker is not dropped (no
        // reference was taken for it).
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw_waker(ptr)) });
        let mut cx = Context::from_waker(&waker);
        // SAFETY: the running token gives this thread the stage.
        let stage = unsafe { Self::stage(ptr) };
        // SAFETY: neither completed nor closed: the stage holds the future,
        // which stays in place until it is dropped there (never moved).
        let polled = unsafe { Pin::new_unchecked(&mut *stage.future) }.poll(&mut cx);
        match polled {
            Poll::Pending => {
                let prev = header.state.fetch_sub(RUNNING, Ordering::AcqRel);
                if prev & SCHEDULED != 0 {
                    // Woken while running: the token goes back to the queue.
                    // SAFETY: the running token became that one.
                    unsafe { queue::<S>(ptr) };
                } else if unowned(prev - RUNNING) {
                    // Nobody can wake it again (no waker, no handle): its
                    // future goes now, on its own thread.
                    // SAFETY: the stage holds the future, dropped once here.
                    unsafe { drop_quietly(&mut stage.future) };
                    // SAFETY: the state says no owner is left.
                    unsafe { Self::free(ptr) };
                }
            }
            Poll::Ready(out) => {
                // SAFETY: the stage holds the future, dropped once here.
                unsafe { drop_quietly(&mut stage.future) };
                stage.output = ManuallyDrop::new(out);
                // One step marks it completed and, by what it finds: with
                // a handle and no waker of its, lets go at once (the handle
                // may take the output and go as soon as it sees it); with
                // the handle's waker stored, takes the lock over it too
                // (`RUNNING` stays until the waker is out); with no handle,
                // keeps `RUNNING` while the output is dropped here.
                let mut state = header.state.load(Ordering::Acquire);
                let mut spins = 0;
                let next = loop {
                    if state & LOCKED != 0 {
                        // The handle is storing or taking its waker.
                        backoff(&mut spins);
                        state = header.state.load(Ordering::Acquire);
                        continue;
                    }
                    let mut next = (state & !SCHEDULED) | COMPLETED;
                    if state & HANDLE == 0 {
                        next |= CLOSED;
                    } else if state & AWAITER != 0 {
                        next |= LOCKED;
                    } else {
                        next &= !RUNNING;
                    }
                    match header.state.compare_exchange_weak(
                        state,
                        next,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => break next,
                        Err(s) => state = s,
                    }
                };
                if next & RUNNING == 0 {
                    // The handle (still there: `HANDLE` was set) owns the
                    // output and the block now.
                    return;
                }
                let mut done = RUNNING;
                let mut awaiter = None;
                if next & CLOSED != 0 {
                    // The handle went first, taking its waker with it.
                    debug_assert!(next & AWAITER == 0);
                    // SAFETY: no handle will take the output: it goes here.
                    unsafe { drop_quietly(&mut stage.output) };
                } else {
                    // SAFETY: `LOCKED` is held, taken with `AWAITER` set.
                    awaiter = unsafe { (*header.awaiter.get()).take() };
                    done |= LOCKED | AWAITER;
                }
                // Every bit in `done` is set, and only this run clears them.
                let prev = header.state.fetch_sub(done, Ordering::AcqRel);
                if unowned(prev - done) {
                    // SAFETY: no owner is left.
                    unsafe { Self::free(ptr) };
                }
                if let Some(w) = awaiter {
                    w.wake();
                }
            }
        }
    }

    /// Drops the future of a task queued by [`orphaned`], instead of
    /// polling it.
    ///
    /// # Safety
    ///
    /// The caller holds the running token, on the task's thread.
    #[cold]
    unsafe fn run_orphan(ptr: NonNull<()>) {
        // SAFETY: the token gives the stage, which holds the future.
        unsafe { drop_quietly(&mut Self::stage(ptr).future) };
        // SAFETY: the token keeps the task alive until it is given up.
        let header = unsafe { header::<S>(ptr) };
        let prev = header.state.fetch_sub(RUNNING, Ordering::AcqRel);
        if unowned(prev - RUNNING) {
            // SAFETY: no owner is left, the stage is empty.
            unsafe { Self::free(ptr) };
        }
    }

    /// # Safety
    ///
    /// The caller holds the runnable token, on the task's thread (or any
    /// thread for a `Send` future).
    unsafe fn drop_future(ptr: NonNull<()>) {
        // SAFETY: the token gives the caller the stage, which holds the
        // future (not completed); it is dropped once, here.
        unsafe { drop_quietly(&mut Self::stage(ptr).future) };
    }

    /// # Safety
    ///
    /// The task completed and its output was not taken; `out` is valid for
    /// a write of `F::Output`.
    unsafe fn take_output(ptr: NonNull<()>, out: *mut ()) {
        // SAFETY: completed and not taken: the stage holds the output,
        // moved out once here into the `F::Output` slot.
        unsafe {
            let v = ManuallyDrop::take(&mut Self::stage(ptr).output);
            out.cast::<F::Output>().write(v)
        }
    }

    /// # Safety
    ///
    /// As `take_output`, without the slot.
    unsafe fn drop_output(ptr: NonNull<()>) {
        // SAFETY: per the contract, the stage holds the output; dropped
        // once, here.
        unsafe { drop_quietly(&mut Self::stage(ptr).output) };
    }

    /// # Safety
    ///
    /// No owner is left (`unowned`), and the stage was emptied.
    unsafe fn free(ptr: NonNull<()>) {
        let cell = ptr.cast::<Self>().as_ptr();
        // SAFETY: the block came from `blocks::allocate` with this layout
        // in `spawn`, its header initialised, and nothing refers to it any
        // more. The stage has no drop glue (a union of `ManuallyDrop`s):
        // only the header drops, then the block goes back.
        unsafe {
            std::ptr::drop_in_place(&raw mut (*cell).header);
            blocks::release(ptr.cast(), std::alloc::Layout::new::<Self>());
        }
    }
}

/// The last owner of a task whose future is still there went (its last
/// waker, or its handle), perhaps on another thread: the future must be
/// dropped on its own. The task takes its token back, closed, and goes to
/// its runtime, whose run drops the future instead of polling it.
/// (Unreachable through corio's own tasks: a pending one is registered with
/// its runtime, whose waker is the last to go, with the future.)
///
/// # Safety
///
/// `ptr` is a live task that nothing owns any more
/// (`unowned`), neither completed nor closed.
#[cold]
unsafe fn orphaned(ptr: NonNull<()>) {
    // SAFETY: per the contract: nothing else can reach the state.
    let head = unsafe { head(ptr) };
    head.state.fetch_or(SCHEDULED | CLOSED, Ordering::AcqRel);
    // SAFETY: the token was just taken.
    unsafe { (head.vtable.schedule)(ptr) };
}

/// Frees a task nothing owns, or hands it to [`orphaned`] when its future
/// is still there.
///
/// # Safety
///
/// `ptr` is a task that the caller's last step left with the state
/// `state`, `unowned`.
unsafe fn release(ptr: NonNull<()>, state: usize) {
    if state & (COMPLETED | CLOSED) == 0 {
        // SAFETY: per the contract.
        unsafe { orphaned(ptr) }
    } else {
        // SAFETY: no owner is left and the stage is empty (completed:
        // the output was taken or dropped before the last owner went;
        // closed: the future was dropped).
        unsafe { (head(ptr).vtable.free)(ptr) }
    }
}

/// Drops a future (in place: it is pinned) or an output. A panic in its
/// `Drop` is swallowed: the runtime goes on, as after a panicking poll.
///
/// # Safety
///
/// `value` holds a live value, not used again after this.
unsafe fn drop_quietly<T>(value: &mut ManuallyDrop<T>) {
    // SAFETY: per the contract.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(value) }));
}

/// Takes the join handle's waker, if it left one.
fn take_awaiter<S>(header: &Header<S>) -> Option<Waker> {
    if header.state.load(Ordering::Acquire) & AWAITER == 0 {
        return None;
    }
    let state = lock(header);
    // SAFETY: `LOCKED` is held.
    let w = (state & AWAITER != 0)
        .then(|| unsafe { (*header.awaiter.get()).take() })
        .flatten();
    header
        .state
        .fetch_and(!(LOCKED | AWAITER), Ordering::Release);
    w
}

/// Takes the `LOCKED` bit; returns the state seen when it was taken.
fn lock<S>(header: &Header<S>) -> usize {
    let mut spins = 0u32;
    loop {
        let state = header.state.fetch_or(LOCKED, Ordering::Acquire);
        if state & LOCKED == 0 {
            return state;
        }
        backoff(&mut spins);
    }
}

/// Waits a little for another thread's `LOCKED`: held for a few
/// instructions, unless that thread was preempted (then it gets to run).
fn backoff(spins: &mut u32) {
    #[cfg(all(test, corio_loom))]
    {
        // The model runs one thread at a time: let another one go.
        let _ = spins;
        loom::thread::yield_now();
    }
    #[cfg(not(all(test, corio_loom)))]
    {
        *spins += 1;
        if *spins < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// A task's runnable token: running it polls the future once; dropping it
/// unrun drops the future (runtime shutdown).
pub(crate) struct Runnable<S> {
    ptr: NonNull<()>,
    _s: PhantomData<S>,
}

// SAFETY: a runnable crosses threads only through its runtime's remote
// queue, which only that runtime's thread drains; the futures of tasks
// spawned from other threads are `Send` (see `task::spawn_onto`).
unsafe impl<S> Send for Runnable<S> {}

impl<S: Schedule> Runnable<S> {
    /// The task's metadata.
    #[inline(always)]
    pub(crate) fn metadata(&self) -> &TaskMeta<S> {
        // SAFETY: the token keeps the task alive.
        &unsafe { header::<S>(self.ptr) }.meta
    }

    /// Queues the task on its runtime.
    #[inline(always)]
    pub(crate) fn schedule(self) {
        S::schedule(self);
    }

    /// Polls the task once.
    #[inline(always)]
    pub(crate) fn run(self) {
        let this = ManuallyDrop::new(self);
        // SAFETY: the token (moved into the call) keeps the task alive, and
        // runnables are run on their task's thread.
        unsafe { (header::<S>(this.ptr).vtable.run)(this.ptr) }
    }
}

impl<S> Drop for Runnable<S> {
    fn drop(&mut self) {
        // SAFETY: the token keeps the task alive until its bit is cleared
        // below; it gives this thread the stage (no run is in progress).
        let header = unsafe { header::<S>(self.ptr) };
        header.state.fetch_or(CLOSED, Ordering::AcqRel);
        // SAFETY: the token is held; see `Runnable`'s `Send` impl for the thread.
        unsafe { (header.vtable.drop_future)(self.ptr) };
        let awaiter = take_awaiter(header);
        let prev = header.state.fetch_sub(SCHEDULED, Ordering::AcqRel);
        if unowned(prev - SCHEDULED) {
            // SAFETY: no owner is left.
            unsafe { (header.vtable.free)(self.ptr) };
        }
        if let Some(w) = awaiter {
            w.wake();
        }
    }
}

#[cfg(all(test, not(corio_loom)))]
mod tests;

#[cfg(all(test, corio_loom))]
mod loom_model;
