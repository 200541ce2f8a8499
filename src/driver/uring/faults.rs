//! Fault injection for `io_uring_enter` (tests only): the errors and short
//! submits a kernel may return, on a seeded schedule.
//!
//! How it works: a ring built with `Builder::enter_faults(seed, one_in)`
//! holds an [`EnterFaults`]; before each `io_uring_enter`, about one call in
//! `one_in` is replaced by one of the outcomes the kernel can give instead
//! of a full submit: `EAGAIN` or `EBUSY` with nothing submitted (no memory
//! for a request, completions backed up), `EINTR` with nothing submitted (a
//! signal before the wait), or a short submit — fewer SQEs taken than asked,
//! and then no wait, as the kernel does when it stops at an SQE it cannot
//! take. The driver must lose no op and no completion through any of them.
//! A ring without the knob pays one predictable branch on a `None`.

use std::io;

use super::Ring;

impl Ring {
    /// The submit count and wait of the next `io_uring_enter` (`to_submit`,
    /// `want`) as the fault schedule changes them, or the error it returns
    /// instead of entering.
    #[inline]
    pub(super) fn inject_fault(&mut self, to_submit: u32, want: u32) -> io::Result<(u32, u32)> {
        let Some(faults) = &mut self.faults else {
            return Ok((to_submit, want));
        };
        match faults.pick(to_submit) {
            None => Ok((to_submit, want)),
            Some(Fault::Errno(e)) => Err(io::Error::from_raw_os_error(e)),
            Some(Fault::Short(n)) => Ok((n, 0)),
        }
    }

    /// Faults injected so far: `EAGAIN`, `EBUSY`, `EINTR`, short submits.
    pub(crate) fn injected_faults(&self) -> [u64; 4] {
        self.faults.as_ref().map_or([0; 4], |f| f.counts)
    }
}

/// What one `io_uring_enter` does instead of its normal course.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Fails with this errno, having submitted nothing.
    Errno(i32),
    /// Submits only this many SQEs (fewer than asked) and does not wait.
    Short(u32),
}

/// A seeded schedule of faults and what it injected so far.
#[derive(Debug)]
pub(crate) struct EnterFaults {
    rng: u64,
    one_in: u32,
    /// Injected so far: `EAGAIN`, `EBUSY`, `EINTR`, short submits.
    pub(crate) counts: [u64; 4],
}

impl EnterFaults {
    /// About one enter in `one_in` (at least 2) fails, on the schedule of `seed`.
    pub(crate) fn new(seed: u64, one_in: u32) -> EnterFaults {
        EnterFaults {
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            one_in: one_in.max(2),
            counts: [0; 4],
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The fault for an enter that would submit `to_submit` SQEs, if any.
    pub(crate) fn pick(&mut self, to_submit: u32) -> Option<Fault> {
        if !self.next().is_multiple_of(u64::from(self.one_in)) {
            return None;
        }
        let kind = self.next() % 4;
        let fault = match kind {
            0 => Fault::Errno(libc::EAGAIN),
            1 => Fault::Errno(libc::EBUSY),
            2 => Fault::Errno(libc::EINTR),
            _ if to_submit > 0 => Fault::Short((self.next() % u64::from(to_submit)) as u32),
            _ => return None,
        };
        self.counts[kind as usize] += 1;
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_seeded_and_every_kind_comes() {
        let run = |seed| {
            let mut f = EnterFaults::new(seed, 3);
            let picks: Vec<_> = (0..2_000).map(|_| f.pick(8)).collect();
            (picks, f.counts)
        };
        let (a, counts) = run(7);
        assert_eq!(a, run(7).0, "same seed, same schedule");
        assert!(counts.iter().all(|&c| c > 50), "{counts:?}");
        for p in a.into_iter().flatten() {
            if let Fault::Short(n) = p {
                assert!(n < 8);
            }
        }
        let mut f = EnterFaults::new(1, 2);
        for _ in 0..1_000 {
            assert!(
                !matches!(f.pick(0), Some(Fault::Short(_))),
                "nothing to cut short"
            );
        }
    }
}
