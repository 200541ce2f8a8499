//! Runtime counters ([`Stats`]) and the ring a runtime runs on ([`RingFlags`]).
//!
//! How it works: a runtime is single-threaded, so its counters are plain
//! `Cell<u64>`s in one [`Counters`] shared (`Rc`) by the executor and the
//! driver; counting is a load, an add and a store, and reading them all
//! ([`Runtime::stats`](crate::Runtime::stats)) copies a dozen integers. The one
//! counter bumped from other threads, remote wake-ups, is an atomic on the
//! runtime's shared part. Nothing here takes a lock or makes a syscall.

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

/// What a runtime has done since it was built: syscalls, queue traffic,
/// scheduling. Take two snapshots and [`since`](Stats::since) for a rate.
///
/// On the poll driver the io_uring-only counters stay at zero:
/// `sqes_submitted`, `in_flight`, `in_flight_max`, `cq_overflows`, `cancels`;
/// `enters` counts `epoll_wait` calls and `cqes_reaped` readiness events.
///
/// ```
/// let rt = corio::Runtime::new().unwrap();
/// rt.block_on(async { corio::nop().await.unwrap() });
/// let s = rt.stats();
/// assert!(s.tasks_polled >= 1);
/// println!("{s}");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// `io_uring_enter` calls (poll driver: `epoll_wait` calls).
    pub enters: u64,
    /// Submission queue entries handed to the kernel, corio's own (the
    /// wake-up read, cancels, closes) included.
    pub sqes_submitted: u64,
    /// Completion queue entries taken off the ring (poll driver: readiness
    /// events).
    pub cqes_reaped: u64,
    /// Operations the kernel holds now: SQEs submitted whose final CQE has
    /// not been reaped (a multishot op counts once until its last CQE). The
    /// wake-up read the driver keeps in flight is one of them.
    pub in_flight: u64,
    /// The highest `in_flight` seen.
    pub in_flight_max: u64,
    /// How often the driver found completions backed up in the kernel
    /// (`IORING_SQ_CQ_OVERFLOW`: the completion queue was full) and flushed
    /// them. None is lost (`IORING_FEAT_NODROP`), but each costs a syscall:
    /// a sign that [`cq_entries`](crate::Builder::cq_entries) is too small
    /// or [`max_completions_per_tick`](crate::Builder::max_completions_per_tick)
    /// too low.
    pub cq_overflows: u64,
    /// `ASYNC_CANCEL`s submitted for dropped operations (and at shutdown).
    pub cancels: u64,
    /// Polls of spawned tasks and of the `block_on` future.
    pub tasks_polled: u64,
    /// Blocking waits in the kernel (the thread had nothing to run).
    pub parks: u64,
    /// Parks avoided because work arrived while the executor spun
    /// ([`spin_before_park`](crate::Builder::spin_before_park)).
    pub spin_hits: u64,
    /// Tasks woken from other threads (through the remote queue), and
    /// tasks sent here by `spawn_on` from another shard.
    pub remote_wakeups: u64,
    /// Pooled receives that found the buffer pool empty (`ENOBUFS` from a
    /// multishot receive on io_uring; no free buffer on the poll driver):
    /// a sign the pool is too small for the load.
    pub enobufs: u64,
    /// Syscalls that found their fd not ready (`EAGAIN`): on the poll
    /// driver, attempts made on a stale belief that the fd was ready; on
    /// io_uring, completions of sockets in `O_NONBLOCK` mode that were
    /// re-armed.
    pub would_blocks: u64,
    /// Wake-ups this runtime sent to parked runtimes on other threads as an
    /// `IORING_OP_MSG_RING` from its own ring (see
    /// [`Builder::msg_ring_wakeups`](crate::Builder::msg_ring_wakeups)),
    /// instead of an eventfd write. Each is one of `sqes_submitted` that
    /// posts no completion here unless it fails.
    pub msg_ring_wakeups: u64,
    /// Slots of the registered-file table in use now (a level, like
    /// `in_flight`; see [`Builder::registered_files`](crate::Builder::registered_files)):
    /// accepted connections and opened files whose ops name a slot.
    pub registered_files: u64,
    /// Connections and files not installed because the registered-file
    /// table was full (they work by their plain fd).
    pub registered_files_full: u64,
    /// Positional file reads the page cache answered at once, on their
    /// first poll, without the ring or the blocking pool (see
    /// [`Builder::cached_reads`](crate::Builder::cached_reads)).
    pub cached_reads: u64,
}

