//! Reading the per-op latency histograms (`Builder::op_latency`).
//!
//! How it works: the driver keeps one log-bucketed histogram per op kind
//! (`driver/latency.rs`); these calls copy a summary of each out, or clear
//! them, on the runtime (shard) the calling code runs on.

use std::time::Duration;

use super::context;
use super::core::Core;

/// The latency of one kind of op, from [`op_latency`].
///
/// Percentiles are bucket bounds (at most 25 % above the true value, never
/// above `max`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpLatency {
    /// The op kind: `Recv`, `Send`, `Accept`, `Timeout`, `Nop`…
    pub kind: &'static str,
    /// How many ops were timed.
    pub count: u64,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The longest.
    pub max: Duration,
    /// The mean.
    pub mean: Duration,
}

pub(super) fn summary(core: &Core) -> Vec<OpLatency> {
    let mut driver = core.driver.borrow_mut();
    let Some(lat) = driver.latencies() else {
        return Vec::new();
    };
    lat.snapshot()
        .into_iter()
        .map(|(kind, h)| OpLatency {
            kind,
            count: h.count(),
            p50: h.quantile(0.50),
            p99: h.quantile(0.99),
            max: h.max(),
            mean: h.mean(),
        })
        .collect()
}

/// The op latencies of the runtime (in a sharded runtime, the shard) this
/// code runs on, one entry per op kind seen, sorted by kind; empty unless
/// the runtime was built with
/// [`Builder::op_latency(true)`](crate::Builder::op_latency).
///
/// # Panics
///
/// Panics outside a corio runtime.
///
/// ```
/// let rt = corio::Builder::new().op_latency(true).build().unwrap();
/// rt.block_on(async {
///     corio::nop().await.unwrap();
///     let lat = corio::runtime::op_latency();
///     let nop = lat.iter().find(|l| l.kind == "Nop").unwrap();
///     assert_eq!(nop.count, 1);
///     println!("Nop: p50 {:?} p99 {:?}", nop.p50, nop.p99);
/// });
/// ```
#[track_caller]
pub fn op_latency() -> Vec<OpLatency> {
    summary(&context::current("corio::runtime::op_latency"))
}

/// Clears the op latencies of the runtime (shard) this code runs on, so
/// the next [`op_latency`] covers only what comes after.
///
/// # Panics
///
/// Panics outside a corio runtime.
#[track_caller]
pub fn reset_op_latency() {
    let core = context::current("corio::runtime::reset_op_latency");
    if let Some(lat) = core.driver.borrow_mut().latencies() {
        lat.reset();
    }
}
