//! A task's hold on its runtime: [`SchedRef`], a strong reference of the
//! runtime's `Arc<Shared>` that the runtime's thread keeps between tasks.
//!
//! How it works: every task's metadata holds a strong reference of its
//! runtime's `Shared` (a wake-up from another thread reaches the remote
//! queue through it). Taking one at each spawn and giving it back at each
//! free would be two locked instructions per task (about 13 ns on this
//! project's VM). Instead, a task freed on its runtime's thread (the usual
//! case) gives its reference to the core (`Core::kept`, at most
//! [`KEPT_MAX`]), and the next spawn there takes it back: no atomic in
//! steady state. The count the `Arc` holds is always at least the number of
//! holders, kept ones included; the core gives the kept ones back when it
//! is dropped. A task freed anywhere else (its last waker dropped on another
//! thread, or after its runtime is gone) drops its reference as usual.

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::Arc;

use super::context::with_core;
use super::core::{Core, Shared};

/// Kept references a core holds at most (beyond it they are dropped).
pub(crate) const KEPT_MAX: usize = 4096;

/// A strong reference of a runtime's `Shared`, given back to the runtime's
/// core when dropped on its thread.
#[derive(Debug)]
pub(crate) struct SchedRef(ManuallyDrop<Arc<Shared>>);

impl SchedRef {
    /// A reference of `core`'s runtime: a kept one if the core has one.
    #[inline]
    pub(crate) fn of(core: &Core) -> SchedRef {
        let kept = core.kept.get();
        if kept == 0 {
            return SchedRef(ManuallyDrop::new(core.shared.clone()));
        }
        core.kept.set(kept - 1);
        // SAFETY: the core owns `kept` strong counts of its `Shared` beyond
        // its own `Arc` (given to it by `Drop` below); one of them becomes
        // this `Arc`.
        SchedRef(ManuallyDrop::new(unsafe {
            Arc::from_raw(Arc::as_ptr(&core.shared))
        }))
    }
}

impl From<Arc<Shared>> for SchedRef {
    fn from(shared: Arc<Shared>) -> SchedRef {
        SchedRef(ManuallyDrop::new(shared))
    }
}

impl Deref for SchedRef {
    type Target = Arc<Shared>;

    #[inline(always)]
    fn deref(&self) -> &Arc<Shared> {
        &self.0
    }
}

impl Drop for SchedRef {
    #[inline]
    fn drop(&mut self) {
        let ptr = Arc::as_ptr(&self.0);
        let kept = with_core(|core| match core {
            Some(core) if std::ptr::eq(Arc::as_ptr(&core.shared), ptr) => {
                let kept = core.kept.get();
                (kept < KEPT_MAX).then(|| core.kept.set(kept + 1)).is_some()
            }
            _ => false,
        });
        if !kept {
            // SAFETY: taken once, here; the field is not used again.
            drop(unsafe { ManuallyDrop::take(&mut self.0) });
        }
        // Kept: the core owns the strong count now (the `Arc` is not
        // dropped: `ManuallyDrop`).
    }
}

/// Gives back the references `core` kept (when it is dropped).
pub(crate) fn release_kept(core: &Core) {
    let ptr = Arc::as_ptr(&core.shared);
    for _ in 0..core.kept.replace(0) {
        // SAFETY: each kept count was a strong count a `SchedRef` gave the
        // core; the core's own `Arc` keeps one more, so none of these
        // decrements frees the `Shared`.
        unsafe { Arc::decrement_strong_count(ptr) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::context;

    #[test]
    fn kept_references_are_reused_capped_and_given_back() {
        let rt = crate::Runtime::new().unwrap();
        let weak = rt.block_on(async {
            let core = context::current("the test");
            let base = Arc::strong_count(&core.shared);
            crate::spawn(async {}).await.unwrap();
            // The task's reference went back to the core, not to the `Arc`.
            assert_eq!(core.kept.get(), 1);
            assert_eq!(Arc::strong_count(&core.shared), base + 1);
            for _ in 0..100 {
                crate::spawn(async {}).await.unwrap();
            }
            assert_eq!(core.kept.get(), 1, "a spawn did not take the kept one");
            assert_eq!(Arc::strong_count(&core.shared), base + 1);
            // More tasks alive at once than the core keeps: the rest drop.
            let all: Vec<_> = (0..KEPT_MAX + 100)
                .map(|_| crate::spawn(async {}))
                .collect();
            for h in all {
                h.await.unwrap();
            }
            assert_eq!(core.kept.get(), KEPT_MAX);
            assert_eq!(Arc::strong_count(&core.shared), base + KEPT_MAX);
            Arc::downgrade(&core.shared)
        });
        drop(rt);
        assert!(
            weak.upgrade().is_none(),
            "kept references outlived the runtime"
        );
    }
}
