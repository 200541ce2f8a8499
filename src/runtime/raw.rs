//! The task allocation: a header of two state words, then the future or its
//! output.
//!
//! How it works: a task is one heap block, a [`Header`] (the two words, the
//! task's scheduler and the join handle's waker) followed by the stage: the
//! future while it runs, then its output until the handle takes it. The
//! header is four words: a task of an `async {}` block is 56 bytes, a
//! 64-byte allocator chunk (measured: 16 bytes more cost spawn-many 9 ns
//! and 16 bytes of memory per task). So the abort flag is a bit of the
//! shared word, what a task's observers read (its spawn location, its
//! tracking) sits in the runtime's future wrapper, and the handle's waker
//! takes one word (see [`AwaiterSlot`]).
//!
//! The state is split by who may touch it. The **local word** (the vtable
//! pointer with four bits below it: `SCHEDULED`, `RUNNING`, `FINISHED`,
//! `AWAITED`) is
//! written only by the task's own runtime thread (the one holding its core,
//! or the runnable token), with plain loads and stores: a wake-up on that
//! thread, a run's start and its end are no locked instruction at all. The
//! **shared word** holds what other threads may change: the waker count of
//! other threads (`REF` each; wakers taken and given up on the task's own
//! thread count in the local word's top 16 bits, see `waker.rs`), the join
//! handle's bits (`HANDLE`, `AWAITER`, `LOCKED`,
//! `COMPLETED`, `CLOSED`), `ATTACHED` (the runtime side still holds the block:
//! the future is there, or the completing run is still at it),
//! `NOTIFIED` (a wake-up from another thread is on its way) and `ABORTED`
//! (the handle asked the task to stop; no step but the abort changes it).
//! Whoever moves the
//! shared word to "no owner left" frees the block.
//!
//! A waker used on another thread never touches the local word: it sets
//! `NOTIFIED` and sends a *notice* (a runnable with a tag bit) through the
//! runtime's remote queue; the runtime's thread takes the notice and wakes
//! the task there. Since a waker may not know where it is called, each wake
//! asks the scheduler whether this thread runs its tasks now
//! ([`Schedule::is_current`]).
//!
//! It replaces `async-task` (same design: a state word, a waker vtable, a
//! join handle that may live on another thread) where a runtime that polls
//! each task on one thread can do less. Measured by callgrind: async-task's
//! `run` and `wake` were 212 of corio's 1,856 instructions per 64-byte echo;
//! on this VM a locked instruction costs 6.5–7.3 ns, so a run or a local
//! wake-up without one matters as much as instructions.
//!
//! The join handle's waker sits behind a lock bit (`LOCKED`) in the shared
//! word: the handle replaces it and a closer takes it under the bit, for a
//! few instructions each. The run that completes the task takes it without
//! the bit: its completing step clears `AWAITER` (the handle leaves the
//! slot alone from then on) and keeps `ATTACHED`, and the run keeps
//! `RUNNING` in the local word until the waker is out; clearing `RUNNING`
//! with a release store hands `ATTACHED` to the handle, which waits for
//! that store and clears `ATTACHED` in the step that takes the output. An
//! awaited task so costs three locked instructions in all (the handle's
//! store, the completing step, the handle's last step), not four; two when
//! no waker of the task is left as the handle takes the output (the common
//! `spawn(..).await`): nothing else can change the shared word then, so
//! the handle frees the block without a last step. Likewise a task that
//! completes with no handle, no waker and no notice left is freed by its
//! run with no locked instruction at all.
//!
//! A handle polled on its task's own thread stores its waker with no
//! locked step at all: it writes the slot and sets `AWAITED` in the local
//! word, which the completing run reads as it reads `AWAITER`. Nothing
//! else can touch the slot meanwhile: the run is not in progress (this
//! thread is polling the handle), and no other thread can close the task
//! while its runtime is not shut down ([`Schedule::owns_here`]). The bit is
//! never cleared, so a handle that moves to another thread sees it there
//! and from then on goes through `LOCKED` (which publishes the waker as
//! `AWAITER`). The common `spawn(..).await` so costs one locked
//! instruction: the completing step.

