//! The ring's in-flight ops: a slab of slots, each named by its index and a
//! generation.
//!
//! How it works: an op's `user_data` is its slot index in the low 32 bits and
//! the slot's generation in the high 32, so a completion (or a cancel) meant
//! for an op that has gone never reaches the op that reuses the slot: it is
//! a bug, caught by a debug assertion. A slot's [`Owner`] says who takes its
//! completions: the future that waits for it; the ops of an fd's role, for a
//! multishot op the driver keeps armed on the fd; or nobody, once its future
//! is gone — then each completion goes to the op value's `completion` hook,
//! which keeps or releases what it carries, and the slot is freed with the
//! last completion (the one without `IORING_CQE_F_MORE`). The slot of a
//! single-shot op whose future took its last completion is kept, with the
//! future's waker, for the next op submitted (the same task's, nearly
//! always), one slot at a time; its generation is retired meanwhile, so no
//! key names it.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::task::Waker;

use slab::Slab;

use crate::driver::armed::{Armed, spare_or_clone};
use crate::driver::op::CQE_F_MORE;
use crate::release::Released as ReleasedOp;

/// Who takes a slot's completions.
pub(super) enum Owner {
    /// A future, which waits with this waker.
    Future(Option<Waker>),
    /// A multishot op armed on an fd, whose value the driver keeps; ops of
    /// the fd's role take its completions and wait here.
    Armed(Box<Armed>),
    /// An armed op taken down while the kernel still has it: each
    /// completion goes to its value, then `close` is closed after the last.
    Disarmed(Box<Armed>),
    /// Nobody: each completion goes to `op` (`None`: a readiness poll, which
    /// carries nothing). `close` is an fd to close after the last one.
    Released(Box<Released>),
}

/// A released op (boxed: rare, and it keeps slots small).
pub(super) struct Released {
    op: Option<Box<dyn ReleasedOp>>,
    close: Option<RawFd>,
}

impl Owner {
    fn released(op: Option<Box<dyn ReleasedOp>>, close: Option<RawFd>) -> Owner {
        Owner::Released(Box::new(Released { op, close }))
    }
}

/// Completions not taken yet; most ops have one, multishot ops more.
#[derive(Default)]
enum Cqes {
    #[default]
    Empty,
    One(i32, u32),
    // Boxed so a slot stays small: most ops never queue two completions.
    #[allow(clippy::box_collection)]
    Many(Box<VecDeque<(i32, u32)>>),
}

