//! Freed task blocks, kept on their thread for the next spawn.
//!
//! How it works: a task block of at most [`MAX`] bytes and alignment at most
//! [`ALIGN`] is allocated with its size rounded up to its class's (24, 40,
//! 56, … bytes: [`CLASS`] apart, each what a glibc chunk of 16 bytes more
//! holds, so the rounding never takes a larger chunk) and alignment
//! [`ALIGN`], so every block of a class has one layout. Freeing one puts it on its class's list on the freeing
//! thread, up to [`PER_CLASS`] blocks (the rest go back to the allocator);
//! a spawn of that class takes one from there. A task spawned and joined
//! in a loop then costs no allocator call: under callgrind, glibc's
//! `malloc` and `free` were 134 of the 694 instructions of a spawn + join.
//! What a thread keeps is bounded ([`CLASSES`] × [`PER_CLASS`] blocks,
//! 34 KiB at most) and goes back to the allocator when the thread exits.
//! Larger or more aligned blocks go straight to the allocator.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::cell::UnsafeCell;
use std::ptr::NonNull;

/// Size classes are multiples of this many bytes.
pub(super) const CLASS: usize = 16;
/// Every kept block has this alignment.
pub(super) const ALIGN: usize = 16;
/// The smallest class's size.
const FIRST: usize = 24;
/// The number of classes.
pub(super) const CLASSES: usize = 32;
/// The largest block kept.
pub(super) const MAX: usize = FIRST + (CLASSES - 1) * CLASS;
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
    // SAFETY: a non-zero size (below isize::MAX) and a power-of-two
    // alignment make a valid layout.
    unsafe { Layout::from_size_align_unchecked(FIRST + class * CLASS, ALIGN) }
}

/// The class of a block of `layout`, if blocks of it are kept (none in the
/// loom model, which frees blocks on its threads in any order).
#[inline(always)]
fn class_of(layout: Layout) -> Option<usize> {
    let kept = !cfg!(all(test, corio_loom));
    (kept && layout.size() <= MAX && layout.align() <= ALIGN && layout.size() > 0)
        .then(|| layout.size().saturating_sub(FIRST).div_ceil(CLASS))
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

#[cfg(all(test, not(corio_loom)))]
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
        let size = class_layout(class).size();
        assert_eq!(size, 40);
        let blocks: Vec<_> = (0..PER_CLASS + 3).map(|_| allocate(layout)).collect();
        for &b in &blocks {
            // Writable over the whole class size.
            // SAFETY: a block of its class's size.
            unsafe { b.as_ptr().write_bytes(0xa5, size) };
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
        assert_eq!(class_of(Layout::from_size_align(24, 1).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(25, 1).unwrap()), Some(1));
        for size in 1..=MAX {
            let class = class_of(Layout::from_size_align(size, 8).unwrap()).unwrap();
            let fits = class_layout(class).size();
            assert!(
                fits >= size && (class == 0 || fits < size + CLASS),
                "{size} in {fits}"
            );
            // A glibc chunk (8 bytes of header, 16-byte steps, 32 at least)
            // is no larger for the rounded size.
            let chunk = |n: usize| (n + 8).div_ceil(16).max(2) * 16;
            assert_eq!(chunk(fits), chunk(size), "{size}");
        }
        let big = Layout::from_size_align(MAX + 100, 8).unwrap();
        let p = allocate(big);
        // SAFETY: from `allocate(big)`, not used again.
        unsafe { release(p, big) };
    }
}
