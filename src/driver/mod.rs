//! The driver: owns in-flight I/O and parks the thread.
//!
//! How it works: a runtime has one [`Driver`]: a backend chosen at run time
//! — io_uring (`uring/`, a completion driver) where the kernel allows it, or
//! a readiness driver on mio (`poll/`) everywhere else — plus what both
//! share: the blocking pool (`blocking/`), the receive pool, the counters,
//! and the token that tags this driver's entries in the release queue.
//! Selection follows [`DriverConfig::kind`], overridden by
//! `CORIO_DRIVER=uring|poll`; `Auto` falls back to poll when ring setup fails
//! or the kernel's probe lacks an opcode corio needs, and remembers why.
//!
//! The backend interface is small: poll an op (`poll_op`, with the op path
//! shared by every backend in `lifecycle.rs`), finish a release, submit and
//! reap, park, shut down. Ops are defined in `op/` against [`OpCode`]
//! (`op.rs`); nothing here names an op family or a runtime type.

pub(crate) mod armed;
mod blocking;
pub(crate) mod config;
mod fork;
pub(crate) mod latency;
mod lifecycle;
pub(crate) mod op;
mod poll;
pub(crate) mod probe;
pub(crate) mod stats;
#[cfg(corio_uring)]
mod uring;

use std::io;
use std::rc::{Rc, Weak};
use std::sync::atomic::AtomicBool;
use std::time::Duration;
#[cfg(corio_uring)]
use std::time::Instant;

pub(crate) use self::blocking::BlockingPool;
pub use self::config::DriverKind;
pub(crate) use self::config::{DriverConfig, OPTIONAL_OPCODES};
pub(crate) use self::lifecycle::{OpState, Progress, release_op};
pub(crate) use self::op::{Interest, Kind, OpCode, Role, Sqe, Wait, take_op_data, uring};
use self::stats::{Counters, RingFlags};
use crate::buf::pool::Pool;
use crate::release::{self, Release};

/// The backend of one runtime.
// One per runtime, reached on every op: keep it inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Backend {
    #[cfg(corio_uring)]
    Uring(uring::Ring),
    Poll(poll::Poller),
}

/// The driver of one runtime.
#[derive(Debug)]
pub(crate) struct Driver {
    backend: Backend,
    /// Tags this driver's entries in the release queue.
    token: Rc<()>,
    stats: Rc<Counters>,
    blocking: BlockingPool,
    /// Blocking jobs whose futures went away.
    orphans: blocking::Orphans,
    /// The receive pool, made on first use: (buffer count, buffer size).
    pool: Option<Rc<Pool>>,
    /// The datagram receives' pool when `pool`'s ring is incremental.
    dgram_pool: Option<Rc<Pool>>,
    pool_config: (u16, usize),
    /// Scratch for draining the release queue.
    releases: Vec<Release>,
    /// MSG_RING wake-ups other code on this thread asked for; sent with the
    /// next submit.
    wakes: Rc<std::cell::RefCell<Vec<Unparker>>>,
    /// The fork generation this driver was built in (`fork.rs`).
    fork_gen: u32,
    /// Empty pipes kept for reuse (`send_file` splices through one).
    /// Closed with the driver.
    pipes: Vec<SparePipe>,
    /// Positional file reads try the page cache first (`op/fs/cached.rs`).
    cached_reads: bool,
}

/// An empty pipe kept for reuse: read end, write end, and its capacity
/// (asked once, when the pipe was made).
#[derive(Debug)]
pub(crate) struct SparePipe {
    pub(crate) r: std::os::fd::OwnedFd,
    pub(crate) w: std::os::fd::OwnedFd,
    pub(crate) capacity: usize,
}

/// Most empty pipes a driver keeps for reuse.
const MAX_SPARE_PIPES: usize = 8;

/// Wakes a parked runtime from any thread.
#[derive(Debug, Clone)]
pub(crate) enum Unparker {
    #[cfg(corio_uring)]
    Uring(uring::Unparker),
    Poll(poll::Unparker),
}

impl Unparker {
    pub(crate) fn unpark(&self) {
        match self {
            #[cfg(corio_uring)]
            Unparker::Uring(u) => u.unpark(),
            Unparker::Poll(u) => u.unpark(),
        }
    }

