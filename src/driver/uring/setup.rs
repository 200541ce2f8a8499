//! io_uring setup from the builder's knobs: which setup flags to try, in order.
//!
//! How it works: every taskrun flag the builder leaves unset is tried, and
//! dropped when the kernel refuses it (`EINVAL`), from the most capable set
//! (`SINGLE_ISSUER | DEFER_TASKRUN`) through `COOP_TASKRUN` to none; a flag
//! set explicitly is in (or out of) every attempt, and SQPOLL, when asked for,
//! is in all of them. When every attempt fails and some flag was set
//! explicitly, a ring without flags tells whether io_uring works at all: if
//! it does, the error names the flag the kernel refused and is marked
//! ([`is_knob_refusal`]) so that `Auto` reports it instead of falling back to
//! the poll driver.

use std::io;
use std::time::Duration;

use io_uring::IoUring;

use crate::driver::config::DriverConfig;
use crate::driver::stats::RingFlags;

/// The taskrun-related setup flags of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Flags {
    pub(crate) single_issuer: bool,
    pub(crate) defer_taskrun: bool,
    pub(crate) coop_taskrun: bool,
}

impl Flags {
    fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.single_issuer {
            v.push("SINGLE_ISSUER");
        }
        if self.defer_taskrun {
            v.push("DEFER_TASKRUN");
        }
        if self.coop_taskrun {
            v.push("COOP_TASKRUN");
        }
        v
    }
}

/// Everything `io_uring_setup` is asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub(crate) entries: u32,
    pub(crate) cq_entries: u32,
    pub(crate) flags: Flags,
    /// SQPOLL idle time in milliseconds, and the thread's CPU.
    pub(crate) sqpoll: Option<(u32, Option<u32>)>,
}

impl Spec {
    /// Sets up a ring as specified (`TASKRUN_FLAG` comes with either
    /// taskrun mode).
    pub(crate) fn build(&self) -> io::Result<IoUring> {
        let mut rb = IoUring::builder();
        let f = self.flags;
        if f.single_issuer {
            rb.setup_single_issuer();
        }
        if f.defer_taskrun {
            rb.setup_defer_taskrun();
        }
        if f.coop_taskrun {
            rb.setup_coop_taskrun();
        }
        if f.defer_taskrun || f.coop_taskrun {
            rb.setup_taskrun_flag();
        }
        if let Some((idle, cpu)) = self.sqpoll {
            rb.setup_sqpoll(idle);
            if let Some(cpu) = cpu {
                rb.setup_sqpoll_cpu(cpu);
            }
        }
        rb.setup_cqsize(self.cq_entries);
        rb.build(self.entries)
    }
}

/// The flag sets to try for `b`, most capable first.
pub(crate) fn candidates(b: &DriverConfig) -> Vec<Flags> {
    let defaults = [
        (true, true, false),
        (true, false, true),
        (false, false, true),
        (false, false, false),
    ];
    let mut out: Vec<Flags> = Vec::with_capacity(4);
    for (si, dt, ct) in defaults {
        let mut f = Flags {
            single_issuer: b.single_issuer.unwrap_or(si),
            defer_taskrun: b.defer_taskrun.unwrap_or(dt),
            coop_taskrun: b.coop_taskrun.unwrap_or(ct),
        };
        if b.defer_taskrun.is_none() {
            // Unasked-for DEFER_TASKRUN gives way to SQPOLL and to an
            // explicit `single_issuer(false)`; COOP_TASKRUN takes over.
            if f.defer_taskrun && (b.sqpoll.is_some() || !f.single_issuer) {
                f.defer_taskrun = false;
                if b.coop_taskrun.is_none() {
                    f.coop_taskrun = true;
                }
            }
        } else if f.defer_taskrun && b.single_issuer.is_none() {
            f.single_issuer = true; // DEFER_TASKRUN requires it
        }
        if f.defer_taskrun && !f.single_issuer {
            continue; // refused by `Builder::build` already
        }
        if !out.contains(&f) {
            out.push(f);
        }
        // Newer kernels (6.13+) refuse the taskrun flags with SQPOLL ("IPI
        // related flags don't make sense"), older ones take them: try both.
        let without = Flags {
            coop_taskrun: false,
            ..f
        };
        if b.sqpoll.is_some() && b.coop_taskrun.is_none() && !out.contains(&without) {
            out.push(without);
        }
    }
    out
}

