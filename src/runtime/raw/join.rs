//! The join handle's side of a task: awaiting the output, storing the
//! handle's waker, letting go of the task.
//!
//! How it works: see the parent module's state bits. The handle stores its
//! first waker without the lock (nobody reads the slot while `AWAITER` is
//! clear and the task unfinished), replaces it under `LOCKED`, and on
//! `Ready` takes the output and lets go in one subtraction (`CLOSED` set,
//! `HANDLE` cleared, and `ATTACHED` when the run that took its waker left
//! it to the handle).

use super::*;

/// The join handle's hold on a task whose output is `O`.
pub(crate) struct JoinRaw<O, S: Schedule> {
    pub(super) ptr: NonNull<()>,
    pub(super) _p: PhantomData<(O, S)>,
}

impl<O, S: Schedule> JoinRaw<O, S> {
    #[inline(always)]
    fn header(&self) -> &Header<S> {
        // SAFETY: `HANDLE` keeps the task alive.
        unsafe { header::<S>(self.ptr) }
    }

    /// Asks the task to stop (`ABORTED`) and wakes it to see that.
    pub(crate) fn abort(&self) {
        // SAFETY: `HANDLE` keeps the task alive during the calls.
        unsafe {
            request_abort(self.ptr);
            wake_by_ref::<S>(self.ptr.as_ptr());
        }
    }

    /// A hold on the task for aborting it without the handle.
    pub(crate) fn abort_raw(&self) -> AbortRaw {
        AbortRaw {
            waker: self.waker(),
        }
    }

    /// A new waker for the task (one more reference).
    pub(crate) fn waker(&self) -> Waker {
        // SAFETY: `HANDLE` keeps the task alive while the count grows.
        unsafe { Waker::from_raw(clone_waker::<S>(self.ptr.as_ptr())) }
    }

    /// True once the task completed or was dropped.
    pub(crate) fn is_finished(&self) -> bool {
        self.header().shared.load(Ordering::Acquire) & (COMPLETED | CLOSED) != 0
    }

    /// The output once there is one; `Ready(None)` when the task was
    /// dropped unfinished. `Ready` consumes the handle (`this` becomes
    /// `None`): with the output it lets go of the task in the same step
    /// that marks the output taken.
    ///
    /// # Panics
    ///
    /// If `this` is `None` (polled after `Ready`).
    #[inline]
    pub(crate) fn poll(this: &mut Option<Self>, cx: &mut Context<'_>) -> Poll<Option<O>> {
        let raw = this
            .as_ref()
            .expect("corio: JoinHandle polled after it returned its result");
        let header = raw.header();
        let mut state = header.shared.load(Ordering::Acquire);
        if state & (COMPLETED | CLOSED) == 0 {
            state = raw.register(cx.waker());
            if state & (COMPLETED | CLOSED) == 0 {
                return Poll::Pending;
            }
        }
        if state & COMPLETED == 0 {
            // Dropped unfinished: `Drop` takes the waker back and lets go.
            *this = None;
            return Poll::Ready(None);
        }
        // Completed with the handle alive: the output is here, and only the
        // handle ever sets `CLOSED` from now on. What `Drop` would do is
        // done here.
        debug_assert!(state & CLOSED == 0);
        let raw = ManuallyDrop::new(this.take().expect("checked above"));
        let header = raw.header();
        // A waker this handle stored as the task completed comes back (the
        // run may still hold the lock over it: `take_awaiter` waits).
        let awaiter = if state & AWAITER != 0 {
            take_awaiter(header, S::WAKERS)
        } else {
            None
        };
        // Completed with this handle's waker taken: the run keeps the
        // block (`ATTACHED`) until it has the waker out, and leaves
        // `ATTACHED` for the handle to clear.
        let attached = state & ATTACHED;
        if attached != 0 {
            wait_for_run(header);
        }
        // SAFETY: completed, not closed: the output is present and the
        // handle's alone; moved out once, here.
        let out = unsafe { raw.output().read() };
        let next = let_go_completed(header, state, attached);
        // SAFETY: this step left the task so (completed: no notice).
        unsafe { after_losing::<S>(raw.ptr, next, false) };
        drop(awaiter);
        Poll::Ready(Some(out))
    }

    /// Where the task's output is (once it completed: the stage, whose
    /// offset the task's vtable keeps; `Stage` is `repr(C)`, so the output
    /// starts where it does).
    #[inline(always)]
    fn output(&self) -> *mut O {
        // SAFETY: `HANDLE` keeps the block alive; the offset is within it.
        unsafe { self.ptr.byte_add(self.header().vtable().stage) }
            .cast::<O>()
            .as_ptr()
    }