    /// True when the runtime accepts `IORING_OP_MSG_RING` wake-ups.
    pub(crate) fn by_ring(&self) -> bool {
        match self {
            #[cfg(corio_uring)]
            Unparker::Uring(u) => u.by_ring(),
            Unparker::Poll(_) => false,
        }
    }
}

/// A built driver, its unparker, and why `Auto` fell back, if it did.
pub(crate) struct Selected {
    pub(crate) driver: Driver,
    pub(crate) unparker: Unparker,
    pub(crate) fallback: Option<String>,
}

/// The kind requested by `CORIO_DRIVER`, if set to a known value.
fn env_kind() -> io::Result<Option<DriverKind>> {
    match std::env::var("CORIO_DRIVER") {
        Err(_) => Ok(None),
        Ok(v) => match v.as_str() {
            "" | "auto" => Ok(Some(DriverKind::Auto)),
            "uring" | "io_uring" => Ok(Some(DriverKind::Uring)),
            "poll" => Ok(Some(DriverKind::Poll)),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("corio: CORIO_DRIVER={other:?} is not one of uring, poll, auto"),
            )),
        },
    }
}

impl Driver {
    fn with_backend(
        cfg: &DriverConfig,
        token: Rc<()>,
        stats: Rc<Counters>,
        backend: Backend,
    ) -> Driver {
        Driver {
            backend,
            token,
            stats,
            blocking: BlockingPool::new(cfg.max_blocking_threads),
            orphans: blocking::Orphans::default(),
            pool: None,
            dgram_pool: None,
            pool_config: cfg.pool,
            releases: Vec::new(),
            wakes: Rc::default(),
            fork_gen: fork::generation(),
            pipes: Vec::new(),
            cached_reads: cfg.cached_reads,
        }
    }

    /// Panics in a forked child, before anything shared with the parent
    /// is touched (`fork.rs`).
    #[inline]
    pub(crate) fn check_fork(&self) {
        if fork::forked(self.fork_gen) {
            fork::refuse();
        }
    }

