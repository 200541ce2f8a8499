//! The completion driver: owns every in-flight op and parks the thread.
//!
//! How it works: each submitted op gets a slot in a slab, keyed by the SQE's
//! `user_data`. The slot's [`Lifecycle`] says who is interested in the result:
//! a waiting future (its waker), nobody yet (`Submitted`), a dropped future
//! (`Abandoned`: the driver now owns the op's buffers and fds and finishes it
//! when the completion comes), or nobody because it is done (`Completed`).
//! Only the io_uring driver exists so far; the poll (mio) driver will be a
//! second variant chosen at run time.

mod uring;

use std::task::Waker;

pub(crate) use uring::{Driver, Unparker};

/// What happens to an in-flight op's slot.
pub(crate) enum Lifecycle {
    /// A future waits for the result.
    Waiting(Waker),
    /// The future was dropped; the driver keeps what the kernel may touch
    /// until the completion arrives, then finishes the op.
    Abandoned(Option<Box<dyn Abandoned>>),
    /// The result is in, waiting for its future to take it.
    Completed(i32, u32),
}

/// An op whose future went away while the kernel still had it.
pub(crate) trait Abandoned {
    /// Handles the final completion: keeps data or fds for the next op on the
    /// same socket, or releases them. Runs inside the driver, so it must not
    /// call back into it (closing an fd goes through `core::close_fd`).
    fn complete(self: Box<Self>, res: i32, flags: u32);
}
