//! The io_uring driver: submission, reaping, parking and shutdown.
//!
//! How it works: ops are pushed to the submission queue as they are polled;
//! nothing enters the kernel until the executor's tick ends, when one
//! `io_uring_enter` submits the batch (and, when parking, waits in the same
//! call). A full submission queue is submitted and refilled; completions the
//! kernel kept back on overflow (`IORING_FEAT_NODROP`) are flushed by entering
//! again. Remote wake-ups arrive through the ring: as the completion of a read
//! on an eventfd that is kept in flight, or, when the waker runs on another
//! corio io_uring runtime, as a completion posted by an `IORING_OP_MSG_RING`
//! the waker's ring sends with its next submit (no extra syscall, nothing to
//! re-arm). Each runtime that accepts MSG_RING wake-ups keeps a `dup` of its
//! ring fd in its `Unparker`, and a sender holds that dup until its SQE is
//! submitted, so a message never targets a recycled fd number.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Weak;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{IoUring, opcode, squeue, types};
use slab::Slab;

use crate::buf::pool::Pool;
use crate::runtime::core::Core;
use crate::runtime::stats::Counters;
use crate::runtime::{Builder, RingFlags};
use std::rc::Rc;

/// What happens to an in-flight op's slot.
pub(crate) enum Lifecycle {
    /// A future waits for the result.
    Waiting(std::task::Waker),
    /// The future was dropped; the driver keeps what the kernel may touch
    /// until the completion arrives, then finishes the op.
    Abandoned(Option<Box<dyn Abandoned>>),
    /// The result is in, waiting for its future to take it.
    Completed(i32, u32),
    /// A multishot op: its completions queue up until their owner takes
    /// them.
    Multi(Box<Multi>),
}

/// The state of a multishot op (accept, or receive into pool buffers).
pub(crate) struct Multi {
    /// Completions not taken yet: (result, flags).
    pub(crate) cqes: std::collections::VecDeque<(i32, u32)>,
    pub(crate) waker: Option<std::task::Waker>,
    /// The kernel posted the last completion (one without `F_MORE`).
    pub(crate) ended: bool,
    /// Set when the owner went away: handles each further completion.
    orphan: Option<Box<dyn MultiOrphan>>,
}

/// Finishes a multishot op whose owner went away.
pub(crate) trait MultiOrphan {
    /// One completion nobody will take (give its buffer back, keep its fd).
    fn cqe(&mut self, res: i32, flags: u32);
    /// The op has ended (after the cancel); nothing more will come.
    fn end(self: Box<Self>);
}

/// The completion carries a pool buffer.
pub(crate) const CQE_F_BUFFER: u32 = 1 << 0;
/// More completions of this multishot op will follow.
pub(crate) const CQE_F_MORE: u32 = 1 << 1;

/// The pool buffer a completion carries, if any.
pub(crate) fn cqe_buffer(flags: u32) -> Option<u16> {
    (flags & CQE_F_BUFFER != 0).then_some((flags >> 16) as u16)
}

/// An op whose future went away while the kernel still had it.
pub(crate) trait Abandoned {
    /// Handles the final completion: keeps data or fds for the next op on the
    /// same socket, or releases them. Runs inside the driver, so it must not
    /// call back into it (closing an fd goes through `core::close_fd`).
    fn complete(self: Box<Self>, res: i32, flags: u32);
}

/// `user_data` of internal ops whose completion only needs counting.
const TOKEN_UNTRACKED: u64 = u64::MAX;
/// `user_data` of the eventfd read that wakes a parked thread.
const TOKEN_WAKE: u64 = u64::MAX - 1;
/// `user_data` of the completion a MSG_RING wake-up posts on the woken ring:
/// its arrival ends the wait, nothing else is done with it.
const TOKEN_MSG_WAKE: u64 = u64::MAX - 2;
/// `user_data` of a MSG_RING wake-up on the sending ring. It is sent with
/// `IOSQE_CQE_SKIP_SUCCESS`, so only a failure posts a completion.
const TOKEN_MSG_SENT: u64 = u64::MAX - 3;

/// Whether a runtime that does not choose accepts MSG_RING wake-ups
/// (`Builder::msg_ring_wakeups`).
pub(crate) const MSG_RING_DEFAULT: bool = true;