impl Cqes {
    #[inline(always)]
    fn push(&mut self, res: i32, flags: u32) {
        match self {
            Cqes::Empty => *self = Cqes::One(res, flags),
            Cqes::One(r, f) => {
                let mut q = Box::new(VecDeque::with_capacity(4));
                q.push_back((*r, *f));
                q.push_back((res, flags));
                *self = Cqes::Many(q);
            }
            Cqes::Many(q) => q.push_back((res, flags)),
        }
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<(i32, u32)> {
        match self {
            Cqes::Empty => None,
            Cqes::One(r, f) => {
                let out = (*r, *f);
                *self = Cqes::Empty;
                Some(out)
            }
            Cqes::Many(q) => q.pop_front(),
        }
    }

    #[inline]
    fn is_empty(&self) -> bool {
        match self {
            Cqes::Empty => true,
            Cqes::One(..) => false,
            Cqes::Many(q) => q.is_empty(),
        }
    }
}

pub(super) struct Slot {
    generation: u32,
    /// The op's last completion has arrived.
    ended: bool,
    cqes: Cqes,
    pub(super) owner: Owner,
}

/// What `complete` leaves the driver to do.
pub(super) enum After {
    Nothing,
    /// An fd whose close waited for this op.
    Close(RawFd),
}

/// Drops a slot taken out of the slab. Nearly always its future took the
/// waker and the completion already: nothing is left to drop, and the
/// out-of-line drop glue is skipped.
#[inline(always)]
fn free(slot: Slot) {
    if let Slot {
        cqes: Cqes::Empty,
        owner: Owner::Future(None),
        ..
    } = slot
    {
        std::mem::forget(slot);
    }
}

/// The slab of in-flight ops.
pub(super) struct Slots {
    slab: Slab<Slot>,
    next_gen: u32,
    /// The waker of the last op a future took its final completion from:
    /// the next op submitted with the same waker (nearly always: the task
    /// that just took a result starts its next op) reuses it instead of
    /// cloning, one locked instruction less per op.
    spare: Option<Waker>,
    /// A single-shot op's slot freed by its future's last take, kept for
    /// the next `insert_future` (the task's next op, nearly always) with
    /// its waker still in it: no slab remove and insert, no waker moved.
    /// Its generation is `RETIRED`, so no key names it meanwhile.
    kept: Option<usize>,
}

/// The generation of a kept slot: never a key's (the high word u32::MAX
/// is the driver's tokens'), so lookups by key miss it.
const RETIRED: u32 = u32::MAX;

#[inline]
fn split(key: u64) -> (usize, u32) {
    (key as u32 as usize, (key >> 32) as u32)
}

/// The live slot `key` names in `slab` (a function of the slab alone, so
/// the caller may hold `Slots::spare` meanwhile).
#[inline]
fn live(slab: &mut Slab<Slot>, key: u64) -> Option<&mut Slot> {
    let (idx, generation) = split(key);
    slab.get_mut(idx).filter(|s| s.generation == generation)
}

/// Frees the slot of `key`, which the caller found live: `Slab::remove`'s
/// and `expect`'s panics take their caller's location, which the hot paths
/// would otherwise set up on every call; this one's is out of line.
#[inline(always)]
fn remove_live(slab: &mut Slab<Slot>, key: u64) -> Slot {
    match slab.try_remove(split(key).0) {
        Some(slot) => slot,
        None => no_slot(),
    }
}

#[cold]
#[inline(never)]
fn no_slot() -> ! {
    panic!("corio: no live op slot")
}

impl Slots {
    pub(super) fn new() -> Slots {
        Slots {
            slab: Slab::with_capacity(256),
            next_gen: 0,
            spare: None,
            kept: None,
        }
    }

    /// Slots in use (the kept one is free).
    pub(super) fn len(&self) -> usize {
        self.slab.len() - usize::from(self.kept.is_some())
    }

    /// The next generation: 31 bits, so the high word u32::MAX is left to
    /// the driver's own tokens (and `RETIRED`); a slot index would have to
    /// be reused 2^31 times while a stale key waits to be confused.
    #[inline(always)]
    fn next_generation(&mut self) -> u32 {
        let generation = self.next_gen;
        self.next_gen = generation.wrapping_add(1) & (u32::MAX >> 1);
        generation
    }

    /// A new slot; returns its key (the op's `user_data`).
    #[inline]
    pub(super) fn insert(&mut self, owner: Owner) -> u64 {
        let generation = self.next_generation();
        let idx = self.slab.insert(Slot {
            generation,
            ended: false,
            cqes: Cqes::Empty,
            owner,
        });
        debug_assert!(idx < u32::MAX as usize);
        (u64::from(generation) << 32) | idx as u64
    }

    /// A new slot for an op whose future waits with `waker`; returns its key.
    #[inline(always)]
    pub(super) fn insert_future(&mut self, waker: &Waker) -> u64 {
        if let Some(idx) = self.kept.take() {
            return self.reuse_kept(idx, waker);
        }
        self.insert_future_new(waker)
    }

    /// `insert_future` with no kept slot: a new one (out of line: the kept
    /// slot is the common case).
    #[inline(never)]
    fn insert_future_new(&mut self, waker: &Waker) -> u64 {
        let waker = spare_or_clone(&mut self.spare, waker);
        self.insert(Owner::Future(Some(waker)))
    }