#[cfg(all(test, corio_loom))]
use loom::sync::atomic::{AtomicUsize, Ordering};
use std::cell::UnsafeCell;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
#[cfg(not(all(test, corio_loom)))]
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

mod awaiter;
mod blocks;
mod join;
mod runnable;
mod waker;

use self::awaiter::AwaiterSlot;
pub(crate) use self::join::{AbortRaw, JoinRaw};
pub(crate) use self::runnable::Runnable;
pub(crate) use self::waker::Wakers;
use self::waker::{clone_waker, queue, raw_waker, wake_by_ref};

// The local word: the local bits (below the vtable's address, which is
// 16-aligned), the address (below 2^48, as user-space addresses are on the
// platforms corio runs on: checked at spawn), and above it the local waker
// count, an `i16`.

/// A runnable token exists (queued, or about to be): set by the wake that
/// finds the task idle, cleared by the run that takes the token. Set while
/// `RUNNING`, it tells the run to queue the task again when its poll ends.
const SCHEDULED: usize = 1 << 0;
/// The runnable token is being polled.
const RUNNING: usize = 1 << 1;
/// The future is gone (completed or dropped): nothing runs it again, and
/// the local waker count was moved to the shared word.
const FINISHED: usize = 1 << 2;
/// The join handle stored its waker in `Header::awaiter` on the task's
/// thread, with no locked step (the shared word's `AWAITER` is left clear).
/// Set by the handle, on the task's thread only (see [`Schedule::owns_here`]),
/// and never cleared: from then on, another thread touches the slot only
/// under `LOCKED`, and the run that completes the task takes the waker as it
/// takes one under `AWAITER`.
const AWAITED: usize = 1 << 3;
const LOCAL_BITS: usize = SCHEDULED | RUNNING | FINISHED | AWAITED;
/// Where the local waker count starts.
const LOCAL_SHIFT: u32 = 48;
/// One waker counted in the local word.
const LOCAL_REF: usize = 1 << LOCAL_SHIFT;
/// The vtable's address in the local word.
const VTABLE_BITS: usize = (LOCAL_REF - 1) & !LOCAL_BITS;

/// The local waker count: references taken on the task's thread, less those
/// given up there (negative when more were given up there than taken: the
/// rest were taken elsewhere and counted in the shared word).
#[inline(always)]
fn local_refs(local: usize) -> isize {
    (local as isize) >> LOCAL_SHIFT
}

/// The shared waker count (negative while the task is attached, when
/// references counted locally were given up on other threads).
#[inline(always)]
fn shared_refs(shared: usize) -> isize {
    (shared as isize) >> REF.trailing_zeros()
}

// The shared word's bits.

/// The runtime side holds the block: the future is there, or the run that
/// completed it is still handing the output over.
const ATTACHED: usize = 1 << 0;
/// A notice (a wake-up from another thread) is on its way to the runtime.
const NOTIFIED: usize = 1 << 1;
/// The future returned `Ready`; its output is in the stage until taken.
const COMPLETED: usize = 1 << 2;
/// The future is gone without an output (a runnable dropped: shutdown), or
/// the output was taken or dropped.
const CLOSED: usize = 1 << 3;
/// The join handle is alive.
const HANDLE: usize = 1 << 4;
/// The join handle's waker is stored in `Header::awaiter`.
const AWAITER: usize = 1 << 5;
/// Someone is reading or writing `Header::awaiter`.
const LOCKED: usize = 1 << 6;
/// With `NOTIFIED`: the notice only asks the runtime to look whether the
/// task can still be woken (a reference that may have been the last went
/// elsewhere), not to run it. A wake-up that finds it clears it.
const CHECK: usize = 1 << 7;
/// The task was asked to stop ([`request_abort`]): set once, never
/// cleared; the runtime's future wrapper reads it before each poll.
const ABORTED: usize = 1 << 8;
/// One waker: the count lives in the bits from here up.
const REF: usize = 1 << 9;
const REFS: usize = !(REF - 1);