    /// Builds the driver `cfg` (or `CORIO_DRIVER`) asks for.
    pub(crate) fn select(cfg: &DriverConfig) -> io::Result<Selected> {
        let kind = env_kind()?.unwrap_or(cfg.kind);
        let cfg = &*config::with_env(cfg)?;
        match kind {
            DriverKind::Poll => Self::new_poll(cfg, None),
            #[cfg(corio_uring)]
            DriverKind::Uring => Self::new_uring(cfg),
            #[cfg(not(corio_uring))]
            DriverKind::Uring => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "corio: io_uring is not available on this platform (or this build)",
            )),
            #[cfg(corio_uring)]
            DriverKind::Auto => match Self::new_uring(cfg) {
                Ok(s) => Ok(s),
                // io_uring works but refuses a flag the user asked for.
                Err(e) if uring::setup::is_knob_refusal(&e) => Err(e),
                Err(e) => Self::new_poll(cfg, Some(format!("io_uring unavailable: {e}"))),
            },
            #[cfg(not(corio_uring))]
            DriverKind::Auto => Self::new_poll(
                cfg,
                Some("io_uring is not built for this platform".to_string()),
            ),
        }
    }

    #[cfg(corio_uring)]
    fn new_uring(cfg: &DriverConfig) -> io::Result<Selected> {
        let token = Rc::new(());
        let stats = Rc::new(Counters::default());
        let (ring, u) = uring::Ring::new(cfg, stats.clone(), Rc::downgrade(&token))?;
        Ok(Selected {
            driver: Self::with_backend(cfg, token, stats, Backend::Uring(ring)),
            unparker: Unparker::Uring(u),
            fallback: None,
        })
    }

    fn new_poll(cfg: &DriverConfig, fallback: Option<String>) -> io::Result<Selected> {
        let stats = Rc::new(Counters::default());
        let (p, u) =
            poll::Poller::new(cfg.max_completions_per_tick, stats.clone(), cfg.op_latency)?;
        Ok(Selected {
            driver: Self::with_backend(cfg, Rc::new(()), stats, Backend::Poll(p)),
            unparker: Unparker::Poll(u),
            fallback,
        })
    }

    /// What `Auto` picks on this machine with default settings (ignoring
    /// `CORIO_DRIVER`), why, and the ring it gets.
    pub(crate) fn auto_choice() -> (DriverKind, String, Option<RingFlags>) {
        #[cfg(corio_uring)]
        match uring::Ring::new(&DriverConfig::default(), Rc::default(), Weak::new()) {
            Ok((d, _)) => (
                DriverKind::Uring,
                "io_uring_setup succeeded and the kernel has every opcode corio needs".into(),
                Some(d.ring_flags()),
            ),
            Err(e) => (DriverKind::Poll, format!("io_uring unavailable: {e}"), None),
        }
        #[cfg(not(corio_uring))]
        (
            DriverKind::Poll,
            "io_uring is not built for this platform (or this build)".into(),
            None,
        )
    }

    /// The kind actually running (never `Auto`).
    pub(crate) fn kind(&self) -> DriverKind {
        match self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(_) => DriverKind::Uring,
            Backend::Poll(_) => DriverKind::Poll,
        }
    }

    /// The driver's token: entries of the release queue tagged with it are
    /// this driver's to finish.
    pub(crate) fn owner(&self) -> Weak<()> {
        Rc::downgrade(&self.token)
    }

    /// The counters this driver and its executor bump.
    pub(crate) fn stats(&self) -> &Rc<Counters> {
        &self.stats
    }

    /// The blocking pool (a cheap handle).
    pub(crate) fn blocking(&self) -> &BlockingPool {
        &self.blocking
    }

    /// Where code on this thread queues MSG_RING wake-ups for this driver
    /// to send (it cannot borrow the driver: it may run inside it).
    pub(crate) fn wake_queue(&self) -> Rc<std::cell::RefCell<Vec<Unparker>>> {
        self.wakes.clone()
    }

    /// The io_uring setup, `None` on the poll driver.
    pub(crate) fn ring_flags(&self) -> Option<RingFlags> {
        match &self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => Some(d.ring_flags()),
            Backend::Poll(_) => None,
        }
    }

    /// Per-op latency histograms (`op_latency`), `None` when off.
    pub(crate) fn latencies(&mut self) -> Option<&mut latency::Latencies> {
        match &mut self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => d.latencies(),
            Backend::Poll(d) => d.latencies(),
        }
    }

    /// The receive pool, if made.
    pub(crate) fn pool_made(&self) -> Option<&Rc<Pool>> {
        self.pool.as_ref()
    }

    /// The receive pool, made (and registered with the ring) on first use.
    /// Datagram receives get a second, plain ring (group 1) when the first
    /// is incremental: the kernel's multishot `RECVMSG` cannot write into
    /// an incremental ring (it fails with `EFAULT` once a buffer's rest is
    /// shorter than the message header).
    #[inline]
    pub(crate) fn pool(&mut self, datagram: bool) -> io::Result<Rc<Pool>> {
        // Every receive asks: the made stream pool is the common answer.
        if let Some(p) = &self.pool
            && (!datagram || !p.mode().inc)
        {
            return Ok(p.clone());
        }
        self.pool_slow(datagram)
    }

    #[cold]
    #[inline(never)]
    fn pool_slow(&mut self, datagram: bool) -> io::Result<Rc<Pool>> {
        let pool = match &self.pool {
            Some(p) => p.clone(),
            None => {
                let pool = self.make_pool(0)?;
                self.pool = Some(pool.clone());
                pool
            }
        };
        if !datagram || !pool.mode().inc {
            return Ok(pool);
        }
        if let Some(p) = &self.dgram_pool {
            return Ok(p.clone());
        }
        let pool = self.make_pool(1)?;
        self.dgram_pool = Some(pool.clone());
        Ok(pool)
    }

    /// A pool for provided-buffer group `group`, registered on io_uring.
    fn make_pool(&mut self, group: u16) -> io::Result<Rc<Pool>> {
        self.check_fork();
        let (count, size) = self.pool_config;
        let ring = self.kind() == DriverKind::Uring;
        let pool = Pool::with_group(count, size, ring, group)?;
        #[cfg(corio_uring)]
        if let Backend::Uring(d) = &mut self.backend {
            d.register_pool(&pool)?;
        }
        Ok(pool)
    }

    /// An empty pipe kept for reuse, if any.
    pub(crate) fn take_pipe(&mut self) -> Option<SparePipe> {
        self.pipes.pop()
    }

    /// Keeps an empty pipe for reuse (closes it when enough are kept). The
    /// caller guarantees it is empty and no op uses it.
    pub(crate) fn put_pipe(&mut self, pipe: SparePipe) {
        if self.pipes.len() < MAX_SPARE_PIPES {
            self.pipes.push(pipe);
        }
    }

    /// Finishes what the release queue holds for this driver, and the
    /// blocking jobs whose syscalls have returned.
    ///
    /// Finishing a release can queue another: the last op holding a socket
    /// drops its fd, whose close is queued. Those are finished in the same
    /// drain, before the thread parks: left for the next drain, a close the
    /// peer waits for (its end of stream) would wait for a completion that
    /// only the close itself can cause. Nearly every tick has nothing to
    /// drain: three loads say so, inline.
    #[inline(always)]
    fn drain(&mut self) {
        if self.orphans.is_empty() && release::is_empty() && self.wakes.borrow().is_empty() {
            return;
        }
        self.drain_some();
    }

    #[inline(never)]
    fn drain_some(&mut self) {
        loop {
            self.orphans.release_done(false);
            if release::is_empty() {
                break;
            }
            let mut releases = std::mem::take(&mut self.releases);
            release::take(&self.token, &mut releases);
            if releases.is_empty() {
                // What is left belongs to other drivers on this thread.
                self.releases = releases;
                break;
            }
            for r in releases.drain(..) {
                match (r, &mut self.backend) {
                    (Release::Job(job), _) => self.orphans.push(job),
                    #[cfg(corio_uring)]
                    (r, Backend::Uring(d)) => d.release(r),
                    (r, Backend::Poll(_)) => release::finish_orphaned(r),
                }
            }
            self.releases = releases;
        }
        if !self.wakes.borrow().is_empty() {
            let wakes = std::mem::take(&mut *self.wakes.borrow_mut());
            for target in wakes {
                if !self.send_wake(&target) {
                    target.unpark();
                }
            }
        }
    }

    /// Submits and reaps without waiting.
    pub(crate) fn submit_and_reap(&mut self) {
        self.check_fork();
        self.drain();
        match &mut self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => d.submit_and_reap(),
            Backend::Poll(d) => d.turn(Some(Duration::ZERO), &AtomicBool::new(false)),
        }
    }

    /// Reaps what is ready without waiting, entering the kernel only when it
    /// holds completions back (io_uring); on the poll driver, a turn with a
    /// zero timeout.
    pub(crate) fn reap_ready(&mut self) {
        self.check_fork();
        if !release::is_empty() {
            self.drain();
        }
        match &mut self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => d.reap_ready(),
            Backend::Poll(d) => d.turn(Some(Duration::ZERO), &AtomicBool::new(false)),
        }
    }

    /// Waits for I/O, a remote wake-up, or at most `timeout`; lowers
    /// `parked` as soon as the wait ends. `runnable` tells whether finishing
    /// releases made a task runnable (then there is no wait).
    pub(crate) fn park(
        &mut self,
        timeout: Option<Duration>,
        parked: &AtomicBool,
        runnable: impl Fn() -> bool,
    ) {
        self.check_fork();
        self.drain();
        let timeout = if runnable() {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        match &mut self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => d.park(timeout, parked),
            Backend::Poll(d) => d.turn(timeout, parked),
        }
    }

    /// Queues an `IORING_OP_MSG_RING` on this ring that wakes the runtime
    /// behind `target`; false when that cannot be done (poll driver, no
    /// MSG_RING here, the target does not accept them): write its eventfd.
    fn send_wake(&mut self, target: &Unparker) -> bool {
        match (&mut self.backend, target) {
            #[cfg(corio_uring)]
            (Backend::Uring(d), Unparker::Uring(t)) => d.send_wake(t),
            _ => false,
        }
    }

    /// Sends the MSG_RING wake-ups still queued, if any (the thread is
    /// leaving `block_on`: no next tick would).
    pub(crate) fn flush_wakes(&mut self) {
        if fork::forked(self.fork_gen) {
            // Leaving `block_on`, perhaps unwinding from `check_fork`'s panic.
            return;
        }
        self.drain();
        match &mut self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => d.flush_wakes(),
            Backend::Poll(_) => {}
        }
    }

    /// Finishes or cancels everything in flight before the runtime goes
    /// away: releases are finished, ops in the kernel cancelled, and the
    /// driver waits (up to 10 s) until the kernel has returned every buffer.
    pub(crate) fn shutdown(&mut self) {
        if fork::forked(self.fork_gen) {
            // The parent's ring and epoll set are not ours to cancel on.
            return;
        }
        self.drain();
        #[cfg(corio_uring)]
        if let Backend::Uring(d) = &mut self.backend {
            d.begin_shutdown();
            let give_up = Instant::now() + Duration::from_secs(10);
            loop {
                self.drain();
                let Backend::Uring(d) = &mut self.backend else {
                    unreachable!()
                };
                if !d.busy() || !d.shutdown_wait(give_up) {
                    d.finish_shutdown();
                    return;
                }
            }
        }
    }

    /// Shuts the blocking pool down and releases every orphaned job (no
    /// pool thread runs any more).
    pub(crate) fn shutdown_blocking(&mut self) {
        if fork::forked(self.fork_gen) {
            // The pool's threads were not forked: there is nobody to join.
            return;
        }
        self.blocking.shutdown();
        self.drain();
        self.orphans.release_done(true);
    }

    /// Blocking jobs still waiting for their syscalls (for tests).
    #[allow(dead_code)]
    pub(crate) fn orphans(&self) -> usize {
        self.orphans.len()
    }

    /// Installs `fd` (an accepted connection, an opened file) in the ring's
    /// registered-file table when it has one (`Builder::registered_files`);
    /// the poll driver has none.
    pub(crate) fn install_file(&mut self, fd: &crate::fd::SharedFd) {
        match &mut self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => d.install_file(fd),
            Backend::Poll(_) => {
                let _ = fd;
            }
        }
    }

    /// Registers fixed buffers with the ring for the owner `token`; the poll
    /// driver has nothing to register.
    ///
    /// # Safety
    ///
    /// As for `uring::Ring::register_buffers`.
    pub(crate) unsafe fn register_buffers(
        &mut self,
        iovecs: &[libc::iovec],
        token: Weak<()>,
    ) -> io::Result<()> {
        self.check_fork();
        match &mut self.backend {
            #[cfg(corio_uring)]
            // SAFETY: forwarded from the caller.
            Backend::Uring(d) => unsafe { d.register_buffers(iovecs, token) },
            Backend::Poll(_) => {
                let _ = (iovecs, token);
                Ok(())
            }
        }
    }

    /// True when the ring's fixed buffers are those registered for `token`.
    pub(crate) fn buffers_owned_by(&self, token: &Weak<()>) -> bool {
        match &self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => d.buffers_owned_by(token),
            Backend::Poll(_) => {
                let _ = token;
                false
            }
        }
    }

    /// True when the kernel's probe has `opcode` (always false on the poll
    /// driver).
    pub(crate) fn supports(&self, opcode: u8) -> bool {
        match &self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => d.supports(opcode),
            Backend::Poll(_) => {
                let _ = opcode;
                false
            }
        }
    }

    /// `io_uring_enter` faults injected so far (`EAGAIN`, `EBUSY`, `EINTR`,
    /// short submits); zeros on the poll driver.
    pub(crate) fn injected_faults(&self) -> [u64; 4] {
        match &self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => d.injected_faults(),
            Backend::Poll(_) => [0; 4],
        }
    }

    /// Pretends the kernel lacks `opcode` (tests of the blocking fallback).
    #[cfg(test)]
    pub(crate) fn forget_opcode(&mut self, opcode: u8) {
        match &mut self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => d.forget_opcode(opcode),
            Backend::Poll(_) => {
                let _ = opcode;
            }
        }
    }
}
