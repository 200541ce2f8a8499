//! The join handle's waker slot: one word in the task's header.
//!
//! How it works: the handle nearly always waits inside another task of the
//! same scheduler, whose waker is a task pointer and the scheduler's waker
//! vtable ([`Schedule::WAKERS`]): the slot keeps such a waker as the bare
//! pointer (it holds the waker's reference all the same) and rebuilds it
//! with that vtable. Any other waker (`block_on`'s, a foreign executor's)
//! is boxed, and the slot keeps the box's address with its low bit set
//! (`BOXED`; a task block is 8-aligned, so a task pointer has it clear).
//! Null is an empty slot. The word is a pointer, not an integer, so both
//! kinds keep their provenance. Measured against an `Option<Waker>` (16 bytes): the
//! `async {}` task's block went from 72 to 56 bytes (an 80- to a 64-byte
//! allocator chunk), spawn-many 99.2 → 88.2 ns, 191.6 → 161.1 MB for two
//! million tasks.
//!
//! Who may touch the slot is the parent module's business (the state
//! words); every method here takes that as its safety contract.

use super::*;

/// The word's tag for a boxed waker.
const BOXED: usize = 1;

/// The join handle's waker slot: a plain cell, or loom's in the model,
/// which fails a run where two threads touch the slot with no order
/// between them (the slot passes from the handle to the completing run
/// and back through the state words alone).
///
/// `wakers`, in the methods, is the task's scheduler's waker vtable
/// (`S::WAKERS`, which the task's vtable names too).
pub(super) struct AwaiterSlot(
    #[cfg(not(all(test, corio_loom)))] UnsafeCell<*mut ()>,
    #[cfg(all(test, corio_loom))] loom::cell::UnsafeCell<*mut ()>,
);

impl AwaiterSlot {
    pub(super) fn new() -> Self {
        #[cfg(not(all(test, corio_loom)))]
        return AwaiterSlot(UnsafeCell::new(std::ptr::null_mut()));
        #[cfg(all(test, corio_loom))]
        return AwaiterSlot(loom::cell::UnsafeCell::new(std::ptr::null_mut()));
    }

    /// Runs `f` on the word.
    ///
    /// # Safety
    ///
    /// The caller has the slot to itself (`LOCKED` held; or `AWAITER`
    /// clear, as the handle; or the completing run's, see `run`).
    #[inline(always)]
    unsafe fn with<R>(&self, f: impl FnOnce(&mut *mut ()) -> R) -> R {
        #[cfg(not(all(test, corio_loom)))]
        // SAFETY: per the contract, no other reference to the slot exists.
        return f(unsafe { &mut *self.0.get() });
        #[cfg(all(test, corio_loom))]
        // SAFETY: as above.
        return self.0.with_mut(|p| f(unsafe { &mut *p }));
    }

    /// Takes the waker out, leaving the slot empty.
    ///
    /// # Safety
    ///
    /// As for `with`.
    #[inline(always)]
    pub(super) unsafe fn take(&self, wakers: &'static RawWakerVTable) -> Option<Waker> {
        // SAFETY: per the contract.
        let word = unsafe { self.with(|word| std::mem::replace(word, std::ptr::null_mut())) };
        // SAFETY: `word` was the slot's, now taken out of it: decoded once.
        unsafe { decode(word, wakers) }
    }

    /// The word itself (tests look at how a waker is kept).
    #[cfg(test)]
    pub(super) unsafe fn word(&self) -> usize {
        // SAFETY: per the contract.
        unsafe { self.with(|word| word.addr()) }
    }

    /// Stores a clone of `waker` unless the slot holds one that wakes the
    /// same task (`Waker::will_wake`); returns the waker it replaced.
    ///
    /// # Safety
    ///
    /// As for `with`.
    #[inline(always)]
    pub(super) unsafe fn set(
        &self,
        waker: &Waker,
        wakers: &'static RawWakerVTable,
    ) -> Option<Waker> {
        // SAFETY: per the contract.
        unsafe {
            self.with(|word| {
                if !word.is_null() && same(*word, waker, wakers) {
                    return None;
                }
                let old = std::mem::replace(word, encode(waker, wakers));
                decode(old, wakers)
            })
        }
    }
}

/// The slot's word for a clone of `waker`.
#[inline(always)]
fn encode(waker: &Waker, wakers: &'static RawWakerVTable) -> *mut () {
    if std::ptr::eq(waker.vtable(), wakers) {
        // A task of this scheduler: its pointer holds the clone's reference
        // (given back when `decode` rebuilds the waker).
        let clone = ManuallyDrop::new(waker.clone());
        let ptr = clone.data().cast_mut();
        debug_assert!(
            !ptr.is_null() && ptr.addr() & BOXED == 0,
            "corio: a misaligned task"
        );
        ptr
    } else {
        encode_boxed(waker)
    }
}

/// [`encode`] for a waker that is not one of this scheduler's tasks.
#[cold]
#[inline(never)]
fn encode_boxed(waker: &Waker) -> *mut () {
    Box::into_raw(Box::new(waker.clone()))
        .cast::<()>()
        .map_addr(|a| a | BOXED)
}

/// The waker a word of the slot holds, `None` for an empty one.
///
/// # Safety
///
/// `word` came from `encode` with these `wakers` (or is null) and is
/// decoded once.
#[inline(always)]
unsafe fn decode(word: *mut (), wakers: &'static RawWakerVTable) -> Option<Waker> {
    if word.is_null() {
        None
    } else if word.addr() & BOXED == 0 {
        // SAFETY: per the contract, a task pointer whose waker had this
        // vtable, holding one reference, handed to the rebuilt waker.
        Some(unsafe { Waker::from_raw(RawWaker::new(word, wakers)) })
    } else {
        // SAFETY: per the contract, the address of a box made in
        // `encode_boxed`, taken back once.
        Some(*unsafe { Box::from_raw(unboxed(word)) })
    }
}

/// True when `word` (not empty) holds a waker that wakes the same task as
/// `waker` (`Waker::will_wake`).
///
/// # Safety
///
/// `word` came from `encode` with these `wakers` and is still stored.
#[inline(always)]
unsafe fn same(word: *mut (), waker: &Waker, wakers: &'static RawWakerVTable) -> bool {
    if word.addr() & BOXED == 0 {
        std::ptr::eq(word, waker.data()) && std::ptr::eq(waker.vtable(), wakers)
    } else {
        // SAFETY: per the contract, a live box of `encode_boxed`.
        unsafe { &*unboxed(word) }.will_wake(waker)
    }
}

/// A boxed waker's word without its tag: the box's address.
#[inline(always)]
fn unboxed(word: *mut ()) -> *mut Waker {
    word.map_addr(|a| a & !BOXED).cast::<Waker>()
}