/// True when nothing owns the task any more: whoever made the shared word
/// so frees it.
#[inline(always)]
fn unowned(shared: usize) -> bool {
    shared & (REFS | ATTACHED | NOTIFIED | HANDLE) == 0
}

/// True when nothing outside the runtime can wake the task any more (no
/// waker, local or shared, no handle, no notice on its way): if it is idle,
/// it never will be. Only on the task's thread (it reads the local count).
#[inline(always)]
fn unreachable(local: usize, shared: usize) -> bool {
    shared & (NOTIFIED | HANDLE) == 0 && local_refs(local) + shared_refs(shared) == 0
}

/// Where a woken task goes: the runtime's queue.
pub(crate) trait Schedule: Sized + 'static {
    /// Queues `runnable` to be run on its task's own thread.
    fn schedule(runnable: Runnable<Self>);

    /// True when the calling thread is the one running this scheduler's
    /// tasks now (it may touch their local words).
    fn is_current(&self) -> bool;

    /// Queues `runnable` on the calling thread, which runs its task
    /// (`is_current` is known true: no need to ask again).
    fn schedule_here(runnable: Runnable<Self>);

    /// True when the calling thread runs this scheduler's tasks now and
    /// no other thread can drop one of their runnables (which closes the
    /// task and takes the handle's waker): the scheduler is not shut down.
    /// The join handle then stores its waker with no locked step
    /// (`AWAITED`).
    fn owns_here(&self) -> bool {
        self.is_current()
    }

    /// The waker functions of this scheduler's tasks: a `static` holding
    /// `Wakers::<Self>::VTABLE`, so that every waker of every task of the
    /// scheduler has one vtable address (a constant may have several, one
    /// per codegen unit). Two wakers of one task then compare equal
    /// (`Waker::will_wake`), and a join handle keeps an awaiting waker with
    /// this vtable as a bare task pointer (one word, no allocation).
    const WAKERS: &'static RawWakerVTable;
}

/// The start of every task allocation, the same whatever its scheduler:
/// what a waker needs.
#[repr(C)]
struct Head {
    /// What any thread may change (see the module's notes).
    shared: AtomicUsize,
    /// The vtable's address with the local bits below it and the local
    /// waker count above: written only by the task's runtime thread
    /// (relaxed loads and stores, no locked instruction); other threads
    /// read only the vtable from it.
    local: AtomicUsize,
}

impl Head {
    /// The task's vtable.
    #[inline(always)]
    fn vtable(&self) -> &'static TaskVTable {
        let p = (self.local.load(Ordering::Relaxed) & VTABLE_BITS) as *const TaskVTable;
        // SAFETY: the word holds a `&'static TaskVTable` (16-aligned, see
        // its type; below 2^48, checked in `spawn`) with only the
        // local bits and the local count added.
        unsafe { &*p }
    }

    /// The local bits.
    ///
    /// Only on the task's runtime thread (or by the token's holder).
    #[inline(always)]
    fn local(&self) -> usize {
        self.local.load(Ordering::Relaxed)
    }

    /// Sets the local word (`word` is what `local` returned, changed in
    /// its local bits or count only).
    ///
    /// Only on the task's runtime thread (or by the token's holder).
    #[inline(always)]
    fn set_local(&self, word: usize) {
        self.local.store(word, Ordering::Relaxed);
    }
}

/// The task's header: [`Head`], then what depends on the scheduler.
#[repr(C)]
struct Header<S> {
    head: Head,
    /// Where the task's runnable goes when it is woken.
    scheduler: S,
    /// The join handle's waker (under `LOCKED`, present when `AWAITER`).
    awaiter: AwaiterSlot,
}

impl<S> std::ops::Deref for Header<S> {
    type Target = Head;

    #[inline(always)]
    fn deref(&self) -> &Head {
        &self.head
    }
}

impl<S: Schedule> Header<S> {
    /// True when the calling thread runs this task's runtime now (it may
    /// touch the local word).
    #[inline(always)]
    fn on_own_thread(&self) -> bool {
        self.scheduler.is_current()
    }
}

