//! A task's wakers: one vtable per scheduler, a reference count in the
//! task's shared word.
//!
//! How it works: cloning adds a `REF`. Waking on the task's own thread
//! sets `SCHEDULED` in the local word if the task is idle and queues it
//! (unless it is running): plain loads and stores. Waking elsewhere sends a
//! notice (`notify`): `NOTIFIED` set in the shared word, a tagged runnable
//! in the runtime's remote queue; by value, the reference goes in the same
//! step. The last reference to go frees the task, or has its runtime look
//! at one nothing can wake any more (`release`).

use super::*;

/// The raw waker of the task at `ptr`.
///
/// Its vtable is the one the task's own vtable names, never a fresh
/// `&Wakers::<S>::VTABLE`: a generic constant may be duplicated across
/// codegen units, and two wakers of one task must compare equal in
/// `Waker::will_wake` (lists that keep one waker per task, the accept
/// waiters say, would otherwise grow with every poll).
///
/// # Safety
///
/// `ptr` is a live task.
#[inline(always)]
pub(super) unsafe fn raw_waker(ptr: NonNull<()>) -> RawWaker {
    // SAFETY: per the contract.
    RawWaker::new(ptr.as_ptr(), unsafe { head(ptr) }.vtable().waker)
}

/// The waker functions of tasks scheduled by `S` (generic, so a wake calls
/// the scheduler directly).
pub(super) struct Wakers<S>(PhantomData<S>);

impl<S: Schedule> Wakers<S> {
    pub(super) const VTABLE: RawWakerVTable = RawWakerVTable::new(
        clone_waker::<S>,
        wake::<S>,
        wake_by_ref::<S>,
        drop_waker::<S>,
    );
}

/// # Safety
///
/// `ptr` is a live task (its caller holds an owner).
pub(super) unsafe fn clone_waker<S: Schedule>(ptr: *const ()) -> RawWaker {
    // SAFETY: per the contract.
    let head = unsafe { head(NonNull::new_unchecked(ptr.cast_mut())) };
    let prev = head.shared.fetch_add(REF, Ordering::Relaxed);
    if prev > isize::MAX as usize {
        // Billions of wakers of one task: the count would overflow.
        std::process::abort();
    }
    RawWaker::new(ptr, head.vtable().waker)
}

/// Gives the runnable token of the task at `ptr` to its scheduler.
///
/// # Safety
///
/// The caller holds the token (set `SCHEDULED` itself, or ran the task
/// and found it set) and gives it up.
#[inline(always)]
pub(super) unsafe fn queue<S: Schedule>(ptr: NonNull<()>) {
    S::schedule(Runnable {
        ptr,
        _s: PhantomData,
    });
}

/// Wakes the task at `ptr` on its own thread: sets `SCHEDULED` unless it
/// is queued or finished, and queues it unless it is running.
///
/// # Safety
///
/// `ptr` is a live task, and this is its runtime's thread (`is_current`).
#[inline(always)]
pub(super) unsafe fn local_wake<S: Schedule>(ptr: NonNull<()>) {
    // SAFETY: per the contract.
    let head = unsafe { head(ptr) };
    let local = head.local();
    if local & (SCHEDULED | FINISHED) != 0 {
        return;
    }
    head.set_local(local | SCHEDULED);
    if local & RUNNING == 0 {
        // SAFETY: this call took the token.
        unsafe { queue::<S>(ptr) };
    }
}

/// Sends a notice to the runtime of the task at `ptr` (from any thread):
/// sets `NOTIFIED` unless it is set or the runtime side let go, taking
/// `refs` off the waker count in the same step, and queues the notice.
///
/// # Safety
///
/// `ptr` is a live task; the caller holds `refs` (0 or `REF`) of its
/// references, given up here.
pub(super) unsafe fn notify<S: Schedule>(ptr: NonNull<()>, refs: usize) {
    // SAFETY: per the contract.
    let head = unsafe { head(ptr) };
    let mut state = head.shared.load(Ordering::Acquire);
    loop {
        if state & (ATTACHED | NOTIFIED) != ATTACHED {
            // Finished, or a notice is on its way already.
            if refs != 0 {
                // SAFETY: the caller's reference is given up once, here.
                unsafe { drop_ref::<S>(ptr) };
            }
            return;
        }
        match head.shared.compare_exchange_weak(
            state,
            (state | NOTIFIED) - refs,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => break,
            Err(s) => state = s,
        }
    }
    // `NOTIFIED` keeps the task alive until the runtime takes the notice.
    S::schedule(Runnable::notice(ptr));
}

/// True when the calling thread runs the tasks of the task at `ptr`.
///
/// # Safety
///
/// `ptr` is a live task with scheduler `S`.
#[inline(always)]
unsafe fn on_own_thread<S: Schedule>(ptr: NonNull<()>) -> bool {
    // SAFETY: per the contract.
    unsafe { header::<S>(ptr) }.meta.scheduler().is_current()
}

/// # Safety
///
/// `ptr` is a live task (its caller holds an owner).
pub(super) unsafe fn wake_by_ref<S: Schedule>(ptr: *const ()) {
    // SAFETY: per the contract.
    let ptr = unsafe { NonNull::new_unchecked(ptr.cast_mut()) };
    // SAFETY: per the contract, and checked to be on the task's thread.
    unsafe {
        if on_own_thread::<S>(ptr) {
            local_wake::<S>(ptr);
        } else {
            notify::<S>(ptr, 0);
        }
    }
}

/// # Safety
///
/// `ptr` is a task this waker holds a reference of (given up here).
pub(super) unsafe fn wake<S: Schedule>(ptr: *const ()) {
    // SAFETY: the waker's reference keeps the task alive.
    let nn = unsafe { NonNull::new_unchecked(ptr.cast_mut()) };
    // SAFETY: as above; the reference is given up once, after the wake on
    // the task's thread, or with the notice elsewhere.
    unsafe {
        if on_own_thread::<S>(nn) {
            local_wake::<S>(nn);
            drop_ref::<S>(nn);
        } else {
            notify::<S>(nn, REF);
        }
    }
}

/// # Safety
///
/// `ptr` is a task this waker holds a reference of (given up here).
pub(super) unsafe fn drop_waker<S: Schedule>(ptr: *const ()) {
    // SAFETY: per the contract.
    unsafe { drop_ref::<S>(NonNull::new_unchecked(ptr.cast_mut())) }
}

/// Gives up one reference of the task at `ptr`.
///
/// # Safety
///
/// The caller holds a reference of the task, given up here.
#[inline(always)]
unsafe fn drop_ref<S: Schedule>(ptr: NonNull<()>) {
    // SAFETY: the reference keeps the task alive until it is given up.
    let head = unsafe { head(ptr) };
    // SAFETY: as above, while `busy` is asked (before the step).
    let mut busy = unsafe { busy_here::<S>(ptr) };
    let mut state = head.shared.load(Ordering::Relaxed);
    loop {
        let (next, notice) = losing(state, REF, &mut busy);
        match head
            .shared
            .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
        {
            // SAFETY: this step left the task so.
            Ok(_) => return unsafe { after_losing::<S>(ptr, next, notice) },
            Err(s) => state = s,
        }
    }
}