impl Stats {
    /// The counts between `earlier` and `self` (two snapshots of the same
    /// runtime). `in_flight` and `in_flight_max` are `self`'s: they are
    /// levels, not counts.
    ///
    /// ```
    /// let rt = corio::Runtime::new().unwrap();
    /// let before = rt.stats();
    /// rt.block_on(async { corio::yield_now().await });
    /// assert!(rt.stats().since(&before).tasks_polled >= 1);
    /// ```
    pub fn since(&self, earlier: &Stats) -> Stats {
        let d = |now: u64, then: u64| now.saturating_sub(then);
        Stats {
            enters: d(self.enters, earlier.enters),
            sqes_submitted: d(self.sqes_submitted, earlier.sqes_submitted),
            cqes_reaped: d(self.cqes_reaped, earlier.cqes_reaped),
            in_flight: self.in_flight,
            in_flight_max: self.in_flight_max,
            cq_overflows: d(self.cq_overflows, earlier.cq_overflows),
            cancels: d(self.cancels, earlier.cancels),
            tasks_polled: d(self.tasks_polled, earlier.tasks_polled),
            parks: d(self.parks, earlier.parks),
            spin_hits: d(self.spin_hits, earlier.spin_hits),
            remote_wakeups: d(self.remote_wakeups, earlier.remote_wakeups),
            enobufs: d(self.enobufs, earlier.enobufs),
            would_blocks: d(self.would_blocks, earlier.would_blocks),
            msg_ring_wakeups: d(self.msg_ring_wakeups, earlier.msg_ring_wakeups),
            registered_files: self.registered_files,
            registered_files_full: d(self.registered_files_full, earlier.registered_files_full),
            cached_reads: d(self.cached_reads, earlier.cached_reads),
        }
    }
}

impl fmt::Display for Stats {
    /// One line: `enters 3 sqes 5 cqes 5 in-flight 1 (max 2) overflows 0
    /// cancels 0 polls 4 parks 2 spin-hits 0 remote 0 enobufs 0
    /// would-blocks 0 msg-ring 0` (then `cached-reads 7` when file reads
    /// were answered from the page cache, and `files 3 (full 0)` when a
    /// registered-file table was used).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "enters {} sqes {} cqes {} in-flight {} (max {}) overflows {} cancels {} \
             polls {} parks {} spin-hits {} remote {} enobufs {} would-blocks {} msg-ring {}",
            self.enters,
            self.sqes_submitted,
            self.cqes_reaped,
            self.in_flight,
            self.in_flight_max,
            self.cq_overflows,
            self.cancels,
            self.tasks_polled,
            self.parks,
            self.spin_hits,
            self.remote_wakeups,
            self.enobufs,
            self.would_blocks,
            self.msg_ring_wakeups,
        )?;
        if self.cached_reads > 0 {
            write!(f, " cached-reads {}", self.cached_reads)?;
        }
        if self.registered_files + self.registered_files_full > 0 {
            write!(
                f,
                " files {} (full {})",
                self.registered_files, self.registered_files_full
            )?;
        }
        Ok(())
    }
}

/// The io_uring instance a runtime runs on: the setup flags the kernel
/// accepted (after any fallback) and the queue sizes it chose.
///
/// ```
/// let rt = corio::Runtime::new().unwrap();
/// match rt.ring_flags() {
///     Some(ring) => println!("io_uring: {ring}"),
///     None => println!("poll driver"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RingFlags {
    /// `IORING_SETUP_SINGLE_ISSUER`.
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN`.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN`.
    pub coop_taskrun: bool,
    /// `IORING_SETUP_TASKRUN_FLAG` (set with either taskrun mode, so the
    /// driver sees pending work without a syscall).
    pub taskrun_flag: bool,
    /// `IORING_SETUP_SQPOLL` and its idle time.
    pub sqpoll: Option<Duration>,
    /// `IORING_SETUP_SQ_AFF`: the CPU of the SQPOLL thread.
    pub sqpoll_cpu: Option<u32>,
    /// The ring fd is registered (`IORING_REGISTER_RING_FDS`).
    pub registered_ring_fd: bool,
    /// Submission queue size (as the kernel rounded it).
    pub sq_entries: u32,
    /// Completion queue size (as the kernel rounded it).
    pub cq_entries: u32,
}