/// What depends on the future's type and the scheduler. Aligned to 16: the
/// local word keeps four bits below its address.
#[repr(align(16))]
struct TaskVTable {
    /// The task's waker functions (see [`raw_waker`]).
    waker: &'static RawWakerVTable,
    /// Polls the future once (consumes the runnable token).
    run: unsafe fn(NonNull<()>),
    /// Takes a notice (a wake-up from another thread) on the task's thread.
    notice: unsafe fn(NonNull<()>),
    /// Drops the future (a runnable dropped unrun).
    drop_future: unsafe fn(NonNull<()>),
    /// Frees the allocation (dropping what is left in it).
    free: unsafe fn(NonNull<()>),
    /// Where the stage (the future, then the output) starts in the block:
    /// the handle, which knows the output's type but not the future's,
    /// takes the output from there with no call.
    stage: usize,
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
/// not drop the stage: each path empties it before). `repr(C)`: both start
/// where the stage does (the handle and the observer find them there by
/// the vtable's `stage` offset alone).
#[repr(C)]
union Stage<F: Future> {
    future: ManuallyDrop<F>,
    output: ManuallyDrop<F::Output>,
}

/// Creates a task of `future` (which may look for an abort through the
/// waker it is polled with: [`abort_requested`]). Returns the runnable to queue first
/// and the join handle. Inlined into the spawn (9 instructions fewer per
/// spawn under callgrind: the scheduler and the future are written straight
/// into the block, not passed through the stack).
#[inline(always)]
pub(crate) fn spawn<F, S>(scheduler: S, future: F) -> (Runnable<S>, JoinRaw<F::Output, S>)
where
    F: Future,
    S: Schedule,
{
    let vtable = &Alloc::<F, S>::VTABLE as *const TaskVTable as usize;
    assert!(
        vtable & !VTABLE_BITS == 0,
        "corio: a task vtable at {vtable:#x} (above 2^48) leaves no room for the local waker count"
    );
    let cell = blocks::allocate(std::alloc::Layout::new::<Alloc<F, S>>())
        .cast::<Alloc<F, S>>()
        .as_ptr();
    // SAFETY: `cell` is a fresh (or kept, unused), aligned, uninitialised
    // block with room for an `Alloc<F, S>` (`blocks` rounds the size up,
    // never down); each field is written once before anything reads it.
    unsafe {
        (&raw mut (*cell).header).write(Header {
            head: Head {
                shared: AtomicUsize::new(ATTACHED | HANDLE),
                local: AtomicUsize::new(vtable | SCHEDULED),
            },
            scheduler,
            awaiter: AwaiterSlot::new(),
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

/// True once the task being polled was asked to stop, found through the
/// waker its run polls it with (the task's own: its data is the block's
/// address, with the whole block's provenance, which a pointer made from
/// the future's own reference would not have).
///
/// # Safety
///
/// `cx` is the context a task's run (`Alloc::run`) polls its future with,
/// or a copy of its waker (a waker of the polled task, scheduler `S`).
#[inline(always)]
pub(crate) unsafe fn abort_requested<S: Schedule>(cx: &Context<'_>) -> bool {
    let waker = cx.waker();
    debug_assert!(std::ptr::eq(waker.vtable(), S::WAKERS));
    // SAFETY: per the contract, the data is a live task, which starts with
    // its `Head`.
    let head = unsafe { &*waker.data().cast::<Head>() };
    head.shared.load(Ordering::Acquire) & ABORTED != 0
}

/// Asks the task at `ptr` to stop (any thread): sets `ABORTED`, which its
/// runtime's future wrapper reads before each poll. The caller wakes it.
///
/// # Safety
///
/// `ptr` is a live task (the caller holds an owner: the handle, a waker).
pub(crate) unsafe fn request_abort(ptr: NonNull<()>) {
    // SAFETY: per the contract.
    unsafe { head(ptr) }
        .shared
        .fetch_or(ABORTED, Ordering::Release);
}

/// The size of the block of a task of `F` with scheduler `S` (before the
/// allocator rounds it up).
#[cfg(test)]
pub(crate) fn block_size<F: Future, S>() -> usize {
    std::mem::size_of::<Alloc<F, S>>()
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
        waker: S::WAKERS,
        run: Self::run,
        notice: Self::notice,
        drop_future: Self::drop_future,
        free: Self::free,
        stage: std::mem::offset_of!(Self, stage),
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
        let local = header.local();
        debug_assert!(local & (SCHEDULED | RUNNING | FINISHED) == SCHEDULED);
        // The token moves from `SCHEDULED` to `RUNNING` (the token's
        // holder alone writes the local word).
        header.set_local(local - SCHEDULED + RUNNING);
        // SAFETY: the vtable's functions expect a pointer to a live task
        // with scheduler `S`, as this is; the waker is not dropped (no
        // reference was taken for it).
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw_waker::<S>(ptr)) });
        let mut cx = Context::from_waker(&waker);
        // SAFETY: the running token gives this thread the stage.
        let stage = unsafe { Self::stage(ptr) };
        // SAFETY: not finished: the stage holds the future, which stays in
        // place until it is dropped there (never moved).
        let polled = unsafe { Pin::new_unchecked(&mut *stage.future) }.poll(&mut cx);
        match polled {
            Poll::Pending => {
                let local = header.local();
                header.set_local(local - RUNNING);
                if local & SCHEDULED != 0 {
                    // Woken while running: the token goes back to the queue.
                    // SAFETY: the running token became that one.
                    unsafe { queue::<S>(ptr) };
                } else if unreachable(local, header.shared.load(Ordering::Acquire)) {
                    // Nobody can wake it again (no waker, no handle, no
                    // notice): its future goes now, on its own thread.
                    // SAFETY: the stage holds the future, dropped once
                    // here; this thread owns the local word.
                    unsafe { Self::drop_unreachable(ptr) };
                }
            }
            Poll::Ready(out) => {
                // SAFETY: the stage holds the future, dropped once here.
                unsafe { drop_quietly(&mut stage.future) };
                stage.output = ManuallyDrop::new(out);
                // A wake-up during the last poll is moot: nothing runs it.
                // The local waker count moves to the shared word in the
                // step that completes the task (with a handle) or lets go
                // of the block (without).
                let fold = finish(header, RUNNING | SCHEDULED);
                let finished = header.local();
                // The handle stored its waker here with no locked step: it
                // is taken as one stored under `AWAITER` is.
                let awaited = finished & AWAITED;
                let mut state = header.shared.load(Ordering::Acquire);
                if fold == 0 && state & (HANDLE | REFS | NOTIFIED | LOCKED | AWAITER) == 0 {
                    // Nothing else holds the task: no handle (it let go
                    // before this load), no waker (none counted here or
                    // there, and none can be made from a finished task),
                    // no notice. Nobody can see the shared word any more:
                    // the output goes and the block with it, with no
                    // locked instruction.
                    debug_assert!(state & ATTACHED != 0);
                    // SAFETY: the stage holds the output, dropped once here.
                    unsafe { drop_quietly(&mut stage.output) };
                    // SAFETY: no owner is left but this run.
                    unsafe { Self::free(ptr) };
                    return;
                }
                // One step marks it completed and, by what it finds: with
                // a handle and no waker of its, lets go at once (the handle
                // may take the output and go as soon as it sees it); with
                // the handle's waker stored (`AWAITER`, or `AWAITED` here),
                // takes the waker's slot (clears `AWAITER`: the handle
                // touches the slot no more, nor does anyone under `LOCKED`
                // once `COMPLETED` is set) and keeps
                // `ATTACHED` and `RUNNING` until the waker is out, then
                // hands `ATTACHED` to the handle by clearing `RUNNING` (a
                // plain release store: the handle waits for it and lets go
                // for both); with no handle, keeps `ATTACHED` while the
                // output is dropped here.
                let mut spins = 0;
                let next = loop {
                    // The step waits out `LOCKED` (the handle storing or
                    // taking its waker) by expecting the word without it:
                    // each failed try reads the latest word.
                    state &= !LOCKED;
                    let mut next = state | COMPLETED;
                    let mut local = finished;
                    if state & HANDLE == 0 {
                        next |= CLOSED;
                    } else if state & AWAITER != 0 || awaited != 0 {
                        next = (next & !AWAITER).wrapping_add(fold);
                        // Seen by the handle only after this step: it
                        // waits while `RUNNING` is set.
                        local |= RUNNING;
                    } else {
                        next = (next & !ATTACHED).wrapping_add(fold);
                    }
                    // (A step that failed may have set `RUNNING`.)
                    header.set_local(local);
                    match header.shared.compare_exchange_weak(
                        state,
                        next,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => break next,
                        Err(s) => {
                            if s & LOCKED != 0 {
                                backoff(&mut spins);
                            }
                            state = s;
                        }
                    }
                };
                if next & ATTACHED == 0 {
                    // The handle (still there: `HANDLE` was set) owns the
                    // output and the block now.
                    return;
                }
                if next & CLOSED == 0 {
                    // The handle's waker: the slot is this run's now (the
                    // step cleared `AWAITER` and set `COMPLETED`; the handle
                    // waits for `RUNNING`).
                    // SAFETY: as just said, nobody else touches the slot.
                    let awaiter = unsafe { header.awaiter.take(S::WAKERS) };
                    // `ATTACHED` goes to the handle with this store: it may
                    // free the block at once, which is not touched again.
                    header.local.store(finished, Ordering::Release);
                    if let Some(w) = awaiter {
                        w.wake();
                    }
                    return;
                }
                // The handle went first, taking its waker with it.
                debug_assert!(next & AWAITER == 0);
                // SAFETY: no handle will take the output: it goes here.
                unsafe { drop_quietly(&mut stage.output) };
                // `ATTACHED` is set, and only this run clears it.
                if let_go(header, fold, ATTACHED) {
                    // SAFETY: no owner is left.
                    unsafe { Self::free(ptr) };
                }
            }
        }
    }

    /// Takes a notice on the task's thread: clears `NOTIFIED`, then wakes
    /// the task here (running it at once if it was idle), or, for a check,
    /// drops a future nobody can wake any more; frees a task nothing owns.
    ///
    /// # Safety
    ///
    /// The caller holds the notice (`NOTIFIED` set by the thread that sent
    /// it), on the task's thread.
    #[cold]
    unsafe fn notice(ptr: NonNull<()>) {
        // SAFETY: `NOTIFIED` keeps the allocation alive until cleared.
        let header = unsafe { header::<S>(ptr) };
        let prev = take_notice(header);
        let next = prev & !(NOTIFIED | CHECK);
        if unowned(next) {
            // SAFETY: the notice was the last owner (the task finished
            // meanwhile and everything else let go).
            return unsafe { Self::free(ptr) };
        }
        let local = header.local();
        if next & ATTACHED == 0 || local & (SCHEDULED | RUNNING | FINISHED) != 0 {
            // Finished (another owner holds the block), or queued already.
            return;
        }
        if prev & CHECK != 0 {
            if unreachable(local, next) {
                // Sent by the last waker or the handle as it went: the
                // future goes without a poll.
                // SAFETY: idle, not finished: the stage holds the future,
                // and this thread owns the local word.
                unsafe { Self::drop_unreachable(ptr) };
            }
            // Else still reachable: nothing to do.
            return;
        }
        // A wake-up: the task is polled once even if it was the last way
        // to wake it (the run's end drops a future nobody can wake).
        // Idle: this call is as good as a queued token, so the task runs
        // now (one run for the wake-up, as on its own thread).
        header.set_local(local | SCHEDULED);
        // SAFETY: the token was just taken, on the task's thread.
        unsafe { Self::run(ptr) }
    }

    /// Drops the future of an idle task nothing can wake (no waker, no
    /// handle), and lets go of the block.
    ///
    /// # Safety
    ///
    /// On the task's thread, the task idle (neither queued nor running) and
    /// not finished.
    #[cold]
    unsafe fn drop_unreachable(ptr: NonNull<()>) {
        // SAFETY: per the contract.
        let header = unsafe { header::<S>(ptr) };
        let fold = finish(header, 0);
        // SAFETY: per the contract the stage holds the future; nothing can
        // run it: it is dropped once, here.
        unsafe { drop_quietly(&mut Self::stage(ptr).future) };
        if let_go(header, fold, ATTACHED) {
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
    /// No owner is left (`unowned`), and the stage was emptied.
    unsafe fn free(ptr: NonNull<()>) {
        let cell = ptr.cast::<Self>().as_ptr();
        // Whoever had the handle's waker took it (to wake it, or back)
        // before letting go; in the model this access also fails a run
        // that did not end every other one's use of the slot first.
        // SAFETY: nothing else owns the block any more.
        let left = unsafe { (*cell).header.awaiter.take(S::WAKERS) };
        if cfg!(any(debug_assertions, all(test, corio_loom))) {
            assert!(
                left.is_none(),
                "corio: a task freed with its handle's waker"
            );
        }
        drop(left);
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

/// Marks the task finished in its local word (clearing `clear`) and empties
/// the local waker count; returns that count as an amount to add to the
/// shared word (in the step that clears `ATTACHED`: from then on, wakers
/// of the task count in the shared word only).
///
/// Only on the task's thread, by the runtime side.
#[inline(always)]
fn finish(head: &Head, clear: usize) -> usize {
    let local = head.local();
    head.set_local((local & VTABLE_BITS) | (local & LOCAL_BITS & !clear) | FINISHED);
    (local_refs(local) as usize).wrapping_mul(REF)
}

/// The runtime side lets go: one step takes `done` (bits it holds, with
/// `ATTACHED`) off the shared word and adds `fold` (the local count
/// [`finish`] emptied). True when that left nothing owning the task.
#[inline(always)]
fn let_go(head: &Head, fold: usize, done: usize) -> bool {
    let step = fold.wrapping_sub(done);
    unowned(
        head.shared
            .fetch_add(step, Ordering::AcqRel)
            .wrapping_add(step),
    )
}

/// Clears `NOTIFIED` and `CHECK` (a notice taken, or dropped unrun);
/// returns the shared word from before.
#[inline(always)]
fn take_notice(head: &Head) -> usize {
    head.shared.fetch_and(!(NOTIFIED | CHECK), Ordering::AcqRel)
}

/// The shared word after `state` loses `gone` (a `REF`, or `HANDLE`), and
/// whether the step sends a notice. When it may leave an unfinished task
/// that nothing can wake any more, the step sets `NOTIFIED` too, and the
/// notice has the runtime drop the future if the task is idle (on its own
/// thread, and not inside whatever dropped the last waker). Setting
/// `NOTIFIED` in the same step keeps the block alive for the notice: a step
/// after it could find the block freed. `lost(next)` decides (see
/// [`lost_here`]). (Unreachable through corio's own tasks: a pending one is
/// registered with its runtime, whose waker is the last to go, with the
/// future.)
#[inline(always)]
fn losing(state: usize, gone: usize, lost: &mut impl FnMut(usize) -> bool) -> (usize, bool) {
    let next = state.wrapping_sub(gone);
    if next & (ATTACHED | COMPLETED | CLOSED | NOTIFIED | HANDLE) == ATTACHED && lost(next) {
        (next | NOTIFIED | CHECK, true)
    } else {
        (next, false)
    }
}

/// `losing`'s `lost` for the task at `ptr`: on the task's own thread, true
/// when the task is idle and no waker is left (local and shared counts
/// together); elsewhere, where the local count cannot be read, true when
/// the shared count is not above zero (the notice then looks).
///
/// # Safety
///
/// `ptr` is a live task with scheduler `S`, alive while the result is used.
unsafe fn lost_here<S: Schedule>(ptr: NonNull<()>) -> impl FnMut(usize) -> bool {
    let mut here = None;
    move |next| {
        // SAFETY: per the contract.
        let header = unsafe { header::<S>(ptr) };
        if *here.get_or_insert_with(|| header.on_own_thread()) {
            let local = header.local();
            local & (SCHEDULED | RUNNING | FINISHED) == 0 && unreachable(local, next)
        } else {
            shared_refs(next) <= 0
        }
    }
}

/// Ends a step that took an owner away (by `losing`) and left the shared
/// word `next`: frees a task nothing owns, or sends the notice the step
/// decided on.
///
/// # Safety
///
/// `ptr` is a task the caller's step left so (it may be freed here).
#[inline(always)]
unsafe fn after_losing<S: Schedule>(ptr: NonNull<()>, next: usize, notice: bool) {
    if notice {
        // `NOTIFIED` (set by the step) keeps the task alive until the
        // runtime takes the notice.
        S::schedule(Runnable::notice(ptr));
    } else if unowned(next) {
        // SAFETY: no owner is left and the stage is empty (the runtime side
        // empties it before it lets go; the handle takes or drops the
        // output before it does).
        unsafe { (head(ptr).vtable().free)(ptr) }
    }
}

/// Drops a future (in place: it is pinned) or an output. A panic in its
/// `Drop` is swallowed: the runtime goes on, as after a panicking poll.
///
/// # Safety
///
/// `value` holds a live value, not used again after this.
///
/// Inlined: a call per completed task cost 9 instructions more per spawn +
/// join under callgrind (the drop of a finished `async` block is a check).
#[inline(always)]
unsafe fn drop_quietly<T>(value: &mut ManuallyDrop<T>) {
    // SAFETY: per the contract.
    let _ = catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(value) }));
}

/// Takes the join handle's waker, if it left one (the handle as it goes,
/// or a closer). Not one stored on the task's thread (`AWAITED`) once the
/// task completed: the completing run takes that one.
///
/// `wakers` is the task's scheduler's waker vtable (`S::WAKERS`).
fn take_awaiter<S>(header: &Header<S>, wakers: &'static RawWakerVTable) -> Option<Waker> {
    let state = header.shared.load(Ordering::Acquire);
    // A handle that stored its waker with `AWAITED` and came here since
    // was sent after that store, which this load sees (the bit is never
    // cleared).
    let awaited =
        state & (AWAITER | COMPLETED) == 0 && header.local.load(Ordering::Acquire) & AWAITED != 0;
    if state & AWAITER == 0 && !awaited {
        return None;
    }
    let state = lock(header);
    let stored = state & AWAITER != 0 || (awaited && state & COMPLETED == 0);
    // SAFETY: `LOCKED` is held, so no run completes the task meanwhile
    // (its completing step waits for the bit), and the handle stores
    // without the lock only on the task's thread while no other thread
    // can close the task (`owns_here`): the slot is this thread's.
    let w = stored
        .then(|| unsafe { header.awaiter.take(wakers) })
        .flatten();
    header
        .shared
        .fetch_and(!(LOCKED | AWAITER), Ordering::Release);
    w
}

/// Takes the `LOCKED` bit; returns the state seen when it was taken.
fn lock<S>(header: &Header<S>) -> usize {
    let mut spins = 0u32;
    loop {
        let state = header.shared.fetch_or(LOCKED, Ordering::Acquire);
        if state & LOCKED == 0 {
            return state;
        }
        backoff(&mut spins);
    }
}

/// Waits until the run that completed the task with the handle's waker
/// stored has taken it (it keeps `RUNNING` set until then, and `ATTACHED`
/// for the handle to clear); from then on the block is the handle's.
///
/// On any thread: a release store ends the wait (no other store to the
/// local word follows it). The first look is inline: on the task's own
/// thread the run is always done by then.
#[inline(always)]
fn wait_for_run(head: &Head) {
    if head.local.load(Ordering::Acquire) & RUNNING != 0 {
        spin_for_run(head);
    }
}

/// `wait_for_run`'s wait, while the run on another thread is still taking
/// the waker out.
#[cold]
#[inline(never)]
fn spin_for_run(head: &Head) {
    let mut spins = 0u32;
    while head.local.load(Ordering::Acquire) & RUNNING != 0 {
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

#[cfg(all(test, not(corio_loom)))]
mod tests;

#[cfg(all(test, corio_loom))]
mod loom_model;