    /// Gives the kept slot `idx` a fresh generation for a new op of the
    /// future waiting with `waker`; returns its key.
    #[inline(always)]
    fn reuse_kept(&mut self, idx: usize, waker: &Waker) -> u64 {
        let generation = self.next_generation();
        let Some(slot) = self.slab.get_mut(idx) else {
            no_slot()
        };
        debug_assert!(slot.generation == RETIRED && slot.ended && slot.cqes.is_empty());
        if let Owner::Future(w) = &mut slot.owner {
            match w {
                // The task's own waker (nearly always): kept as it is.
                Some(w) if w.will_wake(waker) => {}
                // Another task's op: the spare may be this one's waker.
                _ => *w = Some(spare_or_clone(&mut self.spare, waker)),
            }
        }
        slot.generation = generation;
        slot.ended = false;
        (u64::from(generation) << 32) | idx as u64
    }

    /// The live slot `key` names (`None` when it is gone or reused).
    #[inline]
    pub(super) fn get(&mut self, key: u64) -> Option<&mut Slot> {
        live(&mut self.slab, key)
    }

    /// Frees slot `key`.
    pub(super) fn remove(&mut self, key: u64) {
        if self.get(key).is_some() {
            remove_live(&mut self.slab, key);
        }
    }

    /// Takes the oldest completion of slot `key`; with it, whether that was
    /// the slot's last (then the slot is freed), or `None` after recording
    /// `waker` to be woken by the next one.
    #[inline(always)]
    pub(super) fn take(&mut self, key: u64, waker: &Waker) -> Option<(i32, u32, bool)> {
        self.take_from::<false>(key, waker)
    }

    /// [`take`](Self::take) for a task polling the armed op in slot `key`:
    /// first the lone waiter a completion woke — this task, nearly always —
    /// goes to `spare`, as `take` hands on a single-shot op's waker; the
    /// task's next op, or its wait here if another task took the
    /// completion, reuses it. (Before the pop: the last completion frees
    /// the slot.)
    #[inline(always)]
    pub(super) fn take_armed(&mut self, key: u64, waker: &Waker) -> Option<(i32, u32, bool)> {
        self.take_from::<true>(key, waker)
    }

    /// `take`, with the woken waiter's hand-off when `ARMED` (a constant:
    /// single-shot polls compile without it), on one lookup of the slot.
    #[inline(always)]
    fn take_from<const ARMED: bool>(
        &mut self,
        key: u64,
        waker: &Waker,
    ) -> Option<(i32, u32, bool)> {
        let slot = live(&mut self.slab, key);
        debug_assert!(slot.is_some(), "corio: no live op slot {key:#x}");
        let Some(slot) = slot else { no_slot() };
        if ARMED
            && let Owner::Armed(a) = &mut slot.owner
            && let Some(w) = a.waiters.take_woken()
        {
            self.spare = Some(w);
        }
        let Some((res, flags)) = slot.cqes.pop() else {
            match &mut slot.owner {
                Owner::Future(w) => match w {
                    Some(w) if w.will_wake(waker) => {}
                    _ => *w = Some(waker.clone()),
                },
                Owner::Armed(a) => a.waiters.add(waker, &mut self.spare),
                Owner::Released(_) | Owner::Disarmed(_) => {
                    debug_assert!(false, "corio: waiting on a released op")
                }
            }
            return None;
        };
        let last = slot.ended && slot.cqes.is_empty();
        if last {
            if !ARMED && self.kept.is_none() && matches!(slot.owner, Owner::Future(Some(_))) {
                // Kept for the task's next op, waker and all
                // (`insert_future`); its key is dead from here.
                slot.generation = RETIRED;
                self.kept = Some(split(key).0);
                return Some((res, flags, last));
            }
            let mut slot = remove_live(&mut self.slab, key);
            if let Owner::Future(w @ Some(_)) = &mut slot.owner {
                // Kept for the task's next op (`insert_future`).
                self.spare = w.take();
            }
            free(slot);
        }
        Some((res, flags, last))
    }