/// The io_uring completion driver of one runtime.
pub(crate) struct Driver {
    ring: IoUring,
    ops: Slab<Lifecycle>,
    /// Internal ops in flight without a slot (cancels, closes).
    untracked: usize,
    wake_fd: Arc<OwnedFd>,
    wake_buf: Box<u64>,
    wake_armed: bool,
    closed: bool,
    /// The receive pool registered as provided-buffer group 0, if any.
    pool: Option<Rc<Pool>>,
    /// Index of the ring fd registered with `IORING_REGISTER_RING_FDS`
    /// (saves the kernel an fd lookup per enter), or -1.
    ring_index: i32,
    /// The opcodes the kernel's probe reported, one bit each.
    opcodes: [u64; 4],
    /// Owner token of the buffers registered with `IORING_REGISTER_BUFFERS`
    /// (a `FixedBufPool`); dead once the pool is gone.
    buffers: Option<Weak<()>>,
    /// Counters shared with the executor (`Runtime::stats`).
    stats: std::rc::Rc<Counters>,
    /// The setup the ring got (SQPOLL changes how submission works).
    setup: RingFlags,
    /// Most CQEs reaped per tick (`Builder::max_completions_per_tick`).
    max_cqes: usize,
    /// This ring can send MSG_RING wake-ups (the probe has the opcode and
    /// the kernel `IOSQE_CQE_SKIP_SUCCESS`).
    msg_ring: bool,
    /// The eventfds of the runtimes this ring has sent MSG_RING wake-ups to,
    /// for the fallback when one fails (a failure does not say which).
    msg_targets: Vec<std::sync::Weak<OwnedFd>>,
    /// The ring fds of the targets whose MSG_RING wake-ups wait in the
    /// submission queue: held so that each fd number still names its ring
    /// when the kernel reads the SQE (released once the queue is empty).
    msg_held: Vec<Arc<OwnedFd>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("in_flight", &self.ops.len())
            .field("untracked", &self.untracked)
            .finish_non_exhaustive()
    }
}

/// Wakes a parked runtime from any thread.
#[derive(Debug)]
pub(crate) struct Unparker {
    fd: Arc<OwnedFd>,
    /// A `dup` of the runtime's ring fd when it accepts MSG_RING wake-ups.
    /// Owning it keeps the ring (not only the number) alive while any waker
    /// may target it; it closes with the runtime's shared part.
    ring: Option<Arc<OwnedFd>>,
}

impl Unparker {
    pub(crate) fn unpark(&self) {
        write_eventfd(&self.fd);
    }

    /// True when the runtime accepts MSG_RING wake-ups.
    pub(crate) fn by_ring(&self) -> bool {
        self.ring.is_some()
    }
}

/// Adds one to an eventfd, waking the read kept in flight on it.
fn write_eventfd(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd we own. A full
    // counter (EAGAIN) already means a wake-up is pending.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// A MSG_RING wake-up failed (say its target is going away), and the failure
/// does not say which: wake every runtime in `targets` (those a ring has sent
/// one to) through its eventfd instead. A spurious wake-up costs a tick; a
/// lost one would hang a task.
fn msg_failed(targets: &mut Vec<std::sync::Weak<OwnedFd>>) {
    targets.retain(|w| match w.upgrade() {
        Some(fd) => {
            write_eventfd(&fd);
            true
        }
        None => false,
    });
}

/// A `dup` of `fd` (close-on-exec).
fn dup(fd: &impl AsRawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an fd we hold open returns a new fd or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

const ENTER_GETEVENTS: u32 = 1 << 0;
const ENTER_SQ_WAKEUP: u32 = 1 << 1;
const ENTER_SQ_WAIT: u32 = 1 << 2;
const ENTER_EXT_ARG: u32 = 1 << 3;
const ENTER_REGISTERED_RING: u32 = 1 << 4;
const REGISTER_RING_FDS: u32 = 20;
const UNREGISTER_RING_FDS: u32 = 21;

/// With SQPOLL: wake the kernel thread if it sleeps, and wait for room when
/// the submission queue is full.
fn sqpoll_enter_flags(sq: &squeue::SubmissionQueue<'_>, sqpoll: bool) -> u32 {
    let mut flags = 0;
    if sqpoll {
        // `need_wakeup` fences after our tail store, pairing with the
        // thread's barrier before it sleeps: no entry is left unseen.
        if sq.need_wakeup() {
            flags |= ENTER_SQ_WAKEUP;
        }
        if sq.is_full() {
            flags |= ENTER_SQ_WAIT;
        }
    }
    flags
}

/// `struct io_uring_getevents_arg`.
#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_sz: u32,
    min_wait_usec: u32,
    ts: u64,
}

/// `struct io_uring_rsrc_update`.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

/// Registers the ring's own fd (Linux 5.18+); returns its index, or -1.
fn register_ring_fd(ring: &IoUring) -> i32 {
    let mut up = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: ring.as_raw_fd() as u64,
    };
    // SAFETY: io_uring_register with one valid `io_uring_rsrc_update`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            REGISTER_RING_FDS,
            &mut up as *mut RsrcUpdate,
            1u32,
        )
    };
    if r == 1 { up.offset as i32 } else { -1 }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.ring_index < 0 {
            return;
        }
        // The registration holds a reference to the ring until the thread
        // exits: drop it so the ring is freed with the driver.
        let mut up = RsrcUpdate {
            offset: self.ring_index as u32,
            resv: 0,
            data: 0,
        };
        // SAFETY: io_uring_register with one valid `io_uring_rsrc_update`.
        unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                self.ring.as_raw_fd(),
                UNREGISTER_RING_FDS,
                &mut up as *mut RsrcUpdate,
                1u32,
            )
        };
    }
}

