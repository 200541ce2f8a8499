//! `Builder`: the knobs of a runtime, then `build()`.
//!
//! How it works: the builder only records settings; `build()` checks them,
//! sets up the io_uring instance (trying `SINGLE_ISSUER | DEFER_TASKRUN` first
//! and falling back flag by flag, unless a flag was set explicitly) and the
//! executor. A runtime is tied to the thread that built it: io_uring's
//! single-issuer mode and the `!Send` tasks both need that.

use std::io;
use std::time::Duration;

use super::Runtime;
use super::observe::ObserveConfig;
use super::stall::StallReport;
use crate::driver::{DriverConfig, DriverKind, OPTIONAL_OPCODES};

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = corio::Builder::new().entries(256).build().unwrap();
/// assert_eq!(rt.block_on(async { 1 + 1 }), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    /// What the driver is built from (ring sizes and flags, pools).
    pub(crate) cfg: DriverConfig,
    pub(crate) tick_tasks: usize,
    pub(crate) task_budget: u32,
    pub(crate) shards: Option<usize>,
    pub(crate) pin_cpus: bool,
    pub(crate) spin_before_park: Duration,
    /// A name `disable_opcodes` did not know (reported by `build`).
    pub(crate) bad_opcode: Option<String>,
    /// Stall detection and task tracking (`observe.rs`).
    pub(crate) observe: ObserveConfig,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Default settings: 1024 submission entries, a completion queue twice as large.
    pub fn new() -> Self {
        Builder {
            cfg: DriverConfig::default(),
            tick_tasks: 256,
            task_budget: 128,
            shards: None,
            pin_cpus: false,
            spin_before_park: Duration::ZERO,
            bad_opcode: None,
            observe: ObserveConfig::default(),
        }
    }

    /// Submission queue size (rounded up to a power of two by the kernel).
    ///
    /// A small queue costs more `io_uring_enter` calls when many ops are
    /// submitted in one tick (a full queue is submitted and refilled), never
    /// a lost op. Default 1024.
    pub fn entries(mut self, entries: u32) -> Self {
        self.cfg.entries = entries;
        self
    }

    /// Completion queue size. Default: twice the submission queue.
    ///
    /// When more completions arrive than fit, the kernel keeps them
    /// (`IORING_FEAT_NODROP`) and the driver flushes them; a small queue costs
    /// extra syscalls, never a completion.
    pub fn cq_entries(mut self, entries: u32) -> Self {
        self.cfg.cq_entries = Some(entries);
        self
    }

    /// How many tasks run before the driver is polled again (default 256).
    ///
    /// Lower values reap completions sooner under load; higher ones batch more
    /// work per `io_uring_enter`.
    pub fn tick_tasks(mut self, n: usize) -> Self {
        self.tick_tasks = n.max(1);
        self
    }

    /// How many already-complete results a task may take in one poll before
    /// it is made to yield (default 128), so that a task whose I/O keeps
    /// completing at once cannot starve the others.
    pub fn task_budget(mut self, n: u32) -> Self {
        self.task_budget = n.max(1);
        self
    }

    /// Which driver to run (default [`DriverKind::Auto`]: io_uring where the
    /// kernel allows it, else the poll driver). The environment variable
    /// `CORIO_DRIVER=uring|poll|auto` overrides this setting.
    ///
    /// Asking for [`DriverKind::Uring`] where io_uring is unavailable makes
    /// [`build`](Self::build) fail with the reason.
    pub fn driver(mut self, kind: DriverKind) -> Self {
        self.cfg.kind = kind;
        self
    }

    /// Most threads the blocking pool (for `spawn_blocking`, and file I/O on
    /// the poll driver) runs at once (default 64); further jobs queue.
    pub fn max_blocking_threads(mut self, n: usize) -> Self {
        self.cfg.max_blocking_threads = n.max(1);
        self
    }

    /// How many shards [`run`](Self::run) starts (default: the number of
    /// CPUs this process may use). Each shard is a thread with its own
    /// executor and driver.
    ///
    /// # Panics
    ///
    /// Panics if `n` is zero.
    pub fn shards(mut self, n: usize) -> Self {
        assert!(n > 0, "corio: a runtime needs at least one shard");
        self.shards = Some(n);
        self
    }

    /// Pins shard `i` to the `i`-th CPU this process may use
    /// (`sched_setaffinity`). [`run`](Self::run) fails with a clear error
    /// when there are fewer allowed CPUs than shards.
    pub fn pin_cpus(mut self, pin: bool) -> Self {
        self.pin_cpus = pin;
        self
    }

    /// `IORING_SETUP_COOP_TASKRUN` on or off (Linux 5.19). Unset (the
    /// default), the ring uses it when `DEFER_TASKRUN` is unavailable.
    ///
    /// The trade: without it the kernel interrupts the thread (an IPI) to run
    /// completion work as soon as it is queued; with it the work waits until
    /// the thread next enters the kernel, which a runtime does every tick
    /// anyway. How much that saves depends on the kernel: on older ones
    /// leaving both taskrun modes off cost about twice the CPU per request;
    /// on Linux 6.18 `benches/knobs.sh` measured no difference between
    /// `COOP_TASKRUN` and no flag (`DEFER_TASKRUN` is what saves CPU there).
    /// Set explicitly, a kernel that refuses the flag makes
    /// [`build`](Self::build) fail.
    pub fn coop_taskrun(mut self, on: bool) -> Self {
        self.cfg.coop_taskrun = Some(on);
        self
    }

    /// `IORING_SETUP_DEFER_TASKRUN` on or off (Linux 6.1; needs
    /// `SINGLE_ISSUER`, which it turns on unless that is set to `false`).
    /// Unset (the default), it is tried first.
    ///
    /// The trade: completion work runs only when the thread asks for
    /// completions, in batches, never interrupting it: the least CPU per
    /// request, but a completion is not visible in the queue until the
    /// runtime enters the kernel (the driver watches `IORING_SQ_TASKRUN`, so
    /// no completion is missed). Measured with `benches/knobs.sh` (Linux
    /// 6.18, loopback): about 6 µs of server CPU per HTTP request against
    /// 9 µs with `COOP_TASKRUN` or no flag. Incompatible with
    /// [`sqpoll`](Self::sqpoll).
    /// Set explicitly, a kernel refusal makes [`build`](Self::build) fail,
    /// and so does `defer_taskrun(true)` with `single_issuer(false)`.
    pub fn defer_taskrun(mut self, on: bool) -> Self {
        self.cfg.defer_taskrun = Some(on);
        self
    }

    /// `IORING_SETUP_SINGLE_ISSUER` on or off (Linux 6.0). Unset (the
    /// default), it is tried first. A corio ring only ever has one submitter
    /// (its thread), so the flag only lets the kernel skip locking; turning
    /// it off is for measuring what that saves. Set explicitly, a kernel
    /// refusal makes [`build`](Self::build) fail.
    pub fn single_issuer(mut self, on: bool) -> Self {
        self.cfg.single_issuer = Some(on);
        self
    }

    /// `IORING_SETUP_SQPOLL`: a kernel thread polls the submission queue, so
    /// submitting needs no syscall while it is awake; after `idle` without
    /// work it sleeps and the driver wakes it (`IORING_ENTER_SQ_WAKEUP`).
    /// `idle` is rounded down to milliseconds; zero means the kernel's
    /// default (one second). Off by default.
    ///
    /// The trade: fewer syscalls and lower submit latency for a kernel thread
    /// that burns a CPU while it polls. Incompatible with `DEFER_TASKRUN`
    /// (asking for both is an error; unset, `DEFER_TASKRUN` is left off);
    /// Linux 6.13+ also refuses `COOP_TASKRUN` with it (unset, it is tried
    /// and dropped). A kernel that refuses SQPOLL makes
    /// [`build`](Self::build) fail.
    pub fn sqpoll(mut self, idle: Duration) -> Self {
        self.cfg.sqpoll = Some(idle);
        self
    }

    /// Pins the SQPOLL thread to `cpu` (`IORING_SETUP_SQ_AFF`); needs
    /// [`sqpoll`](Self::sqpoll). Keep it off the CPUs the shards run on, or
    /// the two compete for one core.
    pub fn sqpoll_cpu(mut self, cpu: u32) -> Self {
        self.cfg.sqpoll_cpu = Some(cpu);
        self
    }

    /// Registers the ring's fd with the ring (`IORING_REGISTER_RING_FDS`,
    /// Linux 5.18), so each `io_uring_enter` skips an fd lookup (default
    /// `true`). Where the kernel lacks it the driver enters through the
    /// plain fd; turning it off is for measuring what it saves.
    pub fn register_ring_fd(mut self, on: bool) -> Self {
        self.cfg.register_ring_fd = on;
        self
    }

    /// How this runtime, parked in the kernel, is woken by a thread that runs
    /// another corio io_uring runtime (a task on another shard, say): with
    /// `true`, that thread's ring sends an `IORING_OP_MSG_RING` to this one
    /// (Linux 5.18), which goes out with its next submit: no extra syscall,
    /// nothing to re-arm here. With `false`, the waker writes to an eventfd
    /// whose read this ring keeps in flight. Plain threads and poll-driver
    /// runtimes always use the eventfd, and so does everyone where the
    /// kernel lacks MSG_RING or a message fails. The poll driver ignores the
    /// knob. Default: MSG_RING where the kernel has it. Measured with
    /// `benches/shards.rs` (two pinned shards bouncing a message, each
    /// message finding the other shard parked; Linux 6.18, quiet 2-CPU VM):
    /// 22.8 µs of process CPU per round trip against 36.5 µs with the
    /// eventfd, wall 37.6 µs against 48.2 µs (medians); most of it is the
    /// kernel putting a CPU to sleep and waking it.
    ///
    /// One thing changes with MSG_RING: the wake-up leaves at the end of the
    /// waking thread's tick (or when it leaves `block_on`), not at once, as
    /// every SQE a task queues does (a task that computes for long without
    /// yielding delays it as it delays its own I/O), so a
    /// task that wakes another shard and then blocks its thread (on a std
    /// channel, say) until that shard answers would wait for ever. Tasks
    /// should not block their thread anyway.
    /// [`Stats::msg_ring_wakeups`](crate::runtime::Stats::msg_ring_wakeups)
    /// counts the MSG_RING wake-ups a runtime sent.
    ///
    /// ```
    /// let out = corio::Builder::new()
    ///     .shards(2)
    ///     .msg_ring_wakeups(false)
    ///     .run(|shard| async move {
    ///         let other = corio::shard::ShardId::new(1 - shard.index());
    ///         corio::spawn_on(other, async { 21 * 2 }).await.unwrap()
    ///     })
    ///     .unwrap();
    /// assert_eq!(out, vec![42, 42]);
    /// ```
    pub fn msg_ring_wakeups(mut self, on: bool) -> Self {
        self.cfg.msg_ring_wakeups = Some(on);
        self
    }

    /// How long the executor, with nothing to run, keeps looking at the
    /// completion queue (without a syscall on io_uring) before it parks in
    /// the kernel (default zero: park at once).
    ///
    /// The trade: a completion or remote wake-up that arrives while spinning
    /// is handled without the cost and latency of a sleep and a wake-up, but
    /// the thread burns its CPU the whole time, also when nothing comes. On
    /// the poll driver each look is an `epoll_wait` with a zero timeout.
    /// [`Stats::spin_hits`](crate::runtime::Stats::spin_hits) counts the parks it avoided.
    ///
    /// The environment variable `CORIO_SPIN_US` (microseconds, `0` for off,
    /// `max` for never parking) overrides this setting.
    pub fn spin_before_park(mut self, spin: Duration) -> Self {
        self.spin_before_park = spin;
        self
    }

    /// The most completions handled per executor tick (default: all there
    /// are). The rest stay in the completion queue for the next tick.
    ///
    /// The trade: a low limit runs the woken tasks (and timers) sooner after
    /// a burst and keeps a tick's latency bounded, but a queue that keeps
    /// filling faster than it is drained overflows (see
    /// [`Stats::cq_overflows`](crate::runtime::Stats::cq_overflows)) and costs
    /// extra syscalls. On the poll driver it bounds the events taken per
    /// `epoll_wait` (which takes at most 1024 anyway). Zero counts as one.
    pub fn max_completions_per_tick(mut self, n: usize) -> Self {
        self.cfg.max_completions_per_tick = n.max(1);
        self
    }

    /// The receive pool used by pooled receives (`recv_pooled`): `count`
    /// buffers (a power of two, at most 32768) of `size` bytes each, made on
    /// first use (default 1024 × 4 KiB).
    ///
    /// On io_uring the buffers form a provided-buffer ring: the kernel picks
    /// one only when data arrives, so idle connections hold none. More
    /// buffers let more unread data wait in user space; when every buffer is
    /// leased out, receives pause (no error) until a lease is dropped. Bigger
    /// buffers mean fewer completions per byte for bulk transfers.
    pub fn buffer_pool(mut self, count: u16, size: usize) -> Self {
        self.cfg.pool = (count, size);
        self
    }

    /// Testing the driver (not for production): on io_uring, about one
    /// `io_uring_enter` in `one_in` is replaced, on a schedule seeded by
    /// `seed`, by what a kernel may answer instead of a full submit —
    /// `EAGAIN`, `EBUSY` or `EINTR` with nothing submitted, or a short submit
    /// and no wait. The runtime must lose no op and no completion through
    /// them; [`Runtime::injected_enter_faults`] counts them. The poll driver
    /// ignores it.
    #[doc(hidden)]
    pub fn enter_faults(mut self, seed: u64, one_in: u32) -> Self {
        self.cfg.enter_faults = Some((seed, one_in));
        self
    }

    /// Treats io_uring opcodes as missing even where the kernel has them,
    /// so what uses them takes its fallback: `"SEND_ZC"` (zero-copy sends
    /// become plain sends), `"SPLICE"` (`send_file` uses sendfile(2) on the
    /// blocking pool), `"LINK_TIMEOUT"` (`read_timeout` races a user-space
    /// timer), and two features of the receive pool's buffer ring:
    /// `"RECV_BUNDLE"` (pooled stream receives take one buffer per
    /// completion instead of a bundle of several, `IORING_RECVSEND_BUNDLE`)
    /// and `"PBUF_RING_INC"` (each receive uses up a whole pool buffer
    /// instead of only the bytes it got, `IOU_PBUF_RING_INC`). The poll
    /// driver uses none of them anyway. An unknown name makes
    /// [`build`](Self::build) fail with `InvalidInput`.
    ///
    /// ```
    /// let rt = corio::Builder::new().disable_opcodes(["SEND_ZC"]).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn disable_opcodes<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        for name in names {
            match OPTIONAL_OPCODES.iter().find(|o| **o == name) {
                Some(o) => self.cfg.opcodes_off.push(o),
                None => self.bad_opcode = Some(name.to_string()),
            }
        }
        self
    }

    /// Reports task polls that hold the thread longer than `threshold`
    /// (stall detection, off by default), as asyncio's debug mode
    /// (`slow_callback_duration`) and glommio's stall detector do.
    ///
    /// Each such poll is reported with the task's spawn location and how
    /// long it held the thread (a [`StallReport`]): printed on stderr, or
    /// given to the hook of [`on_stall`](Self::on_stall). The future given
    /// to `block_on` counts too, located where `block_on` was called.
    /// The environment variable `CORIO_STALL_MS` overrides this setting: a
    /// number of milliseconds, `0` for off, and any other value (say
    /// `CORIO_STALL_MS=on`, or an empty one) for the default of 100 ms.
    ///
    /// Off, it costs one branch per task poll; on, two clock reads per poll.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = corio::Builder::new()
    ///     .stall_threshold(Duration::from_millis(50))
    ///     .build()
    ///     .unwrap();
    /// rt.block_on(async {
    ///     // A poll this long would be reported on stderr:
    ///     // std::thread::sleep(Duration::from_millis(60));
    /// });
    /// ```
    pub fn stall_threshold(mut self, threshold: Duration) -> Self {
        self.observe.stall_threshold = Some(threshold);
        self
    }

    /// Where stall reports go instead of stderr (see
    /// [`stall_threshold`](Self::stall_threshold), which this does not turn
    /// on). The hook runs on the shard's thread, right after the poll that
    /// stalled; every shard of a [`run`](Self::run) calls the same hook.
    pub fn on_stall(mut self, hook: impl Fn(&StallReport) + Send + Sync + 'static) -> Self {
        self.observe.on_stall = Some(std::sync::Arc::new(hook));
        self
    }

    /// Task tracking for [`task_dump`](crate::runtime::task_dump) (off by
    /// default): each task gets an id, and records when it was last polled
    /// and which op it waits on. Costs a small allocation per spawn and a
    /// few stores per poll; without it a dump lists only spawn locations.
    pub fn track_tasks(mut self, on: bool) -> Self {
        self.observe.track_tasks = on;
        self
    }

    /// Per-op latency histograms (off by default), read with
    /// [`corio::runtime::op_latency`](crate::runtime::op_latency): for each
    /// kind of op (`Recv`, `Send`, `Accept`, `Timeout`…) on this runtime
    /// (each shard apart), the time from submission to completion, with
    /// its median, 99th percentile and maximum.
    ///
    /// On io_uring the clock runs from queueing the SQE to reaping its
    /// completion (multishot ops, armed once for many completions, are not
    /// timed); on the poll driver, from the op first finding its fd not
    /// ready to its result (per fd and direction; ops that never wait count
    /// as zero). Ops that run on the blocking pool are not timed, nor file
    /// reads answered from the page cache on their first poll
    /// ([`cached_reads`](Self::cached_reads)). Recording
    /// never allocates after an op kind's first completion; off, it costs a
    /// branch per op.
    pub fn op_latency(mut self, on: bool) -> Self {
        self.cfg.op_latency = on;
        self
    }

    /// A registered-file table of `slots` entries on each shard's ring (off
    /// by default; at most 65,535): accepted TCP connections and files
    /// opened by corio are also installed in it (`IORING_REGISTER_FILES2`,
    /// sparse, Linux 5.19), and their ops name the slot with
    /// `IOSQE_FIXED_FILE`, which saves the kernel an fd lookup per op. The
    /// fd keeps its number, so `as_raw_fd`, socket options and the poll
    /// driver work as before. When the table is full a new connection just
    /// uses its fd (counted in [`Stats::registered_files_full`]); the slot
    /// is emptied when the fd is closed. Unix-socket accepts, connected
    /// sockets and `File::from_std` are not installed. The poll driver
    /// ignores it, and so does a kernel that refuses the table.
    ///
    /// Measured with callgrind, user-space instructions per request rise a
    /// little (the kernel-side saving is not counted there): keep it off
    /// unless a measurement on the target says otherwise. The environment
    /// variable `CORIO_REGISTERED_FILES` (a number of slots, `0` for off)
    /// overrides this setting.
    ///
    /// [`Stats::registered_files_full`]: crate::runtime::Stats::registered_files_full
    ///
    /// ```
    /// let rt = corio::Builder::new().registered_files(1024).build().unwrap();
    /// # drop(rt);
    /// ```
    pub fn registered_files(mut self, slots: u32) -> Self {
        self.cfg.registered_files = slots.min(crate::driver::config::MAX_REGISTERED_FILES);
        self
    }

    /// Whether positional file reads try the page cache first (on by
    /// default; Linux). The first poll of [`File::read_at`] or
    /// [`read_fixed_at`](crate::fs::File::read_fixed_at) makes one
    /// `preadv2` with `RWF_NOWAIT`: when the page cache holds the data the
    /// read is done then, with no trip through the ring (or, on the poll
    /// driver, the blocking pool) and no second poll (a read the cache
    /// holds in part keeps that part and sends the rest on: a file read is
    /// still short only at the end of the file); otherwise it goes on
    /// as before, and that file's next read skips the try, so a file that
    /// is never cached pays it on half its reads at most. On io_uring a
    /// read tries only when at most one other op would share its
    /// submission: with more, one `io_uring_enter` for the batch is cheaper
    /// than a syscall per read, and the read goes to the ring. Counted in
    /// [`Stats::cached_reads`]. Files opened with `O_DIRECT` never try.
    /// Turn it off for files that are almost never in the page cache. The
    /// environment variable `CORIO_CACHED_READS` (`1`/`on`, `0`/`off`)
    /// overrides this setting.
    ///
    /// [`File::read_at`]: crate::fs::File::read_at
    /// [`Stats::cached_reads`]: crate::runtime::Stats::cached_reads
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("corio-cached-doc-{}", std::process::id()));
    /// std::fs::write(&path, b"hello, page cache")?; // written, so cached
    /// let rt = corio::Runtime::new()?;
    /// rt.block_on(async {
    ///     let file = corio::fs::File::open(&path).await?;
    ///     let (n, buf) = file.read_at(vec![0u8; 5], 7).await;
    ///     assert_eq!((n?, &buf[..]), (5, &b"page "[..]));
    ///     // Answered on its first poll, without the ring.
    ///     assert_eq!(corio::runtime::stats().cached_reads, 1);
    ///     std::io::Result::Ok(())
    /// })?;
    /// // For files that are rarely cached:
    /// let cold = corio::Builder::new().cached_reads(false).build()?;
    /// # drop(cold);
    /// # std::fs::remove_file(&path)?;
    /// # std::io::Result::Ok(())
    /// ```
    pub fn cached_reads(mut self, on: bool) -> Self {
        self.cfg.cached_reads = on;
        self
    }

    /// Builds the runtime on the calling thread.
    ///
    /// Fails when the requested driver cannot be set up (for `Uring`: the
    /// kernel's error, e.g. ENOSYS, or EPERM under seccomp or
    /// `kernel.io_uring_disabled`), when a size is invalid, when
    /// `CORIO_DRIVER` or `CORIO_SPIN_US` holds an unknown value, when the knobs contradict each
    /// other (`defer_taskrun(true)` with `single_issuer(false)` or with
    /// `sqpoll`, `sqpoll_cpu` without `sqpoll`), or when the kernel refuses
    /// a setup flag set explicitly (the error names the flag; `Auto` does
    /// not fall back to the poll driver then). Flags left unset fall back
    /// silently.
    pub fn build(self) -> io::Result<Runtime> {
        self.check_knobs()?;
        Runtime::from_builder(self)
    }

    /// Refuses contradictory knobs, whatever the driver.
    fn check_knobs(&self) -> io::Result<()> {
        let invalid = |msg: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, msg.to_string()));
        if self.cfg.defer_taskrun == Some(true) && self.cfg.single_issuer == Some(false) {
            return invalid(
                "corio: defer_taskrun(true) needs SINGLE_ISSUER, but single_issuer(false) \
                 was set (IORING_SETUP_DEFER_TASKRUN requires IORING_SETUP_SINGLE_ISSUER)",
            );
        }
        if self.cfg.defer_taskrun == Some(true) && self.cfg.sqpoll.is_some() {
            return invalid(
                "corio: defer_taskrun(true) cannot be combined with sqpoll(..) \
                 (the kernel refuses IORING_SETUP_DEFER_TASKRUN with IORING_SETUP_SQPOLL)",
            );
        }
        if let Some(name) = &self.bad_opcode {
            return invalid(&format!(
                "corio: disable_opcodes: {name:?} is not one of {OPTIONAL_OPCODES:?}"
            ));
        }
        if self.cfg.sqpoll_cpu.is_some() && self.cfg.sqpoll.is_none() {
            return invalid("corio: sqpoll_cpu(..) needs sqpoll(..)");
        }
        Ok(())
    }
}