/// SQPOLL's idle time and CPU as `io_uring_setup` takes them.
fn sqpoll_of(b: &DriverConfig) -> Option<(u32, Option<u32>)> {
    b.sqpoll
        .map(|idle| (idle.as_millis().min(u32::MAX as u128) as u32, b.sqpoll_cpu))
}

/// True when the builder sets any setup flag explicitly.
fn explicit(b: &DriverConfig) -> bool {
    b.single_issuer.is_some()
        || b.defer_taskrun.is_some()
        || b.coop_taskrun.is_some()
        || b.sqpoll.is_some()
}

/// A setup flag set explicitly that the kernel refused.
#[derive(Debug)]
struct KnobRefused(String);

impl std::fmt::Display for KnobRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KnobRefused {}

/// True when `e` says the kernel refused a flag the builder set explicitly
/// (io_uring itself works): `Auto` must not hide that behind a fallback.
pub(crate) fn is_knob_refusal(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|r| r.is::<KnobRefused>())
}

/// `e` from io_uring memory the kernel pins (the ring, a provided-buffer
/// ring, registered buffers), explained when it is `ENOMEM`: for a process
/// without `CAP_IPC_LOCK` that memory counts against `RLIMIT_MEMLOCK`,
/// which containers often set low (64 KiB is common).
pub(crate) fn explain_memlock(e: io::Error, what: &str) -> io::Error {
    if e.raw_os_error() != Some(libc::ENOMEM) {
        return e;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`.
    let limit = match unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } {
        0 if lim.rlim_cur == libc::RLIM_INFINITY => "unlimited".to_string(),
        0 => format!("{} KiB", lim.rlim_cur / 1024),
        _ => "unknown".to_string(),
    };
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "corio: {what} failed: {e}. The kernel counts this memory against \
             RLIMIT_MEMLOCK (`ulimit -l`, {limit} here) for processes without \
             CAP_IPC_LOCK: raise the limit, ask for less (Builder::entries, \
             Builder::buffer_pool, a smaller FixedBufPool) or use the poll driver"
        ),
    )
}

/// Sets up the ring `b` asks for; returns it and the flags it got.
pub(crate) fn build_ring(b: &DriverConfig) -> io::Result<(IoUring, Flags)> {
    let spec = |flags| Spec {
        entries: b.entries,
        cq_entries: b.cq_entries.unwrap_or(b.entries.saturating_mul(2)),
        flags,
        sqpoll: sqpoll_of(b),
    };
    let mut last = io::Error::from_raw_os_error(libc::EINVAL);
    for flags in candidates(b) {
        match spec(flags).build() {
            Ok(ring) => return Ok((ring, flags)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = e,
            Err(e) if explicit(b) => {
                last = e;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    if !explicit(b) {
        return Err(last);
    }
    // Does io_uring work at all, without the flags?
    let plain = Spec {
        sqpoll: None,
        ..spec(Flags::default())
    };
    drop(plain.build()?);
    // It does: find the flag the kernel refuses on its own.
    let mut asked: Vec<(&str, &str, Spec)> = Vec::new();
    if b.sqpoll.is_some() {
        let (flag, knob) = match b.sqpoll_cpu {
            Some(_) => ("SQPOLL | IORING_SETUP_SQ_AFF", "sqpoll(..).sqpoll_cpu(..)"),
            None => ("SQPOLL", "sqpoll(..)"),
        };
        asked.push((flag, knob, spec(Flags::default())));
    }
    let alone = |f: Flags| Spec {
        sqpoll: None,
        ..spec(f)
    };
    if b.single_issuer == Some(true) {
        let f = Flags {
            single_issuer: true,
            ..Flags::default()
        };
        asked.push(("SINGLE_ISSUER", "single_issuer(true)", alone(f)));
    }
    if b.defer_taskrun == Some(true) {
        let f = Flags {
            single_issuer: true,
            defer_taskrun: true,
            ..Flags::default()
        };
        asked.push(("DEFER_TASKRUN", "defer_taskrun(true)", alone(f)));
    }
    if b.coop_taskrun == Some(true) {
        let f = Flags {
            coop_taskrun: true,
            ..Flags::default()
        };
        asked.push(("COOP_TASKRUN", "coop_taskrun(true)", alone(f)));
    }
    for (flag, knob, s) in asked {
        if let Err(e) = s.build() {
            return Err(refused(
                e.kind(),
                format!(
                    "corio: the kernel refused IORING_SETUP_{flag}, asked for with \
                     Builder::{knob}: {e}; leave the knob unset to let corio fall back"
                ),
            ));
        }
    }
    let tried: Vec<String> = candidates(b)
        .iter()
        .map(|f| {
            let mut n = f.names();
            if b.sqpoll.is_some() {
                n.push("SQPOLL");
            }
            if n.is_empty() {
                "none".into()
            } else {
                n.join("|")
            }
        })
        .collect();
    Err(refused(
        last.kind(),
        format!(
            "corio: the kernel refuses the setup flags set on the builder together, \
             though it accepts each alone (tried {}): {last}",
            tried.join(", ")
        ),
    ))
}

fn refused(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, KnobRefused(msg))
}

/// What a ring built from `b` with `flags` runs with.
pub(crate) fn describe(
    ring: &IoUring,
    flags: Flags,
    b: &DriverConfig,
    registered: bool,
) -> RingFlags {
    let p = ring.params();
    let sqpoll = sqpoll_of(b).map(|(ms, _)| Duration::from_millis(ms.into()));
    RingFlags {
        single_issuer: flags.single_issuer,
        defer_taskrun: flags.defer_taskrun,
        coop_taskrun: flags.coop_taskrun,
        taskrun_flag: flags.defer_taskrun || flags.coop_taskrun,
        sqpoll,
        sqpoll_cpu: sqpoll.and(b.sqpoll_cpu),
        registered_ring_fd: registered,
        sq_entries: p.sq_entries(),
        cq_entries: p.cq_entries(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(set: impl FnOnce(&mut DriverConfig)) -> DriverConfig {
        let mut c = DriverConfig::default();
        set(&mut c);
        c
    }

    fn f(si: bool, dt: bool, ct: bool) -> Flags {
        Flags {
            single_issuer: si,
            defer_taskrun: dt,
            coop_taskrun: ct,
        }
    }

    #[test]
    fn default_ladder() {
        let c = candidates(&DriverConfig::default());
        assert_eq!(
            c,
            [
                f(true, true, false),
                f(true, false, true),
                f(false, false, true),
                f(false, false, false)
            ]
        );
    }

    #[test]
    fn explicit_flags_are_in_or_out_of_every_attempt() {
        let c = candidates(&cfg(|c| c.coop_taskrun = Some(false)));
        assert_eq!(
            c,
            [
                f(true, true, false),
                f(true, false, false),
                f(false, false, false)
            ]
        );
        let c = candidates(&cfg(|c| c.defer_taskrun = Some(true)));
        assert!(
            c.iter().all(|x| x.defer_taskrun && x.single_issuer),
            "{c:?}"
        );
        let c = candidates(&cfg(|c| c.single_issuer = Some(false)));
        assert_eq!(c, [f(false, false, true), f(false, false, false)]);
        let c = candidates(&cfg(|c| {
            c.single_issuer = Some(false);
            c.defer_taskrun = Some(false);
            c.coop_taskrun = Some(false);
        }));
        assert_eq!(c, [f(false, false, false)]);
    }

    #[test]
    fn sqpoll_drops_unasked_defer_taskrun() {
        let c = candidates(&cfg(|c| c.sqpoll = Some(Duration::from_millis(10))));
        assert_eq!(
            c,
            [
                f(true, false, true),
                f(true, false, false),
                f(false, false, true),
                f(false, false, false)
            ]
        );
    }
}