    /// Stores `waker` for the task to wake; returns the state after.
    fn register(&self, waker: &Waker) -> usize {
        let header = self.header();
        let state = header.shared.load(Ordering::Acquire);
        if state & (COMPLETED | CLOSED) != 0 {
            // Finished meanwhile: the run may be taking the stored waker.
            return state;
        }
        if state & AWAITER == 0 && header.scheduler.owns_here() {
            // On the task's thread, while no other thread can close the
            // task: nothing else touches the slot while the handle is here
            // (the run is not in progress: this thread is polling the
            // handle; a handle elsewhere would take the lock). No locked
            // step: `AWAITED` says a waker may be in the slot.
            // SAFETY: as just said, this handle is the slot's only user.
            let old = unsafe { header.awaiter.set(waker, S::WAKERS) };
            // Read again: the clone may have counted a waker of this task.
            header.set_local(header.local() | AWAITED);
            drop(old);
            return state;
        }
        // (On another thread, `AWAITED` is seen as in `take_awaiter`.)
        if state & AWAITER == 0 && header.local.load(Ordering::Acquire) & AWAITED == 0 {
            // No waker stored: nobody reads the slot while `AWAITER` and
            // `AWAITED` are clear and the task unfinished (the closers read
            // it only under `LOCKED` with one of them set, the completing
            // run only after the step that found one set; only this handle
            // sets either), so it is written without the lock, then
            // published.
            // SAFETY: as just said, this handle is the slot's only user.
            let old = unsafe { header.awaiter.set(waker, S::WAKERS) };
            debug_assert!(old.is_none());
            return header.shared.fetch_or(AWAITER, Ordering::AcqRel) | AWAITER;
        }
        let state = lock(header);
        if state & (COMPLETED | CLOSED) != 0 {
            // Completed as the lock was taken: the slot is the run's until
            // it clears `RUNNING`; leave it.
            return header.shared.fetch_and(!LOCKED, Ordering::AcqRel) & !LOCKED;
        }
        // SAFETY: `LOCKED` is held, the task is not completed (the run
        // waits for the bit to complete it) and the handle is here (not
        // storing on the task's thread).
        let old = unsafe { header.awaiter.set(waker, S::WAKERS) };
        // `LOCKED` is set: the subtraction clears it and sets `AWAITER`.
        let after = if state & AWAITER == 0 {
            header.shared.fetch_sub(LOCKED - AWAITER, Ordering::AcqRel) - (LOCKED - AWAITER)
        } else {
            header.shared.fetch_sub(LOCKED, Ordering::AcqRel) - LOCKED
        };
        drop(old);
        after
    }
}

impl<O, S: Schedule> Drop for JoinRaw<O, S> {
    fn drop(&mut self) {
        // SAFETY: `HANDLE` keeps the task alive until it is cleared below.
        let header = unsafe { header::<S>(self.ptr) };
        let awaiter = take_awaiter(header, S::WAKERS);
        // SAFETY: `HANDLE` keeps the task alive while `lost` is asked.
        let mut lost = unsafe { lost_here::<S>(self.ptr) };
        let mut state = header.shared.load(Ordering::Acquire);
        let (next, notice) = loop {
            if state & (COMPLETED | CLOSED) == COMPLETED {
                // Completed while the handle lived: the task left the
                // output to the handle and touches the stage no more. Drop
                // it before letting go (the last owner frees the block).
                // As in `poll`: the run may still be taking the waker.
                let attached = state & ATTACHED;
                if attached != 0 {
                    wait_for_run(header);
                }
                // SAFETY: completed, not closed: the output is present and
                // the handle's; `HANDLE` still keeps the task alive.
                unsafe { drop_quietly(&mut *self.output().cast::<ManuallyDrop<O>>()) };
                break (let_go_completed(header, state, attached), false);
            }
            // Not completed: once `HANDLE` is clear, the run that completes
            // the task drops the output itself.
            let (next, notice) = losing(state, HANDLE, &mut lost);
            match header.shared.compare_exchange_weak(
                state,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break (next, notice),
                Err(s) => state = s,
            }
        };
        // SAFETY: this step left the task so.
        unsafe { after_losing::<S>(self.ptr, next, notice) };
        drop(awaiter);
    }
}

/// The handle's last step on a completed task whose output it took or
/// dropped: sets `CLOSED`, clears `HANDLE` (only the handle changes either
/// now) and `attached` (`ATTACHED`, when the run left it to the handle and
/// is done: `wait_for_run`); returns the state after.
///
/// `state` is what the handle loaded (acquire) once the task had
/// completed. If it shows no other owner — no waker (the run folded the
/// local count into `REFS` as it completed, so `REFS` counts every waker
/// left), no notice, no lock, no stored waker — nothing can change the
/// word any more: a new waker is made only from a waker or by a poll, and
/// the task is finished. The state after is then unowned and the caller
/// frees the block: no locked instruction, for the common `spawn(..).await`
/// (the step that would write it is seen by nobody).
#[inline(always)]
fn let_go_completed<S>(header: &Header<S>, state: usize, attached: usize) -> usize {
    let step = HANDLE - CLOSED + attached;
    if state & (REFS | NOTIFIED | LOCKED | AWAITER) == 0 {
        let next = state.wrapping_sub(step);
        debug_assert!(unowned(next), "a completed task with no other owner");
        return next;
    }
    // One subtraction sets the one bit and clears the others.
    header
        .shared
        .fetch_sub(step, Ordering::AcqRel)
        .wrapping_sub(step)
}

// The output is never pinned: it is moved out whole.
impl<O, S: Schedule> Unpin for JoinRaw<O, S> {}

// SAFETY: the handle touches the task only through the atomic state, the
// lock-guarded awaiter and the output, which it moves to (or drops on) its
// own thread: sound to send when the output is `Send`. The scheduler it
// reads is `Sync`.
unsafe impl<O: Send, S: Schedule + Sync> Send for JoinRaw<O, S> {}
// SAFETY: `&JoinRaw` reads the state (atomic) and the scheduler (`Sync`).
unsafe impl<O: Send, S: Schedule + Sync> Sync for JoinRaw<O, S> {}

/// A hold on a task for aborting it without its join handle: one waker
/// reference (a task group's fail-fast abort).
pub(crate) struct AbortRaw {
    /// One of the task's wakers: a task pointer with its scheduler's
    /// waker vtable (made by `JoinRaw::waker`).
    waker: Waker,
}

impl AbortRaw {
    /// As [`JoinRaw::abort`]; harmless once the task has finished.
    pub(crate) fn abort(&self) {
        // SAFETY: the waker's reference keeps the task (its data pointer)
        // alive.
        unsafe { request_abort(NonNull::new_unchecked(self.waker.data().cast_mut())) };
        self.waker.wake_by_ref();
    }
}
