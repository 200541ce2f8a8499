//! The runtime's counters and ring setup, as the public API names them.
//!
//! How it works: the counters themselves live with the driver
//! (`driver/stats.rs`); [`stats`](super::stats) and
//! [`ring_flags`](super::ring_flags) (in `context.rs`, as they find the
//! current runtime) copy them.

pub use crate::driver::stats::{RingFlags, Stats};