/// Records the completion of the op in slot `idx` and wakes (or finishes) it.
fn complete_op(ops: &mut Slab<Lifecycle>, pool: Option<&Pool>, idx: usize, res: i32, flags: u32) {
    let Some(slot) = ops.get_mut(idx) else {
        debug_assert!(false, "corio: completion for unknown op slot {idx}");
        return;
    };
    if let Lifecycle::Multi(m) = slot {
        if cqe_buffer(flags).is_some()
            && let Some(pool) = pool
        {
            pool.note_taken();
        }
        let last = flags & CQE_F_MORE == 0;
        if let Some(orphan) = &mut m.orphan {
            orphan.cqe(res, flags);
            if last {
                let orphan = m.orphan.take();
                ops.remove(idx);
                if let Some(o) = orphan {
                    o.end();
                }
            }
            return;
        }
        m.cqes.push_back((res, flags));
        m.ended |= last;
        if let Some(w) = m.waker.take() {
            w.wake();
        }
        return;
    }
    match std::mem::replace(slot, Lifecycle::Completed(res, flags)) {
        Lifecycle::Waiting(waker) => waker.wake(),
        Lifecycle::Abandoned(op) => {
            ops.remove(idx);
            if let Some(op) = op {
                op.complete(res, flags);
            }
        }
        Lifecycle::Completed(..) | Lifecycle::Multi(_) => {
            debug_assert!(false, "corio: second completion for op slot {idx}")
        }
    }
}

/// True when a slot needs nothing more from the kernel.
fn done(s: &Lifecycle) -> bool {
    match s {
        Lifecycle::Completed(..) => true,
        Lifecycle::Multi(m) => m.ended,
        _ => false,
    }
}

