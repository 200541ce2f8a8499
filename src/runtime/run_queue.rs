//! The local run queue: tasks woken on the runtime's own thread, in order.
//!
//! How it works: a ring of slots whose length is a power of two, with two
//! free-running indices in `Cell`s — a push is a store and an add, a pop a
//! load and an add, each index masked into the ring. It replaces a
//! `RefCell<VecDeque>`, whose borrow flag and wrap-around arithmetic cost
//! about 20 instructions per wake-up under callgrind. Nothing a caller
//! supplies runs inside `push` or `pop` (a queued value is moved, never
//! dropped or called), so no call can re-enter the queue; `Cell`s make it
//! `!Sync`, so only its thread touches it. A full ring doubles.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;

/// A FIFO of `T` owned by one thread.
pub(crate) struct RunQueue<T> {
    /// The ring; slots `head..tail` (masked) hold values.
    slots: UnsafeCell<Box<[MaybeUninit<T>]>>,
    /// The ring's length less one (the length is a power of two).
    mask: Cell<usize>,
    head: Cell<usize>,
    tail: Cell<usize>,
}

impl<T> RunQueue<T> {
    /// A queue with room for `capacity` values (rounded up to a power of
    /// two) before it grows.
    pub(crate) fn with_capacity(capacity: usize) -> RunQueue<T> {
        let len = capacity.max(2).next_power_of_two();
        RunQueue {
            slots: UnsafeCell::new(Self::ring(len)),
            mask: Cell::new(len - 1),
            head: Cell::new(0),
            tail: Cell::new(0),
        }
    }

    fn ring(len: usize) -> Box<[MaybeUninit<T>]> {
        Box::new_uninit_slice(len)
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.tail.get().wrapping_sub(self.head.get())
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.get() == self.tail.get()
    }

    /// Appends `value`.
    #[inline]
    pub(crate) fn push_back(&self, value: T) {
        if self.len() > self.mask.get() {
            self.grow();
        }
        let tail = self.tail.get();
        // SAFETY: the only access to the ring while this call runs (no
        // caller code runs inside it, and the queue is `!Sync`); the masked
        // index is in bounds, and the slot at `tail` is free (len <= mask
        // after `grow`).
        unsafe {
            let slots = &mut *self.slots.get();
            slots.get_unchecked_mut(tail & self.mask.get()).write(value);
        }
        self.tail.set(tail.wrapping_add(1));
    }

    /// Takes the oldest value.
    #[inline]
    pub(crate) fn pop_front(&self) -> Option<T> {
        let head = self.head.get();
        if head == self.tail.get() {
            return None;
        }
        self.head.set(head.wrapping_add(1));
        // SAFETY: as in `push_back`, the only access while this runs; the
        // slot at `head` holds a value (head != tail), which moves out now
        // and is not read again (head moved past it).
        Some(unsafe {
            let slots = &*self.slots.get();
            slots
                .get_unchecked(head & self.mask.get())
                .assume_init_read()
        })
    }

    /// Doubles the ring, moving the values to its start in order (called
    /// when it is full).
    #[cold]
    #[inline(never)]
    fn grow(&self) {
        let len = self.len();
        debug_assert_eq!(len, self.mask.get() + 1, "grows only when full");
        let mut ring = Self::ring(len * 2);
        let start = self.head.get() & self.mask.get();
        // SAFETY: the only access while this runs. The ring is full, so its
        // values are the slots `start..len` then `0..start`; each is moved
        // (bitwise) once into the new ring, whose first `len` slots they
        // fill, and the old ring, of `MaybeUninit`s, drops nothing.
        unsafe {
            let old = &*self.slots.get();
            let from = old.as_ptr();
            let to = ring.as_mut_ptr();
            std::ptr::copy_nonoverlapping(from.add(start), to, len - start);
            std::ptr::copy_nonoverlapping(from, to.add(len - start), start);
        }
        self.mask.set(ring.len() - 1);
        // SAFETY: the only access while this runs.
        unsafe { *self.slots.get() = ring };
        self.head.set(0);
        self.tail.set(len);
    }
}

impl<T> Drop for RunQueue<T> {
    fn drop(&mut self) {
        // Each value leaves the queue before it drops, so a drop that
        // panics leaves no value to be dropped twice.
        while let Some(v) = self.pop_front() {
            drop(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::RunQueue;

    #[test]
    fn values_come_out_in_order_across_wraps_and_growth() {
        let q = RunQueue::with_capacity(4);
        let mut next_in = 0;
        let mut next_out = 0;
        // Interleave pushes and pops so the indices wrap the ring before
        // it grows, then grow it while it wraps.
        for round in 0..50 {
            for _ in 0..(round % 7 + 1) {
                q.push_back(next_in);
                next_in += 1;
            }
            for _ in 0..(round % 5) {
                if let Some(v) = q.pop_front() {
                    assert_eq!(v, next_out);
                    next_out += 1;
                }
            }
            assert_eq!(q.len(), next_in - next_out);
        }
        while let Some(v) = q.pop_front() {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
        assert!(q.is_empty());
        assert!(q.pop_front().is_none());
    }

    #[test]
    fn a_dropped_queue_drops_what_it_holds_once() {
        let token = Rc::new(());
        let q = RunQueue::with_capacity(2);
        for _ in 0..9 {
            q.push_back(token.clone());
        }
        drop(q.pop_front());
        assert_eq!(Rc::strong_count(&token), 9);
        drop(q);
        assert_eq!(Rc::strong_count(&token), 1);
    }

    #[test]
    fn capacity_rounds_up_and_grows_only_when_full() {
        let q = RunQueue::with_capacity(3);
        assert_eq!(q.mask.get(), 3);
        for i in 0..4 {
            q.push_back(i);
        }
        assert_eq!(q.mask.get(), 3, "four values fit a ring of four");
        q.push_back(4);
        assert_eq!(q.mask.get(), 7);
        assert_eq!((0..5).map(|_| q.pop_front().unwrap()).sum::<i32>(), 10);
    }
}
