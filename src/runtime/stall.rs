//! Stall detection: a task poll that holds its shard's thread too long.
//!
//! How it works: with a threshold set ([`Builder::stall_threshold`] or the
//! environment variable `CORIO_STALL_MS`), the executor times every task
//! poll (two clock reads, only then). A poll longer than the threshold is a
//! stall: nothing else on the shard ran meanwhile, no timer fired, no
//! completion was reaped. It is reported with the task's spawn location
//! (recorded by `#[track_caller]` on `spawn`) and how long it held the
//! thread: on stderr, or to the hook set with [`Builder::on_stall`]. As
//! asyncio's debug mode (`slow_callback_duration`) and glommio's stall
//! detector do, the report comes after the poll returns: a task that never
//! returns is not reported (the task dump finds it).
//!
//! [`Builder::stall_threshold`]: crate::Builder::stall_threshold
//! [`Builder::on_stall`]: crate::Builder::on_stall

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

/// The threshold `CORIO_STALL_MS` sets when its value is not a number.
pub(crate) const DEFAULT_STALL: Duration = Duration::from_millis(100);

/// A callback for stall reports, shared by the shards of a runtime.
pub(crate) type StallHook = Arc<dyn Fn(&StallReport) + Send + Sync>;

/// One task poll that ran longer than the stall threshold.
///
/// Given to the hook of [`Builder::on_stall`](crate::Builder::on_stall);
/// without a hook it is printed on stderr (its `Display` form).
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::{Duration, Instant};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let rt = corio::Builder::new()
///     .stall_threshold(Duration::from_millis(20))
///     .on_stall(move |r: &corio::runtime::StallReport| log.lock().unwrap().push(r.location.line()))
///     .build()
///     .unwrap();
/// rt.block_on(async {
///     corio::spawn(async {
///         let t = Instant::now();
///         while t.elapsed() < Duration::from_millis(30) {} // blocks the thread
///     })
///     .await
///     .unwrap();
/// });
/// assert_eq!(seen.lock().unwrap().len(), 1);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StallReport {
    /// Where the task was spawned (for the future given to `block_on`:
    /// where `block_on` was called).
    pub location: &'static Location<'static>,
    /// How long the poll held the thread.
    pub held: Duration,
    /// The threshold it went over.
    pub threshold: Duration,
    /// The shard it ran on (0 for a plain runtime).
    pub shard: usize,
}

impl fmt::Display for StallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corio: stall on shard {}: a poll of the task spawned at {} held the thread for {:.1?} \
             (threshold {:?}); blocking work belongs in spawn_blocking",
            self.shard, self.location, self.held, self.threshold
        )
    }
}

/// A runtime's stall settings: the threshold and where reports go.
#[derive(Clone)]
pub(crate) struct Stall {
    pub(crate) threshold: Duration,
    pub(crate) hook: Option<StallHook>,
}

impl Stall {
    /// Reports a poll that held the thread for `held`, if that is a stall.
    #[inline]
    pub(crate) fn check(&self, location: &'static Location<'static>, held: Duration, shard: usize) {
        if held > self.threshold {
            self.report(StallReport {
                location,
                held,
                threshold: self.threshold,
                shard,
            });
        }
    }

    #[cold]
    fn report(&self, r: StallReport) {
        match &self.hook {
            Some(hook) => hook(&r),
            None => eprintln!("{r}"),
        }
    }
}

/// The threshold `CORIO_STALL_MS` asks for: `None` when unset or `0`
/// (off), its milliseconds when it parses, else [`DEFAULT_STALL`].
pub(crate) fn env_threshold() -> Option<Option<Duration>> {
    let v = std::env::var_os("CORIO_STALL_MS")?;
    Some(parse_ms(v.to_str().unwrap_or("")))
}

fn parse_ms(v: &str) -> Option<Duration> {
    match v.trim().parse::<u64>() {
        Ok(0) => None,
        Ok(ms) => Some(Duration::from_millis(ms)),
        Err(_) => Some(DEFAULT_STALL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        assert_eq!(parse_ms("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_ms(" 5 "), Some(Duration::from_millis(5)));
        assert_eq!(parse_ms("0"), None);
        assert_eq!(parse_ms(""), Some(DEFAULT_STALL));
        assert_eq!(parse_ms("yes"), Some(DEFAULT_STALL));
    }
}