impl fmt::Display for RingFlags {
    /// `SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG, registered ring fd, sq 1024, cq 2048`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        let flags = [
            (self.single_issuer, "SINGLE_ISSUER"),
            (self.defer_taskrun, "DEFER_TASKRUN"),
            (self.coop_taskrun, "COOP_TASKRUN"),
            (self.taskrun_flag, "TASKRUN_FLAG"),
            (self.sqpoll.is_some(), "SQPOLL"),
            (self.sqpoll_cpu.is_some(), "SQ_AFF"),
        ];
        for (on, name) in flags {
            if on {
                names.push(name);
            }
        }
        if names.is_empty() {
            f.write_str("no setup flags")?;
        } else {
            f.write_str(&names.join("|"))?;
        }
        if let Some(idle) = self.sqpoll {
            write!(f, " (idle {idle:?}")?;
            if let Some(cpu) = self.sqpoll_cpu {
                write!(f, ", cpu {cpu}")?;
            }
            f.write_str(")")?;
        }
        if self.registered_ring_fd {
            f.write_str(", registered ring fd")?;
        }
        write!(f, ", sq {}, cq {}", self.sq_entries, self.cq_entries)
    }
}

/// The counters of one runtime, bumped by its executor and its driver.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    enters: Cell<u64>,
    sqes: Cell<u64>,
    cqes: Cell<u64>,
    in_flight: Cell<u64>,
    in_flight_max: Cell<u64>,
    cq_overflows: Cell<u64>,
    cancels: Cell<u64>,
    tasks_polled: Cell<u64>,
    parks: Cell<u64>,
    spin_hits: Cell<u64>,
    enobufs: Cell<u64>,
    would_blocks: Cell<u64>,
    msg_ring_wakeups: Cell<u64>,
    registered_files: Cell<u64>,
    registered_files_full: Cell<u64>,
    cached_reads: Cell<u64>,
}

#[inline]
fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

/// `IORING_CQE_F_MORE`: more CQEs will come for this op (multishot).
use super::op::CQE_F_MORE;

impl Counters {
    /// One syscall into the kernel (`io_uring_enter`, `epoll_wait`).
    #[inline]
    pub(crate) fn enter(&self) {
        bump(&self.enters, 1);
    }

    /// One SQE handed to the kernel: one more op in flight. (An SQE that
    /// yields no CQE, `IOSQE_CQE_SKIP_SUCCESS`, must not be counted.)
    #[inline]
    #[cfg_attr(not(corio_uring), allow(dead_code))] // io_uring only
    pub(crate) fn sqe(&self) {
        bump(&self.sqes, 1);
        let n = self.in_flight.get() + 1;
        self.in_flight.set(n);
        if n > self.in_flight_max.get() {
            self.in_flight_max.set(n);
        }
    }

    /// One CQE reaped with `flags`; unless more follow, its op is done.
    #[inline]
    #[cfg_attr(not(corio_uring), allow(dead_code))] // io_uring only
    pub(crate) fn cqe(&self, flags: u32) {
        bump(&self.cqes, 1);
        if flags & CQE_F_MORE == 0 {
            self.in_flight.set(self.in_flight.get().saturating_sub(1));
        }
    }

    /// A MSG_RING wake-up queued: an SQE whose success posts no CQE here
    /// (`IOSQE_CQE_SKIP_SUCCESS`), so it is not counted as in flight.
    #[inline]
    #[cfg_attr(not(corio_uring), allow(dead_code))] // io_uring only
    pub(crate) fn msg_ring_wakeup(&self) {
        bump(&self.sqes, 1);
        bump(&self.msg_ring_wakeups, 1);
    }

    /// A CQE that ends no op counted in flight (a MSG_RING wake-up arriving,
    /// or the failure of one sent).
    #[inline]
    #[cfg_attr(not(corio_uring), allow(dead_code))] // io_uring only
    pub(crate) fn cqe_unpaired(&self) {
        bump(&self.cqes, 1);
    }

