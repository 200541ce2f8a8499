//! The current runtime's counters and ring, for code that runs on it.
//!
//! How it works: the counters themselves live with the driver
//! (`driver/stats.rs`); these functions find the current runtime through the
//! thread's context and copy them.

use super::context;
pub use crate::driver::stats::{RingFlags, Stats};

/// The counters of the runtime this code runs on (in a sharded runtime,
/// this shard's).
///
/// # Panics
///
/// Panics outside a corio runtime.
///
/// ```
/// corio::run(async {
///     corio::nop().await.unwrap();
///     let s = corio::runtime::stats();
///     assert!(s.tasks_polled >= 1);
/// });
/// ```
#[track_caller]
pub fn stats() -> Stats {
    context::current("corio::runtime::stats").stats()
}

/// The io_uring setup of the runtime this code runs on; `None` on the poll
/// driver.
///
/// # Panics
///
/// Panics outside a corio runtime.
#[track_caller]
pub fn ring_flags() -> Option<RingFlags> {
    context::current("corio::runtime::ring_flags").ring_flags
}