    /// A completion arrived for `key`.
    #[inline]
    pub(super) fn complete(&mut self, key: u64, res: i32, flags: u32) -> After {
        let Some(slot) = live(&mut self.slab, key) else {
            debug_assert!(false, "corio: completion for no live op slot ({key:#x})");
            return After::Nothing;
        };
        let last = flags & CQE_F_MORE == 0;
        // Nobody waits for a released or taken-down op: each completion
        // goes to its value, and `close` is closed after the last.
        let (op, close): (Option<&mut dyn ReleasedOp>, _) = match &mut slot.owner {
            Owner::Future(waker) => {
                slot.cqes.push(res, flags);
                slot.ended |= last;
                // By reference: the slot keeps the waker, and hands it to
                // the task's next op when the task takes this result.
                if let Some(w) = waker {
                    w.wake_by_ref();
                }
                return After::Nothing;
            }
            Owner::Armed(a) => {
                slot.cqes.push(res, flags);
                slot.ended |= last;
                // A lone waiter's waker stays with the op (`Woken`) until
                // its task polls for this completion (`take_armed`): put
                // in `spare` here, it would be overwritten by the next
                // completion of the same reap (another task's), and the
                // task's next op would clone its waker.
                a.waiters.wake_all();
                return After::Nothing;
            }
            Owner::Released(r) => (r.op.as_deref_mut(), &mut r.close),
            Owner::Disarmed(a) => (Some(&mut a.op), &mut a.close),
        };
        if let Some(op) = op {
            op.completion(res, flags);
        }
        if !last {
            return After::Nothing;
        }
        let close = close.take();
        remove_live(&mut self.slab, key);
        close.map_or(After::Nothing, After::Close)
    }

    /// The future of slot `key` is gone; `op` is its value, if the kernel
    /// may still touch it. Completions already in are released now. True
    /// when the op is still in the kernel (the caller cancels it).
    pub(super) fn release(&mut self, key: u64, mut op: Option<Box<dyn ReleasedOp>>) -> bool {
        let Some(slot) = self.get(key) else {
            debug_assert!(false, "corio: released op slot {key:#x} is gone");
            return false;
        };
        while let Some((res, flags)) = slot.cqes.pop() {
            if let Some(op) = &mut op {
                op.completion(res, flags);
            }
        }
        if slot.ended {
            self.remove(key);
            return false;
        }
        slot.owner = Owner::released(op, None);
        true
    }

    /// The future of slot `key` took its final result while the kernel may
    /// still post completions: they are dropped as they come.
    pub(super) fn orphan_rest(&mut self, key: u64) {
        if let Some(slot) = self.get(key) {
            if slot.ended && slot.cqes.is_empty() {
                self.remove(key);
            } else {
                slot.owner = Owner::released(None, None);
            }
        }
    }

    /// Takes down the multishot op armed in slot `key`: its completions go
    /// to its own `completion` from now on (those in already, now), its
    /// waiters are woken, and `close` is closed after its last. Returns
    /// whether it is still in the kernel (the caller cancels it), or the fd
    /// to close now.
    pub(super) fn disarm(&mut self, key: u64, close: Option<RawFd>) -> Result<bool, RawFd> {
        let Some(slot) = self.get(key) else {
            // Already ended and freed: nothing holds the fd.
            return close.map_or(Ok(false), Err);
        };
        let owner = std::mem::replace(&mut slot.owner, Owner::Future(None));
        let mut armed = match owner {
            Owner::Armed(a) => a,
            other => {
                debug_assert!(false, "corio: slot {key:#x} is not an armed op");
                slot.owner = other;
                return close.map_or(Ok(false), Err);
            }
        };
        armed.waiters.wake_and_clear();
        while let Some((res, flags)) = slot.cqes.pop() {
            armed.op.completion(res, flags);
        }
        if slot.ended {
            self.remove(key);
            return close.map_or(Ok(false), Err);
        }
        armed.close = close;
        slot.owner = Owner::Disarmed(armed);
        Ok(true)
    }

    /// Keys of the slots still waiting for completions (for shutdown).
    pub(super) fn in_kernel(&self) -> Vec<u64> {
        self.slab
            .iter()
            .filter(|(_, s)| !s.ended)
            .map(|(i, s)| (u64::from(s.generation) << 32) | i as u64)
            .collect()
    }