    /// `n` readiness events (poll driver).
    #[inline]
    pub(crate) fn events(&self, n: u64) {
        bump(&self.cqes, n);
    }

    /// The kernel reported completions kept back on a full CQ.
    #[inline]
    #[cfg_attr(not(corio_uring), allow(dead_code))] // io_uring only
    pub(crate) fn cq_overflow(&self) {
        bump(&self.cq_overflows, 1);
    }

    /// An `ASYNC_CANCEL` submitted.
    #[inline]
    #[cfg_attr(not(corio_uring), allow(dead_code))] // io_uring only
    pub(crate) fn cancel(&self) {
        bump(&self.cancels, 1);
    }

    /// A task (or the `block_on` future) polled.
    #[inline]
    pub(crate) fn task_polled(&self) {
        bump(&self.tasks_polled, 1);
    }

    /// A blocking wait in the kernel.
    #[inline]
    pub(crate) fn park(&self) {
        bump(&self.parks, 1);
    }

    /// Spinning found work before the thread had to park.
    #[inline]
    pub(crate) fn spin_hit(&self) {
        bump(&self.spin_hits, 1);
    }

    /// A receive found the buffer pool empty (`ENOBUFS`).
    #[inline]
    pub(crate) fn enobufs(&self) {
        bump(&self.enobufs, 1);
    }

    /// A syscall found its fd not ready (`EAGAIN`).
    #[inline]
    pub(crate) fn would_block(&self) {
        bump(&self.would_blocks, 1);
    }

    /// A registered-file slot filled (`true`) or emptied (`false`).
    #[cfg_attr(not(corio_uring), allow(dead_code))] // io_uring only
    pub(crate) fn registered_file(&self, added: bool) {
        let n = self.registered_files.get();
        self.registered_files
            .set(if added { n + 1 } else { n.saturating_sub(1) });
    }

    /// A file not installed: the registered-file table was full.
    #[cfg_attr(not(corio_uring), allow(dead_code))] // io_uring only
    pub(crate) fn registered_files_full(&self) {
        bump(&self.registered_files_full, 1);
    }

    #[inline]
    pub(crate) fn cached_read(&self) {
        bump(&self.cached_reads, 1);
    }

    /// A snapshot, with the remote wake-ups counted elsewhere.
    pub(crate) fn snapshot(&self, remote_wakeups: u64) -> Stats {
        Stats {
            enters: self.enters.get(),
            sqes_submitted: self.sqes.get(),
            cqes_reaped: self.cqes.get(),
            in_flight: self.in_flight.get(),
            in_flight_max: self.in_flight_max.get(),
            cq_overflows: self.cq_overflows.get(),
            cancels: self.cancels.get(),
            tasks_polled: self.tasks_polled.get(),
            parks: self.parks.get(),
            spin_hits: self.spin_hits.get(),
            remote_wakeups,
            enobufs: self.enobufs.get(),
            would_blocks: self.would_blocks.get(),
            msg_ring_wakeups: self.msg_ring_wakeups.get(),
            registered_files: self.registered_files.get(),
            registered_files_full: self.registered_files_full.get(),
            cached_reads: self.cached_reads.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_follows_sqes_and_final_cqes() {
        let c = Counters::default();
        c.sqe();
        c.sqe();
        c.cqe(CQE_F_MORE); // a multishot op: still in flight
        let s = c.snapshot(0);
        assert_eq!((s.sqes_submitted, s.cqes_reaped, s.in_flight), (2, 1, 2));
        c.cqe(0);
        c.cqe(0);
        c.cqe(0); // more final CQEs than SQEs must not wrap
        let s = c.snapshot(7);
        assert_eq!((s.in_flight, s.in_flight_max, s.remote_wakeups), (0, 2, 7));
    }

    #[test]
    fn since_subtracts_counts_and_keeps_levels() {
        let c = Counters::default();
        c.enter();
        c.sqe();
        let a = c.snapshot(1);
        c.enter();
        c.enter();
        c.park();
        let b = c.snapshot(4);
        let d = b.since(&a);
        assert_eq!((d.enters, d.parks, d.remote_wakeups), (2, 1, 3));
        assert_eq!((d.in_flight, d.in_flight_max), (1, 1));
        assert_eq!(a.since(&b).enters, 0, "saturates instead of wrapping");
    }
}