/// Whether `opcode` is set in the bitset `check_probe` returns.
fn has_opcode(opcodes: &[u64; 4], opcode: u8) -> bool {
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

impl Driver {
    pub(crate) fn new(b: &Builder, stats: std::rc::Rc<Counters>) -> io::Result<(Driver, Unparker)> {
        if b.entries == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "corio: the submission queue needs at least one entry",
            ));
        }
        let (ring, flags) = super::setup::build_ring(b)?;
        if !ring.params().is_feature_nodrop() || !ring.params().is_feature_ext_arg() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "corio: the kernel's io_uring lacks NODROP or EXT_ARG (Linux 5.11+ needed)",
            ));
        }
        let opcodes = check_probe(&ring)?;
        // SAFETY: eventfd returns a new fd or -1; checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh eventfd owned by nobody else.
        let wake_fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let ring_index = if b.register_ring_fd {
            register_ring_fd(&ring)
        } else {
            -1
        };
        let setup = super::setup::describe(&ring, flags, b, ring_index >= 0);
        let msg_ring = has_opcode(&opcodes, opcode::MsgRingData::CODE)
            && ring.params().is_feature_skip_cqe_on_success();
        // Without a spare fd (EMFILE) wake-ups simply stay on the eventfd.
        let ring_dup = if msg_ring && b.msg_ring_wakeups.unwrap_or(MSG_RING_DEFAULT) {
            dup(&ring).ok().map(Arc::new)
        } else {
            None
        };
        let driver = Driver {
            pool: None,
            ring_index,
            ring,
            ops: Slab::with_capacity(256),
            untracked: 0,
            wake_fd: wake_fd.clone(),
            wake_buf: Box::new(0),
            wake_armed: false,
            closed: false,
            opcodes,
            buffers: None,
            stats,
            setup,
            max_cqes: b.max_completions_per_tick,
            msg_ring,
            msg_targets: Vec::new(),
            msg_held: Vec::new(),
        };
        let unparker = Unparker {
            fd: wake_fd,
            ring: ring_dup,
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

    /// Registers `iovecs` as the ring's fixed buffers (`IORING_REGISTER_BUFFERS`)
    /// on behalf of the owner `token`. A registration whose owner is gone
    /// (its unregister was deferred) is dropped first; one whose owner lives
    /// gives `ResourceBusy`: a ring has one buffer table.
    ///
    /// # Safety
    ///
    /// Each iovec must point at memory that stays allocated while `token`
    /// lives, and no fixed-buffer op may name an index after that memory is
    /// freed.
    pub(crate) unsafe fn register_buffers(
        &mut self,
        iovecs: &[libc::iovec],
        token: Weak<()>,
    ) -> io::Result<()> {
        if let Some(owner) = &self.buffers {
            if owner.strong_count() > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "corio: this runtime's ring already has registered buffers \
                     (one FixedBufPool per runtime at a time)",
                ));
            }
            self.ring.submitter().unregister_buffers()?;
            self.buffers = None;
        }
        // SAFETY: the caller keeps the memory valid while `token` lives.
        match unsafe { self.ring.submitter().register_buffers(iovecs) } {
            Ok(()) => {
                self.buffers = Some(token);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "corio: the ring already has registered buffers",
            )),
            Err(e) => Err(e),
        }
    }

    /// True when the ring's fixed buffers are those registered for `token`.
    pub(crate) fn buffers_owned_by(&self, token: &Weak<()>) -> bool {
        self.buffers.as_ref().is_some_and(|o| o.ptr_eq(token))
    }

    /// Unregisters the ring's fixed buffers if `token` owns them. No op may
    /// use them any more (each holds its buffer until its completion).
    pub(crate) fn unregister_buffers(&mut self, token: &Weak<()>) {
        if self.buffers_owned_by(token) {
            self.buffers = None;
            let _ = self.ring.submitter().unregister_buffers();
        }
    }

    /// Queues `sqe` for a new op whose future waits with `waker`; returns the
    /// op's slot, or `None` when the runtime has shut down.
    pub(crate) fn submit(&mut self, sqe: squeue::Entry, waker: &std::task::Waker) -> Option<usize> {
        if self.closed {
            return None;
        }
        let idx = self.ops.insert(Lifecycle::Waiting(waker.clone()));
        self.push(&sqe.user_data(idx as u64));
        Some(idx)
    }

    /// The slot of an in-flight op.
    pub(crate) fn slot(&mut self, idx: usize) -> &mut Lifecycle {
        &mut self.ops[idx]
    }

    /// Frees the slot of an op whose result was taken.
    pub(crate) fn remove(&mut self, idx: usize) {
        self.ops.remove(idx);
    }

    /// Asks the kernel to cancel the op in slot `idx` (its completion still comes).
    pub(crate) fn cancel(&mut self, idx: usize) {
        if self.closed {
            return;
        }
        let sqe = opcode::AsyncCancel::new(idx as u64).build();
        self.stats.cancel();
        self.push_untracked(sqe);
    }

    /// Queues a MSG_RING that wakes the runtime behind `target` (another
    /// runtime that accepts them); it goes out with this ring's next submit.
    /// False when this ring cannot send one: the caller writes the eventfd.
    pub(crate) fn send_wake(&mut self, target: &Unparker) -> bool {
        let Some(ring) = &target.ring else {
            return false;
        };
        if !self.msg_ring || self.closed {
            return false;
        }
        let key = Arc::as_ptr(&target.fd);
        if !self.msg_targets.iter().any(|w| w.as_ptr() == key) {
            self.msg_targets.retain(|w| w.strong_count() > 0);
            self.msg_targets.push(Arc::downgrade(&target.fd));
        }
        let sqe = opcode::MsgRingData::new(types::Fd(ring.as_raw_fd()), 0, TOKEN_MSG_WAKE, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(TOKEN_MSG_SENT);
        // Held until the SQE is submitted: the fd number must not be reused
        // for another file before the kernel has looked it up.
        self.msg_held.push(ring.clone());
        loop {
            // SAFETY: a MSG_RING data message points at no memory; the target
            // ring fd stays open while `msg_held` holds it, until the kernel
            // has taken the SQE (and its own reference to the file).
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                break;
            }
            self.enter(0, None);
        }
        self.stats.msg_ring_wakeup();
        true
    }

    /// Submits queued MSG_RING wake-ups now, if any wait (the thread is about
    /// to leave `block_on`, so no next tick would send them).
    pub(crate) fn flush_wakes(&mut self) {
        if !self.msg_held.is_empty() {
            self.enter(0, None);
        }
    }

    fn push_untracked(&mut self, sqe: squeue::Entry) {
        self.untracked += 1;
        self.push(&sqe.user_data(TOKEN_UNTRACKED));
    }

    fn push(&mut self, sqe: &squeue::Entry) {
        loop {
            // SAFETY: every op's SQE points only at memory its op value owns on
            // the heap (or 'static memory), which the driver keeps alive until
            // the op's completion (the `OpCode` contract).
            if unsafe { self.ring.submission().push(sqe) }.is_ok() {
                self.stats.sqe();
                return;
            }
            // Full: hand the queue to the kernel and try again.
            self.enter(0, None);
        }
    }

    /// Queues closes for dropped fds and re-arms the wake-up read.
    fn prepare(&mut self, core: &Core) {
        // Ops run on the blocking pool (opcodes the kernel lacks) whose
        // futures were dropped: release those whose syscall has returned.
        crate::op::release_orphans(core, false);
        let orphans = std::mem::take(&mut *core.pending_orphans.borrow_mut());
        for (slot, orphan) in orphans {
            self.orphan_multi(slot, orphan);
        }
        let closes = std::mem::take(&mut *core.pending_close.borrow_mut());
        for fd in closes {
            self.push_untracked(opcode::Close::new(types::Fd(fd)).build());
        }
        if !self.wake_armed && !self.closed {
            let buf: *mut u64 = &mut *self.wake_buf;
            let sqe = opcode::Read::new(types::Fd(self.wake_fd.as_raw_fd()), buf.cast(), 8)
                .build()
                .user_data(TOKEN_WAKE);
            self.wake_armed = true;
            self.push(&sqe);
        }
    }

    /// Submits what is queued (if anything needs the kernel) and reaps
    /// completions without waiting.
    pub(crate) fn submit_and_reap(&mut self, core: &Core) {
        self.prepare(core);
        let need_enter = {
            let sq = self.ring.submission();
            // An awake SQPOLL thread takes the entries without a syscall.
            let submit = !sq.is_empty() && (self.setup.sqpoll.is_none() || sq.need_wakeup());
            submit || sq.taskrun() || sq.cq_overflow()
        };
        if need_enter {
            self.enter(0, None);
        }
        self.reap_at_most(self.max_cqes);
    }

    /// Reaps what is ready without waiting; enters the kernel only when it
    /// holds completions back (deferred task work, overflow).
    pub(crate) fn reap_ready(&mut self, core: &Core) {
        let held = {
            let sq = self.ring.submission();
            sq.taskrun() || sq.cq_overflow()
        };
        if held || !self.ring.completion().is_empty() {
            self.submit_and_reap(core);
        }
    }

    /// Submits and waits for at least one completion, at most `timeout`.
    pub(crate) fn park(&mut self, core: &Core, timeout: Option<Duration>) {
        self.prepare(core);
        // A task made runnable by `prepare` (an orphan returning buffers)
        // must not wait for the kernel.
        let runnable = !core.queue.borrow().is_empty();
        if timeout == Some(Duration::ZERO) || runnable || !self.ring.completion().is_empty() {
            // A zero-timeout wait costs far more than a plain submit. Not
            // waiting: what the reap wakes needs no eventfd signal.
            core.shared
                .parked
                .store(false, std::sync::atomic::Ordering::SeqCst);
            self.submit_and_reap(core);
            return;
        }
        self.stats.park();
        self.enter(1, timeout);
        // Awake: wake-ups from here on (the reap) need no eventfd signal.
        core.shared
            .parked
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.reap_at_most(self.max_cqes);
    }

    /// One `io_uring_enter` that submits what is queued and, with `want > 0`,
    /// waits for that many completions (at most `timeout`).
    fn sys_enter(&mut self, want: u32, timeout: Option<Duration>) -> io::Result<()> {
        let (to_submit, sq_flags_need, sqpoll_flags) = {
            let sq = self.ring.submission();
            if sq.cq_overflow() {
                self.stats.cq_overflow();
            }
            let sqpoll = sqpoll_enter_flags(&sq, self.setup.sqpoll.is_some());
            (sq.len() as u32, sq.cq_overflow() || sq.taskrun(), sqpoll)
        };
        self.stats.enter();
        let mut flags = sqpoll_flags;
        if want > 0 || sq_flags_need {
            flags |= ENTER_GETEVENTS;
        }
        let ts;
        let arg;
        let (argp, argsz): (*const libc::c_void, usize) = match timeout {
            Some(t) if want > 0 => {
                ts = libc::timespec {
                    tv_sec: t.as_secs() as libc::time_t,
                    tv_nsec: t.subsec_nanos() as libc::c_long,
                };
                arg = GeteventsArg {
                    sigmask: 0,
                    sigmask_sz: 0,
                    min_wait_usec: 0,
                    ts: (&ts as *const libc::timespec) as u64,
                };
                flags |= ENTER_EXT_ARG;
                (
                    (&arg as *const GeteventsArg).cast(),
                    std::mem::size_of::<GeteventsArg>(),
                )
            }
            _ => (std::ptr::null(), 0),
        };
        let fd = if self.ring_index >= 0 {
            flags |= ENTER_REGISTERED_RING;
            self.ring_index
        } else {
            self.ring.as_raw_fd()
        };
        // SAFETY: io_uring_enter on our ring; `argp` (when set) points at a
        // getevents argument and timespec that live until the call returns.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                fd,
                to_submit,
                want,
                flags,
                argp,
                argsz,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if !self.msg_held.is_empty() && self.ring.submission().is_empty() {
            // The kernel has taken every SQE, MSG_RING wake-ups included.
            self.msg_held.clear();
        }
        Ok(())
    }

    /// One `io_uring_enter`, retried on EINTR/EBUSY/EAGAIN as the design says.
    fn enter(&mut self, want: usize, timeout: Option<Duration>) {
        loop {
            let err = match self.sys_enter(want as u32, timeout) {
                Ok(()) => return,
                Err(e) => e,
            };
            match err.raw_os_error() {
                // The wait timed out, or a signal interrupted it: the caller's
                // loop looks at timers and queues again.
                Some(libc::ETIME) => return,
                Some(libc::EINTR) if want > 0 => return,
                Some(libc::EINTR) => {}
                // Completions are backed up (or memory is short): make room.
                Some(libc::EBUSY) | Some(libc::EAGAIN) => {
                    if self.reap() == 0 {
                        std::thread::yield_now();
                    }
                    if want > 0 {
                        return;
                    }
                }
                _ => panic!("corio: io_uring_enter failed: {err}"),
            }
        }
    }

    /// Takes every completion off the queue; returns how many.
    fn reap(&mut self) -> usize {
        self.reap_at_most(usize::MAX)
    }

    /// Takes at most `max` completions off the queue; returns how many.
    fn reap_at_most(&mut self, max: usize) -> usize {
        let mut total = 0;
        let mut cq = self.ring.completion();
        loop {
            if total == max {
                return total;
            }
            let Some(cqe) = cq.next() else {
                // Entries posted while we were busy show up after a sync.
                cq.sync();
                if cq.is_empty() {
                    return total;
                }
                continue;
            };
            total += 1;
            let (user_data, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            match user_data {
                // Neither was counted as in flight.
                TOKEN_MSG_WAKE => {
                    self.stats.cqe_unpaired();
                    continue;
                }
                TOKEN_MSG_SENT => {
                    self.stats.cqe_unpaired();
                    if res < 0 {
                        msg_failed(&mut self.msg_targets);
                    }
                    continue;
                }
                _ => self.stats.cqe(flags),
            }
            match user_data {
                TOKEN_UNTRACKED => self.untracked -= 1,
                TOKEN_WAKE => self.wake_armed = false,
                idx => complete_op(
                    &mut self.ops,
                    self.pool.as_deref(),
                    idx as usize,
                    res,
                    flags,
                ),
            }
        }
    }

    /// Queues a multishot op; returns its slot (`None` after shutdown).
    pub(crate) fn submit_multi(&mut self, sqe: squeue::Entry) -> Option<usize> {
        if self.closed {
            return None;
        }
        let idx = self.ops.insert(Lifecycle::Multi(Box::new(Multi {
            cqes: std::collections::VecDeque::new(),
            waker: None,
            ended: false,
            orphan: None,
        })));
        self.push(&sqe.user_data(idx as u64));
        Some(idx)
    }

    /// The state of multishot op `idx`.
    pub(crate) fn multi(&mut self, idx: usize) -> &mut Multi {
        match &mut self.ops[idx] {
            Lifecycle::Multi(m) => m,
            _ => unreachable!("corio: slot {idx} is not a multishot op"),
        }
    }

    /// The owner of multishot op `idx` went away: `orphan` finishes what is
    /// queued and what still comes; the op is cancelled.
    pub(crate) fn orphan_multi(&mut self, idx: usize, mut orphan: Box<dyn MultiOrphan>) {
        let m = self.multi(idx);
        for (res, flags) in m.cqes.drain(..) {
            orphan.cqe(res, flags);
        }
        if m.ended {
            self.ops.remove(idx);
            orphan.end();
        } else {
            m.orphan = Some(orphan);
            self.cancel(idx);
        }
    }

    /// Registers `pool` as provided-buffer group 0.
    pub(crate) fn register_pool(&mut self, pool: &Rc<Pool>) -> io::Result<()> {
        let addr = pool.ring_addr().expect("a ring pool");
        // SAFETY: `addr` is a page-aligned mapping of `count` ring entries
        // that `pool` owns; the driver keeps an `Rc` of it so the memory
        // outlives the registration (the ring goes away with the driver).
        unsafe {
            self.ring
                .submitter()
                .register_buf_ring_with_flags(addr, pool.count(), 0, 0)?
        };
        self.pool = Some(pool.clone());
        Ok(())
    }

    /// Cancels every op in flight and waits until the kernel has returned all
    /// of them, so no buffer is freed while the kernel may still write to it.
    pub(crate) fn shutdown(&mut self, core: &Core) {
        let in_flight: Vec<usize> = self
            .ops
            .iter()
            .filter(|(_, s)| !done(s))
            .map(|(i, _)| i)
            .collect();
        for idx in in_flight {
            self.cancel(idx);
        }
        self.closed = true;
        if self.wake_armed {
            self.push_untracked(opcode::AsyncCancel::new(TOKEN_WAKE).build());
        }
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            self.prepare(core);
            let busy =
                self.untracked > 0 || self.wake_armed || self.ops.iter().any(|(_, s)| !done(s));
            if !busy {
                break;
            }
            if Instant::now() > give_up {
                // An op the kernel cannot cancel (say a write to a hung
                // network filesystem): leak its memory rather than free it
                // under the kernel.
                std::mem::forget(std::mem::take(&mut self.ops));
                break;
            }
            self.enter(1, Some(Duration::from_millis(100)));
            self.reap();
        }
        let _ = self.sys_enter(0, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver with default settings; `None` where io_uring or MSG_RING is
    /// unavailable.
    fn driver() -> Option<(Driver, Unparker)> {
        match Driver::new(&Builder::new(), Rc::default()) {
            Ok((d, u)) if d.msg_ring => Some((d, u)),
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
            source.msg_held.is_empty(),
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
        assert_eq!(source.msg_targets.len(), 1);
    }
}
