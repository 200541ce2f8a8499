//! The io_uring backend: one ring per runtime.
//!
//! How it works: ops are pushed to the submission queue as they are polled;
//! nothing enters the kernel until the executor's tick ends, when one
//! `io_uring_enter` submits the batch (and, when parking, waits in the same
//! call; `enter.rs`). Each completion is matched to its op's slot by
//! `user_data` (`slots.rs`); ops are polled through `op.rs`; the receive
//! pool and fixed buffers are registered in `buffers.rs`; remote wake-ups
//! arrive through the ring (`wake.rs`); accepted sockets and opened files
//! may be named by registered-file slot (`files.rs`). Setup flags are
//! chosen in `setup.rs`.

mod buffers;
mod enter;
mod faults;
mod files;
mod op;
pub(crate) mod probe;
pub(crate) mod setup;
mod slots;
mod wake;

use std::io;
use std::rc::{Rc, Weak};

use io_uring::{IoUring, opcode};

pub(crate) use wake::{MSG_RING_DEFAULT, Unparker};

use self::slots::Slots;
use self::wake::Wake;
use super::config::DriverConfig;
use super::stats::{Counters, RingFlags};
use crate::buf::pool::{INC_MAX_SIZE, Pool, RingMode};
use crate::driver::latency::{Latencies, RingClock};

/// The io_uring backend of one runtime.
pub(crate) struct Ring {
    ring: IoUring,
    slots: Slots,
    /// Internal ops in flight without a slot (cancels, closes).
    untracked: usize,
    wake: Wake,
    /// Shut down: nothing new is submitted.
    closed: bool,
    /// The receive pools registered as provided-buffer groups 0 and 1.
    pools: [Option<Rc<Pool>>; 2],
    /// The ring modes the pool may get (kernel features not turned off);
    /// `inc` is tried at registration.
    pool_mode: RingMode,
    /// Index of the ring fd registered with `IORING_REGISTER_RING_FDS`
    /// (saves the kernel an fd lookup per enter), or -1.
    ring_index: i32,
    /// The opcodes the kernel's probe reported, one bit each.
    opcodes: [u64; 4],
    /// Owner token of the buffers registered with `IORING_REGISTER_BUFFERS`
    /// (a `FixedBufPool`); dead once the pool is gone.
    buffers: Option<Weak<()>>,
    stats: Rc<Counters>,
    /// The setup the ring got (SQPOLL changes how submission works).
    setup: RingFlags,
    /// Most CQEs reaped per tick (`Builder::max_completions_per_tick`).
    max_cqes: usize,
    /// The driver's token, recorded on fds whose multishot op this ring
    /// keeps armed.
    owner: Weak<()>,
    /// Injected `io_uring_enter` faults (tests only; `faults.rs`).
    faults: Option<Box<faults::EnterFaults>>,
    /// Per-op latency (`Builder::op_latency`), boxed: usually off.
    latency: Option<Box<RingClock>>,
    /// The registered-file table (`Builder::registered_files`), if on and
    /// the kernel took it.
    files: Option<files::Files>,
}

impl Ring {
    /// The latency histograms, with `op_latency` on.
    pub(crate) fn latencies(&mut self) -> Option<&mut Latencies> {
        self.latency.as_mut().map(|l| &mut l.hist)
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("in_flight", &self.slots.len())
            .field("untracked", &self.untracked)
            .finish_non_exhaustive()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.ring_index >= 0 {
            // The registration holds a reference to the ring until the
            // thread exits: drop it so the ring is freed with the driver.
            buffers::unregister_ring_fd(&self.ring, self.ring_index);
        }
    }
}

/// Whether `opcode` is set in the bitset `check_probe` returns.
pub(crate) fn has_opcode(opcodes: &[u64; 4], opcode: u8) -> bool {
    opcodes[opcode as usize / 64] & (1 << (opcode % 64)) != 0
}

