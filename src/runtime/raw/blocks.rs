//! Freed task blocks, kept on their thread for the next spawn.
//!
//! How it works: a task block of at most [`MAX`] bytes and alignment at most
//! [`ALIGN`] is allocated with its size rounded up to a multiple of
//! [`CLASS`] bytes and alignment [`ALIGN`], so every block of a size class
//! has one layout. Freeing one puts it on its class's list on the freeing
//! thread, up to [`PER_CLASS`] blocks (the rest go back to the allocator);
//! a spawn of that class takes one from there. A task spawned and joined
//! in a loop then costs no allocator call: under callgrind, glibc's
//! `malloc` and `free` were 134 of the 694 instructions of a spawn + join.
//! What a thread keeps is bounded ([`CLASSES`] × [`PER_CLASS`] blocks,
//! 64 KiB at most) and goes back to the allocator when the thread exits.
//! Larger or more aligned blocks go straight to the allocator.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::UnsafeCell;
use std::ptr::NonNull;

/// Size classes are multiples of this many bytes.
pub(super) const CLASS: usize = 16;
/// Every kept block has this alignment.
pub(super) const ALIGN: usize = 16;
/// The number of classes: blocks up to `CLASSES * CLASS` bytes are kept.
pub(super) const CLASSES: usize = 32;
/// The largest block kept.
pub(super) const MAX: usize = CLASSES * CLASS;
/// Blocks kept per class.
pub(super) const PER_CLASS: usize = 4;

struct Kept {
    blocks: [[*mut u8; PER_CLASS]; CLASSES],
    counts: [u8; CLASSES],
}

/// The thread's kept blocks; `UnsafeCell` because no call below can
/// re-enter (each only moves pointers and calls the allocator).
struct Cache(UnsafeCell<Kept>);

impl Drop for Cache {
    fn drop(&mut self) {
        let kept = self.0.get_mut();
        for (class, blocks) in kept.blocks.iter().enumerate() {
            for &p in &blocks[..kept.counts[class] as usize] {
                // SAFETY: every kept block was allocated with its class's
                // layout and nothing else refers to it.
                unsafe { dealloc(p, class_layout(class)) };
            }
        }
    }
}

thread_local! {
    static CACHE: Cache = const {
        Cache(UnsafeCell::new(Kept {
            blocks: [[std::ptr::null_mut(); PER_CLASS]; CLASSES],
            counts: [0; CLASSES],
        }))
    };
}

fn class_layout(class: usize) -> Layout {
    // SAFETY: a non-zero multiple of 16 with alignment 16 is a valid layout.
    unsafe { Layout::from_size_align_unchecked((class + 1) * CLASS, ALIGN) }
}

/// The class of a block of `layout`, if blocks of it are kept.
#[inline(always)]
fn class_of(layout: Layout) -> Option<usize> {
    (layout.size() <= MAX && layout.align() <= ALIGN && layout.size() > 0)
        .then(|| (layout.size() - 1) / CLASS)
}

/// A block for `layout`: a kept one of its class if the thread has one.
#[inline]
pub(super) fn allocate(layout: Layout) -> NonNull<u8> {
    let Some(class) = class_of(layout) else {
        return fresh(layout);
    };
    let kept = CACHE
        .try_with(|c| {
            // SAFETY: the only access while this closure runs (see `Cache`).
            let kept = unsafe { &mut *c.0.get() };
            let n = kept.counts[class];
            if n == 0 {
                return None;
            }
            kept.counts[class] = n - 1;
            NonNull::new(kept.blocks[class][n as usize - 1])
        })
        .ok()
        .flatten();
    kept.unwrap_or_else(|| fresh(class_layout(class)))
}

/// A block from the allocator.
#[cold]
fn fresh(layout: Layout) -> NonNull<u8> {
    // SAFETY: task layouts are never zero-sized (the header alone is not).
    let p = unsafe { alloc(layout) };
    NonNull::new(p).unwrap_or_else(|| handle_alloc_error(layout))
}

/// Frees a block that `allocate(layout)` gave, keeping it if its class
/// has room on this thread.
///
/// # Safety
///
/// `ptr` came from `allocate` with this same `layout`, and nothing refers
/// to it any more.
#[inline]
pub(super) unsafe fn release(ptr: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: per the contract, `allocate` gave it from the allocator
        // with this layout.
        unsafe { dealloc(ptr.as_ptr(), layout) };
        return;
    };
    let kept = CACHE
        .try_with(|c| {
            // SAFETY: the only access while this closure runs (see `Cache`).
            let kept = unsafe { &mut *c.0.get() };
            let n = kept.counts[class] as usize;
            if n == PER_CLASS {
                return false;
            }
            kept.blocks[class][n] = ptr.as_ptr();
            kept.counts[class] = n as u8 + 1;
            true
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: blocks of a class all have the class's layout (see
        // `allocate`); nothing refers to this one.
        unsafe { dealloc(ptr.as_ptr(), class_layout(class)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(class: usize) -> usize {
        CACHE.with(|c| {
            // SAFETY: nothing else touches the cache during this read.
            unsafe { (*c.0.get()).counts[class] as usize }
        })
    }

    #[test]
    fn a_freed_block_is_the_next_one_of_its_class() {
        let layout = Layout::from_size_align(200, 8).unwrap();
        let class = class_of(layout).unwrap();
        let a = allocate(layout);
        let before = kept(class);
        assert!(before < PER_CLASS);
        // SAFETY: `a` came from `allocate(layout)` and is not used again.
        unsafe { release(a, layout) };
        assert_eq!(kept(class), before + 1);
        // Another size of the same class gets the same block.
        let b = allocate(Layout::from_size_align(193, 16).unwrap());
        assert_eq!(a, b);
        // SAFETY: as above, with the layout `b` was allocated with.
        unsafe { release(b, Layout::from_size_align(193, 16).unwrap()) };
    }

    #[test]
    fn each_class_keeps_a_bounded_number_and_frees_the_rest() {
        let layout = Layout::from_size_align(40, 8).unwrap();
        let class = class_of(layout).unwrap();
        let blocks: Vec<_> = (0..PER_CLASS + 3).map(|_| allocate(layout)).collect();
        for &b in &blocks {
            // Writable over the whole class size.
            // SAFETY: a fresh block of at least 48 bytes.
            unsafe { b.as_ptr().write_bytes(0xa5, 48) };
        }
        for b in blocks {
            // SAFETY: from `allocate(layout)`, not used again.
            unsafe { release(b, layout) };
        }
        assert_eq!(kept(class), PER_CLASS);
    }

    #[test]
    fn large_and_overaligned_blocks_are_not_kept() {
        assert_eq!(class_of(Layout::from_size_align(MAX + 1, 8).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(64, 64).unwrap()), None);
        assert_eq!(
            class_of(Layout::from_size_align(MAX, 16).unwrap()),
            Some(CLASSES - 1)
        );
        assert_eq!(class_of(Layout::from_size_align(1, 1).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(16, 1).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(17, 1).unwrap()), Some(1));
        let big = Layout::from_size_align(MAX + 100, 8).unwrap();
        let p = allocate(big);
        // SAFETY: from `allocate(big)`, not used again.
        unsafe { release(p, big) };
    }
}
