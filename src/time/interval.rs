//! `Interval`: ticks at a fixed period.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::sleep::{Sleep, sleep_until};

/// What an [`Interval`] does with ticks it missed because the task was busy
/// (or the thread was stalled) for longer than one period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire every missed tick at once, back to back, then resume the
    /// original schedule (start + n × period). The default, as in tokio.
    #[default]
    Burst,
    /// Fire one tick now and schedule the next one a full period after it;
    /// the schedule shifts.
    Delay,
    /// Fire one tick now and skip to the next multiple of the period on the
    /// original schedule.
    Skip,
}

/// Ticks every `period`, the first tick completing at once.
///
/// # Panics
///
/// Panics if `period` is zero.
///
/// ```
/// use std::time::Duration;
///
/// corio::run(async {
///     let mut iv = corio::time::interval(Duration::from_millis(2));
///     for _ in 0..3 {
///         iv.tick().await;
///     }
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Ticks every `period`, the first tick at `start`.
///
/// # Panics
///
/// Panics if `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(!period.is_zero(), "corio: interval period must be non-zero");
    Interval {
        sleep: sleep_until(start),
        period,
        missed: MissedTickBehavior::default(),
    }
}

/// A stream of ticks; see [`interval`].
#[derive(Debug)]
pub struct Interval {
    sleep: Sleep,
    period: Duration,
    missed: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick; returns the instant it was scheduled for.
    ///
    /// Cancel-safe: a dropped `tick()` consumes no tick.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| Pin::new(&mut self.sleep).poll(cx)).await;
        let scheduled = self.sleep.deadline();
        let now = Instant::now();
        let next = scheduled + self.period;
        let next = if next > now {
            next
        } else {
            match self.missed {
                MissedTickBehavior::Burst => next,
                MissedTickBehavior::Delay => now + self.period,
                MissedTickBehavior::Skip => {
                    let behind = now.duration_since(scheduled).as_nanos();
                    let periods = behind / self.period.as_nanos() + 1;
                    scheduled + self.period * periods as u32
                }
            }
        };
        self.sleep.reset(next);
        scheduled
    }

    /// Sets how missed ticks are handled.
    pub fn set_missed_tick_behavior(&mut self, b: MissedTickBehavior) {
        self.missed = b;
    }

    /// How missed ticks are handled.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        self.sleep.reset(Instant::now() + self.period);
    }
}
