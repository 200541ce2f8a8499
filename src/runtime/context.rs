//! The thread-local "current runtime" pointer.
//!
//! How it works: `block_on` (and runtime shutdown) install the runtime's
//! [`Core`] in a thread-local slot for their duration; `spawn`, ops and timers
//! find their runtime through it. Nesting is refused: a second `block_on` on a
//! thread that is already inside one panics with a message that says so.

use std::cell::RefCell;
use std::rc::Rc;

use super::core::Core;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Restores the previous context when dropped.
#[derive(Debug)]
pub(crate) struct EnterGuard {
    prev: Option<Rc<Core>>,
    /// Whether the previous runtime closed fds on its ring.
    ring_closes: bool,
}

/// Installs `core` as the current runtime.
///
/// # Panics
///
/// Panics if this thread is already running a corio runtime (`block_on`
/// inside `block_on`).
pub(crate) fn enter(core: Rc<Core>) -> EnterGuard {
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_some() {
            panic!(
                "corio: cannot start a runtime (block_on/run) from inside a corio runtime: \
                 this thread is already driving one. Spawn the future with corio::spawn \
                 and await its JoinHandle instead."
            );
        }
        let ring = core.kind == crate::driver::DriverKind::Uring;
        *c = Some(core);
        EnterGuard {
            prev: None,
            ring_closes: crate::release::set_ring_closes(ring),
        }
    })
}

/// Installs `core` as the current runtime for a while (shutdown), even
/// inside another runtime; the guard restores the previous one.
pub(crate) fn swap(core: Rc<Core>) -> EnterGuard {
    let ring_closes =
        crate::release::set_ring_closes(core.kind == crate::driver::DriverKind::Uring);
    EnterGuard {
        prev: CURRENT.with(|c| c.borrow_mut().replace(core)),
        ring_closes,
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        crate::release::set_ring_closes(self.ring_closes);
        // Take the value out first so its drop runs without the borrow held.
        let old = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), prev));
        drop(old);
    }
}

/// Runs `f` with the current runtime, if this thread is inside one.
#[inline]
pub(crate) fn with_core<R>(f: impl FnOnce(Option<&Rc<Core>>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow().as_ref()))
}

/// The current runtime.
///
/// # Panics
///
/// Panics with a message naming `what` when called outside a runtime.
#[inline]
#[track_caller]
pub(crate) fn current(what: &str) -> Rc<Core> {
    match CURRENT.with(|c| c.borrow().clone()) {
        Some(core) => core,
        None => panic!(
            "corio: {what} must be called from inside a corio runtime; \
             wrap the code in corio::run(async {{ ... }}) or Runtime::block_on"
        ),
    }
}
