//! A task's wakers: one vtable per scheduler, a reference count in the
//! task's local word (references taken and given up on its own thread
//! while it is unfinished) and one in its shared word (the rest).
//!
//! How it works: cloning on the task's thread adds one to the local
//! count, elsewhere a `REF` to the shared one; giving one up subtracts
//! where it happens, so either count may go below zero and only their sum
//! means anything (the runtime side folds the local count into the shared
//! word when the task finishes; until then `ATTACHED` keeps the block).
//! A thread that is not the task's cannot see the sum: when its step may
//! have taken the last way to wake an unfinished task, it sends a check
//! (`NOTIFIED | CHECK`), and the runtime looks. Waking on the task's own thread
//! sets `SCHEDULED` in the local word if the task is idle and queues it
//! (unless it is running): plain loads and stores. Waking elsewhere sends a
//! notice (`notify`): `NOTIFIED` set in the shared word, a tagged runnable
//! in the runtime's remote queue; by value, the reference goes in the same
//! step. The last reference to go frees the task, or has its runtime look
//! at one nothing can wake any more (`release`).

use super::*;

/// The raw waker of the task at `ptr` (scheduler `S`).
///
/// Its vtable is `S::WAKERS`, a `static`, never a fresh
/// `&Wakers::<S>::VTABLE`: a generic constant may be duplicated across
/// codegen units, and two wakers of one task must compare equal in
/// `Waker::will_wake` (lists that keep one waker per task, the accept
/// waiters say, would otherwise grow with every poll).
#[inline(always)]
pub(super) fn raw_waker<S: Schedule>(ptr: NonNull<()>) -> RawWaker {
    RawWaker::new(ptr.as_ptr(), S::WAKERS)
}

/// The waker functions of tasks scheduled by `S` (generic, so a wake calls
/// the scheduler directly).
pub(crate) struct Wakers<S>(PhantomData<S>);

impl<S: Schedule> Wakers<S> {
    pub(crate) const VTABLE: RawWakerVTable = RawWakerVTable::new(
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
    let nn = unsafe { NonNull::new_unchecked(ptr.cast_mut()) };
    // SAFETY: as above.
    let header = unsafe { header::<S>(nn) };
    // (`S::WAKERS` is the task's vtable's `waker`, and one address: a
    // `static`, see `Schedule::WAKERS`.)
    if count_locally(header, 1).is_some() {
        return RawWaker::new(ptr, S::WAKERS);
    }
    let prev = header.shared.fetch_add(REF, Ordering::Relaxed);
    if shared_refs(prev) >= isize::MAX >> (REF.trailing_zeros() + 1) {
        too_many_wakers();
    }
    RawWaker::new(ptr, S::WAKERS)
}

/// Billions of wakers of one task: the count would overflow. Out of line,
/// so the clone's common path needs no stack frame.
#[cold]
#[inline(never)]
fn too_many_wakers() -> ! {
    std::process::abort()
}

/// Gives the runnable token of the task at `ptr` to its scheduler, on the
/// task's own thread.
///
/// # Safety
///
/// The caller holds the token (set `SCHEDULED` itself, or ran the task
/// and found it set) and gives it up, on the task's thread.
#[inline(always)]
pub(super) unsafe fn queue<S: Schedule>(ptr: NonNull<()>) {
    S::schedule_here(Runnable {
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
/// `refs` off the waker count in the same step, and queues the notice. A
/// notice on its way that was only a check (`CHECK`) becomes a wake-up.
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
        let next = match state & (ATTACHED | NOTIFIED | CHECK) {
            ATTACHED => (state | NOTIFIED).wrapping_sub(refs),
            // A check on its way: it wakes the task now.
            s if s == ATTACHED | NOTIFIED | CHECK => (state & !CHECK).wrapping_sub(refs),
            // Finished, or a wake-up is on its way already.
            _ => 0,
        };
        if next == 0 {
            if refs != 0 {
                // SAFETY: the caller's reference is given up once, here.
                unsafe { drop_ref::<S>(ptr) };
            }
            return;
        }
        match head
            .shared
            .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) if state & NOTIFIED != 0 => return,
            Ok(_) => break,
            Err(s) => state = s,
        }
    }
    // `NOTIFIED` keeps the task alive until the runtime takes the notice.
    S::schedule(Runnable::notice(ptr));
}