    /// True when some slot still waits for a completion.
    pub(super) fn any_in_kernel(&self) -> bool {
        self.slab.iter().any(|(_, s)| !s.ended)
    }

    /// Forgets every slot without dropping it: for an op the kernel would
    /// not give back, leaking is safer than freeing memory under it.
    pub(super) fn leak_all(&mut self) {
        std::mem::forget(std::mem::replace(&mut self.slab, Slab::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count(std::rc::Rc<std::cell::Cell<u32>>);

    impl ReleasedOp for Count {
        fn completion(&mut self, _res: i32, flags: u32) -> bool {
            self.0.set(self.0.get() + 1);
            flags & CQE_F_MORE == 0
        }
    }

    #[test]
    fn a_stale_key_never_reaches_the_slots_new_op() {
        let mut s = Slots::new();
        let a = s.insert(Owner::Future(None));
        s.remove(a);
        let b = s.insert(Owner::Future(None));
        assert_eq!(a as u32, b as u32, "the index is reused");
        assert_ne!(a, b, "with another generation");
        assert!(s.get(a).is_none());
        assert!(s.get(b).is_some());
    }

    #[test]
    fn released_multishot_sees_each_completion_and_frees_on_the_last() {
        let mut s = Slots::new();
        let n = std::rc::Rc::new(std::cell::Cell::new(0));
        let k = s.insert(Owner::Future(None));
        s.complete(k, 5, CQE_F_MORE);
        assert!(s.release(k, Some(Box::new(Count(n.clone())))));
        assert_eq!(n.get(), 1, "the queued completion is released at once");
        s.complete(k, 6, CQE_F_MORE);
        assert!(s.get(k).is_some());
        s.complete(k, -125, 0);
        assert_eq!(n.get(), 3);
        assert!(s.get(k).is_none(), "freed with its last completion");
    }

    /// A waker counting its clones, drops and wake-ups.
    #[derive(Default)]
    struct Tally {
        clones: std::cell::Cell<u32>,
        drops: std::cell::Cell<u32>,
        wakes: std::cell::Cell<u32>,
    }

    /// A waker counting into `t`; it and its clones must go before `t`.
    fn tally_waker(t: &Tally) -> Waker {
        use std::task::{RawWaker, RawWakerVTable};
        fn tally<'a>(p: *const ()) -> &'a Tally {
            // SAFETY: every waker below is made from a `&Tally` that
            // outlives it and its clones (the test drops them first).
            unsafe { &*p.cast::<Tally>() }
        }
        static VTABLE: RawWakerVTable = RawWakerVTable::new(
            |p| {
                tally(p).clones.set(tally(p).clones.get() + 1);
                RawWaker::new(p, &VTABLE)
            },
            |p| {
                tally(p).wakes.set(tally(p).wakes.get() + 1);
                tally(p).drops.set(tally(p).drops.get() + 1);
            },
            |p| tally(p).wakes.set(tally(p).wakes.get() + 1),
            |p| tally(p).drops.set(tally(p).drops.get() + 1),
        );
        let p: *const Tally = t;
        // SAFETY: the vtable's functions treat the pointer as the
        // `&Tally` it is, and count; nothing else.
        unsafe { Waker::from_raw(RawWaker::new(p.cast(), &VTABLE)) }
    }

    #[test]
    fn a_task_that_takes_a_result_and_starts_its_next_op_reuses_its_waker() {
        let t = &Tally::default();
        let w = tally_waker(t);
        let mut s = Slots::new();
        let k = s.insert_future(&w);
        assert_eq!(t.clones.get(), 1);
        assert!(matches!(s.complete(k, 7, 0), After::Nothing));
        assert_eq!(t.wakes.get(), 1, "the completion wakes the task");
        assert_eq!(s.take(k, &w), Some((7, 0, true)));
        assert!(s.get(k).is_none(), "freed with its last completion");
        // The next op of the same task: no clone.
        let k = s.insert_future(&w);
        assert_eq!(t.clones.get(), 1, "the kept waker was not reused");
        // Another task's op: the spare (none now) is not used for it.
        let other = &Tally::default();
        s.complete(k, 1, 0);
        s.take(k, &w);
        let k2 = s.insert_future(&tally_waker(other));
        assert_eq!(t.drops.get(), 1, "another task's op dropped the spare");
        assert_eq!(other.clones.get(), 1);
        s.remove(k2);
        drop(s);
        drop(w);
        assert_eq!(t.drops.get(), t.clones.get() + 1, "a waker leaked");
    }

    #[test]
    fn a_slot_kept_for_the_next_op_is_dead_to_its_old_key() {
        let t = &Tally::default();
        let w = tally_waker(t);
        let mut s = Slots::new();
        let a = s.insert_future(&w);
        let b = s.insert_future(&w);
        assert_eq!(s.len(), 2);
        s.complete(a, 1, 0);
        assert_eq!(s.take(a, &w), Some((1, 0, true)));
        // `a`'s slot is kept: free to the count, to shutdown and to
        // lookups by its old key.
        assert_eq!(s.len(), 1);
        assert!(s.get(a).is_none());
        assert_eq!(s.in_kernel(), vec![b]);
        // One slot is kept at a time: `b`'s is freed.
        s.complete(b, 2, 0);
        assert_eq!(s.take(b, &w), Some((2, 0, true)));
        assert_eq!(s.len(), 0);
        assert!(s.get(b).is_none() && !s.any_in_kernel());
        // The next op takes the kept slot under a fresh generation; a
        // stale completion or take for `a` never reaches it.
        let c = s.insert_future(&w);
        assert_eq!(c as u32, a as u32, "the kept slot is reused");
        assert_ne!(c, a);
        assert!(s.get(a).is_none());
        assert_eq!(s.in_kernel(), vec![c]);
        assert_eq!(t.clones.get(), 2, "no clone for the task's next op");
        // Another task's op on a kept slot holding this task's waker: the
        // old one goes, the new task's is cloned.
        s.complete(c, 3, 0);
        assert_eq!(s.take(c, &w), Some((3, 0, true)));
        let other = &Tally::default();
        let ow = tally_waker(other);
        let d = s.insert_future(&ow);
        assert_eq!(other.clones.get(), 1);
        s.complete(d, 4, 0);
        assert_eq!(other.wakes.get(), 1, "the new op's task is the one woken");
        assert_eq!(s.take(d, &ow), Some((4, 0, true)));
        drop(s);
        drop((w, ow));
        assert_eq!(t.drops.get(), t.clones.get() + 1, "a waker leaked");
        assert_eq!(other.drops.get(), other.clones.get() + 1, "a waker leaked");
    }

    #[test]
    fn generations_wrap_below_the_drivers_tokens() {
        let mut s = Slots::new();
        let top = u32::MAX >> 1;
        s.next_gen = top - 1;
        let keys = [(); 3].map(|_| s.insert(Owner::Future(None)));
        let generations = keys.map(|k| (k >> 32) as u32);
        assert_eq!(generations, [top - 1, top, 0]);
        for k in keys {
            assert!(
                k < super::super::files::TOKEN_UNFIX,
                "{k:#x} reads as a driver token"
            );
        }
    }

    #[test]
    fn one_then_many_completions_queue_in_order() {
        let mut s = Slots::new();
        let k = s.insert(Owner::Future(None));
        s.complete(k, 1, CQE_F_MORE);
        s.complete(k, 2, CQE_F_MORE);
        s.complete(k, 3, 0);
        let w = std::task::Waker::noop();
        assert_eq!(s.take(k, w), Some((1, CQE_F_MORE, false)));
        assert_eq!(s.take(k, w), Some((2, CQE_F_MORE, false)));
        assert_eq!(s.take(k, w), Some((3, 0, true)));
        assert!(s.get(k).is_none(), "freed with its last completion");
    }
}
