//! A task's wakers: one vtable per scheduler, a reference count in the
//! task's state word.
//!
//! How it works: cloning adds a `REF`; waking sets `SCHEDULED` if the task
//! is idle (then queues it, unless it is running) and, by value, gives up
//! the reference in the same step; the last reference to go frees the task
//! or hands an unfinished one to its runtime (`orphaned`).

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
    RawWaker::new(ptr.as_ptr(), unsafe { head(ptr) }.vtable.waker)
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
    let prev = head.state.fetch_add(REF, Ordering::Relaxed);
    if prev > isize::MAX as usize {
        // Billions of wakers of one task: the count would overflow.
        std::process::abort();
    }
    RawWaker::new(ptr, head.vtable.waker)
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

/// Sets `SCHEDULED` unless the task is queued, finished or closed, taking
/// `refs` off the waker count in the same step. `Some(state before)` when
/// this call set it (it then holds the token, to queue unless `RUNNING`),
/// `None` when it changed nothing.
#[inline(always)]
pub(super) fn mark_scheduled(head: &Head, refs: usize) -> Option<usize> {
    let mut state = head.state.load(Ordering::Acquire);
    loop {
        if state & (SCHEDULED | COMPLETED | CLOSED) != 0 {
            return None;
        }
        match head.state.compare_exchange_weak(
            state,
            (state | SCHEDULED) - refs,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return Some(state),
            Err(s) => state = s,
        }
    }
}

/// # Safety
///
/// `ptr` is a live task (its caller holds an owner).
pub(super) unsafe fn wake_by_ref<S: Schedule>(ptr: *const ()) {
    // SAFETY: per the contract.
    let ptr = unsafe { NonNull::new_unchecked(ptr.cast_mut()) };
    // SAFETY: per the contract.
    if let Some(state) = mark_scheduled(unsafe { head(ptr) }, 0)
        && state & RUNNING == 0
    {
        // SAFETY: this call took the token.
        unsafe { queue::<S>(ptr) };
    }
}

/// # Safety
///
/// `ptr` is a task this waker holds a reference of (given up here).
pub(super) unsafe fn wake<S: Schedule>(ptr: *const ()) {
    // SAFETY: the waker's reference keeps the task alive.
    let nn = unsafe { NonNull::new_unchecked(ptr.cast_mut()) };
    // Queue it and give the reference up in one step: the token keeps the
    // task alive from there.
    // SAFETY: as above.
    match mark_scheduled(unsafe { head(nn) }, REF) {
        // Nothing to queue: only the reference goes.
        // SAFETY: the waker's reference is given up once, here.
        None => unsafe { drop_waker::<S>(ptr) },
        // SAFETY: this call took the token.
        Some(state) if state & RUNNING == 0 => unsafe { queue::<S>(nn) },
        // Running: the run queues it when its poll ends.
        Some(_) => {}
    }
}

/// # Safety
///
/// `ptr` is a task this waker holds a reference of (given up here).
pub(super) unsafe fn drop_waker<S: Schedule>(ptr: *const ()) {
    // SAFETY: the waker's reference keeps the task alive until it is given up.
    let nn = unsafe { NonNull::new_unchecked(ptr.cast_mut()) };
    // SAFETY: as above.
    let head = unsafe { head(nn) };
    let prev = head.state.fetch_sub(REF, Ordering::AcqRel);
    if unowned(prev - REF) {
        // SAFETY: this step left the task so.
        unsafe { release(nn, prev - REF) };
    }
}
