//! Time: `sleep`, `timeout` and `interval`.
//!
//! How it works: each runtime keeps a timer store (an indexed binary heap of
//! deadlines). A [`Sleep`] registers on its first poll and unregisters when
//! dropped; each executor tick fires the timers that are due, and when the
//! thread parks, the driver's wait is bounded by the earliest deadline — the
//! runtime never spins waiting for time to pass.

mod interval;
mod sleep;
mod timeout;

pub use interval::{Interval, MissedTickBehavior, interval, interval_at};
pub use sleep::{Sleep, sleep, sleep_until};
pub use timeout::{Elapsed, Timeout, timeout, timeout_at};

pub use std::time::{Duration, Instant};