/// Fails when the kernel lacks an opcode corio needs; returns every opcode
/// the probe reports (ops on newer, optional opcodes check it and run their
/// blocking syscall on the pool instead).
fn check_probe(ring: &IoUring) -> io::Result<[u64; 4]> {
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let mut opcodes = [0u64; 4];
    for code in 0..=u8::MAX {
        if probe.is_supported(code) {
            opcodes[code as usize / 64] |= 1 << (code % 64);
        }
    }
    let needed = [
        (opcode::Nop::CODE, "NOP"),
        (opcode::Read::CODE, "READ"),
        (opcode::PollAdd::CODE, "POLL_ADD"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
        (opcode::Accept::CODE, "ACCEPT"),
        (opcode::Connect::CODE, "CONNECT"),
        (opcode::Close::CODE, "CLOSE"),
        (opcode::Send::CODE, "SEND"),
        (opcode::Recv::CODE, "RECV"),
        (opcode::SendMsg::CODE, "SENDMSG"),
        (opcode::RecvMsg::CODE, "RECVMSG"),
        (opcode::Shutdown::CODE, "SHUTDOWN"),
    ];
    for (code, name) in needed {
        if !probe.is_supported(code) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the kernel's io_uring lacks IORING_OP_{name}"),
            ));
        }
    }
    Ok(opcodes)
}