/// # Safety
///
/// `ptr` is a live task (its caller holds an owner).
pub(super) unsafe fn wake_by_ref<S: Schedule>(ptr: *const ()) {
    // SAFETY: per the contract.
    let ptr = unsafe { NonNull::new_unchecked(ptr.cast_mut()) };
    // SAFETY: per the contract, and checked to be on the task's thread.
    unsafe {
        if header::<S>(ptr).on_own_thread() {
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
        if header::<S>(nn).on_own_thread() {
            local_wake::<S>(nn);
            // Known to be here: no second look.
            drop_ref_from::<S>(nn, true);
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
    // SAFETY: per the contract.
    let here = unsafe { header::<S>(ptr) }.on_own_thread();
    // SAFETY: per the contract; `here` was just asked.
    unsafe { drop_ref_from::<S>(ptr, here) }
}

/// [`drop_ref`] where the caller knows whether this is the task's thread
/// (`here`: `is_current`).
///
/// # Safety
///
/// As for `drop_ref`, and `here` is what `on_own_thread` says.
#[inline(always)]
unsafe fn drop_ref_from<S: Schedule>(ptr: NonNull<()>, here: bool) {
    // SAFETY: the reference keeps the task alive until it is given up.
    let header = unsafe { header::<S>(ptr) };
    if here && let Some(local) = count_here(header, -1) {
        if local & (SCHEDULED | RUNNING) == 0 {
            // Idle: was that the last way to wake it?
            // SAFETY: unfinished (the runtime side holds the block:
            // `ATTACHED` keeps the task alive).
            unsafe { lost_idle::<S>(ptr, local) };
        }
        return;
    }
    // SAFETY: as above, while `lost` is asked (before the step).
    let mut lost = unsafe { lost_here::<S>(ptr) };
    let mut state = header.shared.load(Ordering::Relaxed);
    loop {
        let (next, notice) = losing(state, REF, &mut lost);
        match header
            .shared
            .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
        {
            // SAFETY: this step left the task so.
            Ok(_) => return unsafe { after_losing::<S>(ptr, next, notice) },
            Err(s) => state = s,
        }
    }
}

/// Counts `delta` wakers (1 taken, -1 given up) in the local word, when on
/// the task's thread while it is unfinished and the `i16` count has room:
/// no locked instruction. Returns the new local word; `None` when the
/// shared word must count it instead.
#[inline(always)]
fn count_locally<S: Schedule>(header: &Header<S>, delta: isize) -> Option<usize> {
    if !header.on_own_thread() {
        return None;
    }
    count_here(header, delta)
}

/// [`count_locally`] on the task's thread (the caller asked).
#[inline(always)]
fn count_here<S>(header: &Header<S>, delta: isize) -> Option<usize> {
    let local = header.local();
    if local & FINISHED != 0 {
        return None;
    }
    // The count is the word's top 16 bits, so the word overflows as a
    // signed integer exactly when the `i16` count would: one add and its
    // overflow flag.
    let local = (local as isize).checked_add(delta << LOCAL_SHIFT)? as usize;
    header.set_local(local);
    Some(local)
}

/// An idle, unfinished task on its own thread lost a local reference:
/// if nothing can wake it any more, a notice (to this thread's queue) has
/// the runtime drop its future — not here, inside whatever dropped the
/// waker.
///
/// # Safety
///
/// `ptr` is a live task on its own thread, idle and not finished, whose
/// local word is `local`.
#[inline(always)]
unsafe fn lost_idle<S: Schedule>(ptr: NonNull<()>, local: usize) {
    // SAFETY: per the contract.
    let head = unsafe { head(ptr) };
    let mut state = head.shared.load(Ordering::Acquire);
    while state & (COMPLETED | CLOSED) == 0 && unreachable(local, state) {
        match head.shared.compare_exchange_weak(
            state,
            state | NOTIFIED | CHECK,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return S::schedule(Runnable::notice(ptr)),
            Err(s) => state = s,
        }
    }
}
