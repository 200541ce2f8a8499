//! Per-op latency histograms: submit → completion time per op kind.
//!
//! How it works: with `Builder::op_latency(true)` the driver keeps one
//! [`Histogram`] per op kind (the `OpCode::kind_name` label), made the first
//! time that kind completes. A histogram is a fixed array of counters on a
//! log scale: four buckets per power of two of nanoseconds (so a bucket is
//! at most 25 % wide), 252 buckets in all; recording is an index
//! computation and an increment, never an allocation. Percentiles are read
//! as the upper bound of the bucket that holds them (never above the exact
//! maximum, which is kept too). On io_uring the clock starts when the SQE is
//! queued and stops when its completion is reaped; on the poll driver it
//! starts when the op first finds its fd not ready (or its job is handed to
//! the blocking pool) and stops when the op's result is there.

use std::time::{Duration, Instant};

/// Buckets: 4 exact ones below 4 ns, then 4 per power of two up to 2^64 ns.
const BUCKETS: usize = 252;

/// The bucket of `ns` nanoseconds.
#[inline]
fn bucket(ns: u64) -> usize {
    if ns < 4 {
        return ns as usize;
    }
    let e = 63 - ns.leading_zeros() as usize; // 2..=63
    let m = ((ns >> (e - 2)) & 3) as usize;
    (e - 1) * 4 + m
}

/// The largest value in bucket `i`.
fn bucket_max(i: usize) -> u64 {
    if i < 4 {
        return i as u64;
    }
    let e = i / 4 + 1;
    let m = (i % 4) as u64;
    ((4 + m + 1) << (e - 2)).wrapping_sub(1)
}

/// A log-bucketed histogram of durations.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: [u64; BUCKETS],
    count: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
            count: 0,
            max: 0,
            sum: 0,
        }
    }
}

impl Histogram {
    #[inline]
    pub(crate) fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[bucket(ns)] += 1;
        self.count += 1;
        self.max = self.max.max(ns);
        self.sum += u128::from(ns);
    }

    /// The value below which a fraction `q` (0..=1) of the samples lie.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(bucket_max(i).min(self.max));
            }
        }
        Duration::from_nanos(self.max)
    }

    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    pub(crate) fn max(&self) -> Duration {
        Duration::from_nanos(self.max)
    }

    pub(crate) fn mean(&self) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos((self.sum / u128::from(self.count)) as u64)
    }
}

/// The histograms of one driver, one per op kind.
#[derive(Default)]
pub(crate) struct Latencies {
    kinds: Vec<(&'static str, Box<Histogram>)>,
}

impl std::fmt::Debug for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latencies")
            .field("kinds", &self.kinds.len())
            .finish()
    }
}

impl Latencies {
    /// Records one op of kind `kind` that took `d`.
    pub(crate) fn record(&mut self, kind: &'static str, d: Duration) {
        let i = match self
            .kinds
            .iter()
            .position(|(k, _)| std::ptr::eq(*k, kind) || *k == kind)
        {
            Some(i) => i,
            None => {
                self.kinds.push((kind, Box::default()));
                self.kinds.len() - 1
            }
        };
        self.kinds[i].1.record(d);
    }

    /// Each kind's histogram, by kind name.
    pub(crate) fn snapshot(&self) -> Vec<(&'static str, Histogram)> {
        let mut out: Vec<_> = self
            .kinds
            .iter()
            .map(|(k, h)| (*k, (**h).clone()))
            .collect();
        out.sort_by_key(|(k, _)| *k);
        out
    }

    /// Forgets every sample.
    pub(crate) fn reset(&mut self) {
        self.kinds.clear();
    }
}

/// What the io_uring driver keeps with `op_latency` on.
#[derive(Debug, Default)]
pub(crate) struct RingClock {
    pub(crate) hist: Latencies,
    pub(crate) times: SlotTimes,
}

/// The io_uring driver's clock: when each timed op in a slot was queued.
#[derive(Debug, Default)]
pub(crate) struct SlotTimes {
    /// Indexed by slot index: the op's key, kind and queueing time.
    started: Vec<Option<(u64, &'static str, Instant)>>,
}

impl SlotTimes {
    /// The op with `key` (slot index in its low 32 bits) was queued now.
    pub(crate) fn start(&mut self, key: u64, kind: &'static str) {
        let i = (key & 0xffff_ffff) as usize;
        if i >= self.started.len() {
            self.started.resize(i + 1, None);
        }
        self.started[i] = Some((key, kind, Instant::now()));
    }

    /// The op with `key` completed: its kind and time since it was queued.
    pub(crate) fn end(&mut self, key: u64) -> Option<(&'static str, Duration)> {
        let i = (key & 0xffff_ffff) as usize;
        match self.started.get_mut(i) {
            Some(t @ Some(_)) if t.is_some_and(|(k, _, _)| k == key) => {
                let (_, kind, at) = t.take()?;
                Some((kind, at.elapsed()))
            }
            _ => None,
        }
    }
}

/// The short name of an op type for its label: `corio::op::net::Recv<Vec<u8>>`
/// becomes `Recv`.
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bound_their_values() {
        let mut last = 0;
        for ns in [
            0u64,
            1,
            3,
            4,
            5,
            7,
            8,
            9,
            15,
            16,
            1000,
            20_000_000,
            u64::MAX,
        ] {
            let b = bucket(ns);
            assert!(b >= last && b < BUCKETS, "{ns} -> {b}");
            assert!(
                bucket_max(b) >= ns,
                "{ns} above its bucket's max {}",
                bucket_max(b)
            );
            last = b;
        }
        for i in 4..BUCKETS - 1 {
            assert_eq!(bucket(bucket_max(i)), i);
            assert_eq!(bucket(bucket_max(i) + 1), i + 1);
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.max(), Duration::from_millis(100));
        let p50 = h.quantile(0.5);
        assert!(
            p50 >= Duration::from_millis(50) && p50 <= Duration::from_millis(63),
            "{p50:?}"
        );
        let p99 = h.quantile(0.99);
        assert!(p99 >= Duration::from_millis(99) && p99 <= Duration::from_millis(100));
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn names() {
        assert_eq!(
            short_type_name("corio::op::net::Recv<alloc::vec::Vec<u8>>"),
            "Recv"
        );
        assert_eq!(short_type_name("corio::op::Nop"), "Nop");
    }
}