impl Ring {
    /// Sets up a ring as `cfg` asks; `owner` is the driver's token.
    pub(crate) fn new(
        cfg: &DriverConfig,
        stats: Rc<Counters>,
        owner: Weak<()>,
    ) -> io::Result<(Ring, Unparker)> {
        if cfg.entries == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "corio: the submission queue needs at least one entry",
            ));
        }
        let (ring, flags) =
            setup::build_ring(cfg).map_err(|e| setup::explain_memlock(e, "io_uring_setup"))?;
        if !ring.params().is_feature_nodrop() || !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "corio: the kernel's io_uring lacks NODROP or EXT_ARG (Linux 5.11+ needed)",
            ));
        }
        let mut opcodes = check_probe(&ring)?;
        for name in &cfg.opcodes_off {
            if let Some(code) = probe::opcode_named(name) {
                opcodes[code as usize / 64] &= !(1 << (code % 64));
            }
        }
        let off = |name: &str| cfg.opcodes_off.contains(&name);
        let pool_mode = RingMode {
            bundle: ring.params().is_feature_recvsend_bundle() && !off("RECV_BUNDLE"),
            inc: !off("PBUF_RING_INC") && cfg.pool.1 <= INC_MAX_SIZE,
        };
        let msg_ring = has_opcode(&opcodes, opcode::MsgRingData::CODE)
            && ring.params().is_feature_skip_cqe_on_success();
        let accept_msgs = cfg.msg_ring_wakeups.unwrap_or(MSG_RING_DEFAULT);
        let (wake, unparker) = Wake::new(&ring, msg_ring, accept_msgs)?;
        let ring_index = if cfg.register_ring_fd {
            buffers::register_ring_fd(&ring)
        } else {
            -1
        };
        let setup = setup::describe(&ring, flags, cfg, ring_index >= 0);
        // A kernel without sparse tables (before 5.19), or an fd limit
        // below the size asked for: the knob is ignored.
        let files = (cfg.registered_files > 0)
            .then(|| files::Files::register(&ring, cfg.registered_files).ok())
            .flatten();
        let driver = Ring {
            ring,
            slots: Slots::new(),
            untracked: 0,
            wake,
            closed: false,
            pools: [None, None],
            pool_mode,
            ring_index,
            opcodes,
            buffers: None,
            stats,
            setup,
            max_cqes: cfg.max_completions_per_tick,
            owner,
            faults: cfg
                .enter_faults
                .map(|(seed, one_in)| Box::new(faults::EnterFaults::new(seed, one_in))),
            latency: cfg.op_latency.then(Box::default),
            files,
        };
        Ok((driver, unparker))
    }

    /// The ring's setup flags and sizes.
    pub(crate) fn ring_flags(&self) -> RingFlags {
        self.setup
    }

    /// True when the kernel's probe reported `opcode`.
    pub(crate) fn supports(&self, opcode: u8) -> bool {
        has_opcode(&self.opcodes, opcode)
    }

    /// Makes `supports(opcode)` false, to test the blocking fallback.
    #[cfg(test)]
    pub(crate) fn forget_opcode(&mut self, opcode: u8) {
        self.opcodes[opcode as usize / 64] &= !(1 << (opcode % 64));
    }

    /// True when this ring can send MSG_RING wake-ups.
    #[cfg(test)]
    pub(crate) fn can_send_msg_ring(&self) -> bool {
        self.wake.msg_ring
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::rc::{Rc, Weak};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::wake::dup;
    use super::*;

    /// A driver with default settings; `None` where io_uring or MSG_RING is
    /// unavailable.
    fn driver() -> Option<(Ring, Unparker)> {
        match Ring::new(&DriverConfig::default(), Rc::default(), Weak::new()) {
            Ok((d, u)) if d.can_send_msg_ring() => Some((d, u)),
            Ok(_) => {
                eprintln!("skipped: the kernel lacks IORING_OP_MSG_RING");
                None
            }
            Err(e) => {
                eprintln!("skipped: io_uring is not available here ({e})");
                None
            }
        }
    }

    /// Reads an eventfd's counter (0 when it is not set).
    fn take_eventfd(fd: &OwnedFd) -> u64 {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from a non-blocking eventfd.
        let n = unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        if n == 8 { v } else { 0 }
    }

    #[test]
    fn a_msg_ring_wake_ends_the_targets_wait_and_posts_nothing_on_the_sender() {
        let (Some((mut source, _)), Some((mut target, target_unparker))) = (driver(), driver())
        else {
            return;
        };
        assert!(target_unparker.by_ring());
        assert!(source.send_wake(&target_unparker));
        source.flush_wakes();
        assert!(
            source.wake.held.is_empty(),
            "the target's ring fd is released once submitted"
        );
        // The wait ends at once with the message's completion, which counts
        // as no op in flight.
        let start = Instant::now();
        target.enter(1, Some(Duration::from_secs(5)));
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "the MSG_RING did not wake the ring"
        );
        assert_eq!(target.reap(), 1);
        assert_eq!(target.stats.snapshot(0).in_flight, 0);
        // Success posted nothing on the sender (IOSQE_CQE_SKIP_SUCCESS).
        source.enter(0, None);
        assert_eq!(source.reap(), 0);
        let s = source.stats.snapshot(0);
        assert_eq!((s.msg_ring_wakeups, s.in_flight), (1, 0));
    }

    #[test]
    fn a_failed_msg_ring_wake_falls_back_to_the_eventfd() {
        let Some((mut source, _)) = driver() else {
            return;
        };
        // A target whose "ring" fd is not a ring: the message fails (EBADFD).
        // SAFETY: eventfd returns a new fd or -1; checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        assert!(fd >= 0);
        // SAFETY: `fd` is a fresh eventfd owned by nobody else.
        let event = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let bogus = Unparker {
            ring: Some(Arc::new(dup(&*event).unwrap())),
            fd: event.clone(),
        };
        assert!(source.send_wake(&bogus));
        source.flush_wakes();
        assert_eq!(source.reap(), 1, "a failed MSG_RING posts a completion");
        assert_eq!(
            take_eventfd(&event),
            1,
            "the failure did not write the eventfd"
        );
        // Once the target is gone the sender forgets it.
        drop(bogus);
        drop(event);
        assert!(source.send_wake(&driver().unwrap().1));
        assert_eq!(source.wake.targets.len(), 1);
    }
}
