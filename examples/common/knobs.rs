//! Runtime knobs on the examples' command lines: `--stats` and the ring and
//! executor settings of `corio::Builder`, for performance experiments.
//!
//! Shared by the `echo` and `http_server` examples (`#[path]` module).

use std::time::Duration;

use corio::Builder;

/// The knob options, for usage messages.
pub const USAGE: &str = "[--stats] [--op-latency] [--stall MS] [--coop on|off] [--defer on|off] [--single-issuer on|off] \
     [--sqpoll IDLE_MS] [--sqpoll-cpu CPU] [--register-ring-fd on|off] [--spin MICROS] \
     [--max-cqes N]";

/// `--stats` and the `Builder` knobs; unset knobs keep corio's defaults.
#[derive(Debug, Default, Clone)]
pub struct Knobs {
    /// Print the runtime's counters once a second.
    pub stats: bool,
    /// Per-op latency histograms (printed with `--stats`).
    op_latency: bool,
    /// Stall detection threshold.
    stall: Option<Duration>,
    coop: Option<bool>,
    defer: Option<bool>,
    single_issuer: Option<bool>,
    sqpoll: Option<Duration>,
    sqpoll_cpu: Option<u32>,
    register_ring_fd: Option<bool>,
    spin: Option<Duration>,
    max_cqes: Option<usize>,
}

impl Knobs {
    /// Takes `arg` (`--key VALUE` or `--key=VALUE`, the value from `next`)
    /// if it is a knob: `Ok(true)`. `Ok(false)` when it is not one.
    pub fn parse(
        &mut self,
        arg: &str,
        next: &mut dyn FnMut() -> Option<String>,
    ) -> Result<bool, String> {
        if arg == "--stats" {
            self.stats = true;
            return Ok(true);
        }
        if arg == "--op-latency" {
            self.op_latency = true;
            return Ok(true);
        }
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (arg, None),
        };
        const KEYS: [&str; 9] = [
            "--stall",
            "--coop",
            "--defer",
            "--single-issuer",
            "--sqpoll",
            "--sqpoll-cpu",
            "--register-ring-fd",
            "--spin",
            "--max-cqes",
        ];
        if !KEYS.contains(&key) {
            return Ok(false);
        }
        let value = inline
            .or_else(next)
            .ok_or_else(|| format!("{key} needs a value"))?;
        let on_off = || match value.as_str() {
            "on" | "true" | "1" => Ok(true),
            "off" | "false" | "0" => Ok(false),
            _ => Err(format!("{key}: expected on or off, got {value:?}")),
        };
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{key}: expected a number, got {value:?}"))
        };
        match key {
            "--coop" => self.coop = Some(on_off()?),
            "--defer" => self.defer = Some(on_off()?),
            "--single-issuer" => self.single_issuer = Some(on_off()?),
            "--register-ring-fd" => self.register_ring_fd = Some(on_off()?),
            "--sqpoll" => self.sqpoll = Some(Duration::from_millis(number()?)),
            "--sqpoll-cpu" => self.sqpoll_cpu = Some(number()? as u32),
            "--spin" => self.spin = Some(Duration::from_micros(number()?)),
            "--stall" => self.stall = Some(Duration::from_millis(number()?)),
            _ => self.max_cqes = Some(number()? as usize),
        }
        Ok(true)
    }

    /// `b` with the knobs that were set.
    pub fn apply(&self, mut b: Builder) -> Builder {
        b = b.op_latency(self.op_latency);
        if let Some(v) = self.stall {
            b = b.stall_threshold(v);
        }
        if let Some(v) = self.coop {
            b = b.coop_taskrun(v);
        }
        if let Some(v) = self.defer {
            b = b.defer_taskrun(v);
        }
        if let Some(v) = self.single_issuer {
            b = b.single_issuer(v);
        }
        if let Some(v) = self.sqpoll {
            b = b.sqpoll(v);
        }
        if let Some(v) = self.sqpoll_cpu {
            b = b.sqpoll_cpu(v);
        }
        if let Some(v) = self.register_ring_fd {
            b = b.register_ring_fd(v);
        }
        if let Some(v) = self.spin {
            b = b.spin_before_park(v);
        }
        if let Some(v) = self.max_cqes {
            b = b.max_completions_per_tick(v);
        }
        b
    }
}

/// Spawns a task on the current runtime that prints its ring setup once,
/// then its counters for the last second, once a second, each line
/// prefixed with `label`.
pub fn spawn_stats(label: String) {
    corio::spawn(async move {
        match corio::runtime::ring_flags() {
            Some(ring) => println!("{label}io_uring: {ring}"),
            None => println!("{label}poll driver"),
        }
        let mut tick = corio::time::interval(Duration::from_secs(1));
        tick.tick().await; // the first tick is immediate
        let mut prev = corio::runtime::stats();
        // Stops when the runtime shuts down (it would hold the drain up).
        while corio::runtime::run_until_shutdown(tick.tick())
            .await
            .is_some()
        {
            let now = corio::runtime::stats();
            println!("{label}last 1s: {}", now.since(&prev));
            prev = now;
            // With `--op-latency`: each op kind's latency over the last second.
            let lat = corio::runtime::op_latency();
            if !lat.is_empty() {
                let line: Vec<String> = lat
                    .iter()
                    .map(|l| format!("{} n={} p50={:?} p99={:?}", l.kind, l.count, l.p50, l.p99))
                    .collect();
                println!("{label}op latency 1s: {}", line.join(", "));
                corio::runtime::reset_op_latency();
            }
        }
    });
}
