//! The thread-local "current runtime" pointer.
//!
//! How it works: `block_on` (and runtime shutdown) install the runtime's
//! [`Core`] in a thread-local slot for their duration; `spawn`, ops and timers
//! find their runtime through it. Nesting is refused: a second `block_on` on a
//! thread that is already inside one panics with a message that says so.
//! A second thread-local keeps a plain pointer to the same core: it has no
//! destructor, so reading it (on every wake-up and every op) is a load, not
//! a borrow behind a liveness check.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::core::Core;

thread_local! {
    /// Owns the current core (keeps it alive while installed).
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
    /// The same core as a plain pointer (null when none is installed).
    static FAST: Cell<*const Core> = const { Cell::new(std::ptr::null()) };
}

fn set_fast(core: Option<&Rc<Core>>) {
    FAST.with(|f| f.set(core.map_or(std::ptr::null(), Rc::as_ptr)));
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
        set_fast(Some(&core));
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
    set_fast(Some(&core));
    EnterGuard {
        prev: CURRENT.with(|c| c.borrow_mut().replace(core)),
        ring_closes,
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        crate::release::set_ring_closes(self.ring_closes);
        set_fast(prev.as_ref());
        // Take the value out first so its drop runs without the borrow held.
        let old = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), prev));
        drop(old);
    }
}

/// Runs `f` with the current runtime, if this thread is inside one.
#[inline]
pub(crate) fn with_core<R>(f: impl FnOnce(Option<&Core>) -> R) -> R {
    let p = FAST.with(Cell::get);
    // SAFETY: `FAST` is non-null only while `CURRENT` holds an `Rc` of
    // that very core (set and reset together above), so it points at a live
    // `Core`; the reference does not outlive this call.
    f(unsafe { p.as_ref() })
}

/// The current runtime.
///
/// # Panics
///
/// Panics with a message naming `what` when called outside a runtime.
#[inline]
#[track_caller]
pub(crate) fn current(what: &str) -> Rc<Core> {
    let p = FAST.with(Cell::get);
    if p.is_null() {
        panic!(
            "corio: {what} must be called from inside a corio runtime; \
             wrap the code in corio::run(async {{ ... }}) or Runtime::block_on"
        );
    }
    // SAFETY: as in `with_core`, `p` is the `Rc::as_ptr` of the core
    // `CURRENT` owns: one more strong count makes a new, owned `Rc`.
    unsafe {
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
    }
}
