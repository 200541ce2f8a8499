//! Submitting, reaping and parking: the ring's side of each executor tick.
//!
//! How it works: SQEs wait in the submission queue until the tick ends; a
//! full queue is submitted and refilled. One `io_uring_enter` submits the
//! batch and, when the thread has nothing to run, waits in the same call
//! (bounded by the next timer). Completions the kernel kept back on overflow
//! (`IORING_FEAT_NODROP`) or as deferred task work (`IORING_SQ_TASKRUN`) are
//! flushed by entering again; `EINTR`, `EBUSY` and `EAGAIN` are retried, so
//! no completion is lost. Each completion goes to its slot.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types};

use super::Ring;
use super::files::{self, TOKEN_UNFIX};
use super::slots::{After, Slots};
use super::wake::{TOKEN_MSG_SENT, TOKEN_MSG_WAKE, TOKEN_UNTRACKED, TOKEN_WAKE, Unparker};
use crate::buf::pool::{GROUP1_BASE, Pool};
use crate::driver::op::{CQE_BID_MASK, CQE_F_BUF_MORE, CQE_F_MORE, cqe_buffer};
use crate::release::Release;

const ENTER_GETEVENTS: u32 = 1 << 0;
const ENTER_SQ_WAKEUP: u32 = 1 << 1;
const ENTER_SQ_WAIT: u32 = 1 << 2;
const ENTER_EXT_ARG: u32 = 1 << 3;
const ENTER_REGISTERED_RING: u32 = 1 << 4;

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

impl Ring {
    /// How many SQEs wait for the next `io_uring_enter`.
    #[inline]
    pub(crate) fn sq_len(&mut self) -> usize {
        self.ring.submission().len()
    }

    /// Queues `sqe` with `user_data` = `key`.
    #[inline]
    pub(super) fn push(&mut self, sqe: squeue::Entry, key: u64) {
        let sqe = sqe.user_data(key);
        loop {
            // SAFETY: every op's SQE points only at memory its op value owns
            // on the heap (or 'static memory), which the driver keeps alive
            // until the op's last completion (the `OpCode` contract).
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                self.stats.sqe();
                return;
            }
            // Full: hand the queue to the kernel and try again.
            self.enter(0, None);
        }
    }

    /// Queues `sqe` (`user_data` = `key`) linked to `link`, whose
    /// completion is untracked: both go into the queue together, so the
    /// kernel never sees the chain cut by the end of a submission.
    #[cold]
    #[inline(never)]
    pub(super) fn push_linked(&mut self, sqe: squeue::Entry, key: u64, link: squeue::Entry) {
        let free = |ring: &mut io_uring::IoUring| {
            let sq = ring.submission();
            sq.capacity() - sq.len()
        };
        // Bounded: a submit empties the queue (SQPOLL empties it soon).
        for _ in 0..1000 {
            if free(&mut self.ring) >= 2 {
                break;
            }
            self.enter(0, None);
        }
        self.push(sqe.flags(squeue::Flags::IO_LINK), key);
        self.push_untracked(link);
    }

    fn push_untracked(&mut self, sqe: squeue::Entry) {
        self.untracked += 1;
        self.push(sqe, TOKEN_UNTRACKED);
    }

    /// Asks the kernel to cancel the op `key` (its completion still comes).
    pub(crate) fn cancel(&mut self, key: u64) {
        if self.closed {
            return;
        }
        self.stats.cancel();
        self.push_untracked(opcode::AsyncCancel::new(key).build());
    }

    /// Closes `fd` with a close op (its completion is only counted).
    fn close(&mut self, fd: RawFd) {
        if self.closed {
            crate::release::close_now(fd);
        } else {
            self.push_untracked(opcode::Close::new(types::Fd(fd)).build());
            // [reliability] Ops queued from now on go after this close: a
            // listener out of fds may try again (`freed.rs`).
            crate::freed::note_closed();
        }
    }

    /// Finishes one entry of the release queue.
    pub(crate) fn release(&mut self, r: Release) {
        match r {
            Release::Close { fd, after: None } => self.close(fd),
            Release::Close {
                fd,
                after: Some(key),
            } => match self.slots.disarm(key, Some(fd)) {
                Ok(true) => self.cancel(key),
                Ok(false) => {}
                Err(fd) => self.close(fd),
            },
            Release::Op { key, op } => {
                if self.slots.release(key, op) {
                    self.cancel(key);
                }
            }
            Release::Unregister(token) => self.unregister_buffers(&token),
            // [reliability] A listener's accepts start over (op/net/accept.rs).
            Release::Rearm { key } => {
                if let Ok(true) = self.slots.disarm(key, None) {
                    self.cancel(key);
                }
            }
            Release::Unfix { slot, fd } => self.unfix(slot, fd),
            Release::Job(job) => {
                debug_assert!(false, "corio: blocking jobs are the driver's");
                drop(job);
            }
        }
    }

    /// Queues the eventfd read if it is not in flight.
    fn prepare(&mut self) {
        if !self.wake.armed && !self.closed {
            let sqe = self.wake.read_sqe();
            // Counted as an untracked op: its completion only re-arms it.
            self.push(sqe, TOKEN_WAKE);
        }
    }

    /// Submits what is queued (if anything needs the kernel) and reaps
    /// completions without waiting.
    pub(crate) fn submit_and_reap(&mut self) {
        self.prepare();
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
    /// holds completions back (deferred task work, overflow) or entries wait
    /// in the submission queue (an enter that failed with `EAGAIN`/`EBUSY`,
    /// or submitted only some, left them there: a spinning executor would
    /// otherwise wait for their completions for ever).
    pub(crate) fn reap_ready(&mut self) {
        let held = {
            let sq = self.ring.submission();
            sq.taskrun() || sq.cq_overflow() || !sq.is_empty()
        };
        if held || !self.ring.completion().is_empty() {
            self.submit_and_reap();
        }
    }

    /// Submits and waits for at least one completion, at most `timeout`;
    /// lowers `parked` as soon as the wait ends.
    #[inline]
    pub(crate) fn park(&mut self, timeout: Option<Duration>, parked: &AtomicBool) {
        self.prepare();
        if timeout == Some(Duration::ZERO) || !self.ring.completion().is_empty() {
            // A zero-timeout wait costs far more than a plain submit. Not
            // waiting: what the reap wakes needs no eventfd signal.
            parked.swap(false, Ordering::SeqCst);
            self.submit_and_reap();
            return;
        }
        self.stats.park();
        self.enter(1, timeout);
        // Awake: wake-ups from here on (the reap) need no eventfd signal.
        parked.swap(false, Ordering::SeqCst);
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
        // [reliability] Test-only fault injection (`faults.rs`); one branch
        // on a `None` unless the builder asked for it.
        let (to_submit, want) = self.inject_fault(to_submit, want)?;
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
        if !self.wake.held.is_empty() && self.ring.submission().is_empty() {
            // The kernel has taken every SQE, MSG_RING wake-ups included.
            self.wake.held.clear();
        }
        Ok(())
    }

    /// One `io_uring_enter`, retried on EINTR/EBUSY/EAGAIN as the design says.
    pub(super) fn enter(&mut self, want: usize, timeout: Option<Duration>) {
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
    pub(super) fn reap(&mut self) -> usize {
        self.reap_at_most(usize::MAX)
    }

    /// Takes at most `max` completions off the queue; returns how many.
    fn reap_at_most(&mut self, max: usize) -> usize {
        let mut total = 0;
        let mut closes: Vec<RawFd> = Vec::new();
        {
            let Ring {
                ring,
                slots,
                pools,
                stats,
                wake,
                untracked,
                latency,
                files,
                ..
            } = self;
            let mut cq = ring.completion();
            loop {
                if total == max {
                    break;
                }
                let Some(cqe) = cq.next() else {
                    // Entries posted while we were busy show up after a sync.
                    cq.sync();
                    if cq.is_empty() {
                        break;
                    }
                    continue;
                };
                total += 1;
                let (user_data, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
                if user_data >= TOKEN_UNFIX {
                    // The driver's own tokens: their high word (u32::MAX)
                    // is never a slot's generation. One compare keeps them
                    // out of the way of op completions.
                    driver_token(stats, wake, untracked, files, user_data, res, flags);
                    continue;
                }
                let key = user_data;
                stats.cqe(flags);
                if let Some(clock) = latency
                    && flags & CQE_F_MORE == 0
                    && let Some((kind, took)) = clock.times.end(key)
                {
                    clock.hist.record(kind, took);
                }
                // Group 1's ids start at GROUP1_BASE.
                if let Some(bid) = cqe_buffer(flags)
                    && let Some(pool) = pools[usize::from(bid >= GROUP1_BASE)].as_ref()
                {
                    pooled_completion(slots, pool, &mut closes, key, bid, res, flags);
                } else if let After::Close(fd) = slots.complete(key, res, flags) {
                    closes.push(fd);
                }
            }
        }
        if !closes.is_empty() {
            self.close_all(closes);
        }
        total
    }

    /// Closes the fds whose close waited for an op's last completion.
    #[cold]
    #[inline(never)]
    fn close_all(&mut self, closes: Vec<RawFd>) {
        for fd in closes {
            self.close(fd);
        }
    }

    /// Starts shutting down: cancels every op in the kernel (and the
    /// eventfd read); nothing new is submitted after this.
    pub(crate) fn begin_shutdown(&mut self) {
        for key in self.slots.in_kernel() {
            self.cancel(key);
        }
        if self.wake.armed {
            self.push_untracked(opcode::AsyncCancel::new(TOKEN_WAKE).build());
        }
        self.closed = true;
    }

    /// True while the kernel still holds an op of this ring.
    pub(crate) fn busy(&self) -> bool {
        self.untracked > 0 || self.wake.armed || self.slots.any_in_kernel()
    }

    /// Submits and waits a little for completions during shutdown; after
    /// `give_up`, leaks what the kernel still holds rather than free memory
    /// under it (an op it cannot cancel, say a write to a hung network
    /// filesystem).
    pub(crate) fn shutdown_wait(&mut self, give_up: Instant) -> bool {
        if Instant::now() > give_up {
            self.slots.leak_all();
            return false;
        }
        self.enter(1, Some(Duration::from_millis(100)));
        self.reap();
        true
    }

    /// Submits what shutdown queued last (closes).
    pub(crate) fn finish_shutdown(&mut self) {
        let _ = self.sys_enter(0, None);
    }
}

impl Ring {
    /// Queues a MSG_RING that wakes the runtime behind `target` (another
    /// runtime that accepts them); it goes out with this ring's next submit.
    /// False when this ring cannot send one: the caller writes the eventfd.
    pub(crate) fn send_wake(&mut self, target: &Unparker) -> bool {
        let Some(ring) = &target.ring else {
            return false;
        };
        if !self.wake.msg_ring || self.closed {
            return false;
        }
        let key = Arc::as_ptr(&target.fd);
        if !self.wake.targets.iter().any(|w| w.as_ptr() == key) {
            self.wake.targets.retain(|w| w.strong_count() > 0);
            self.wake.targets.push(Arc::downgrade(&target.fd));
        }
        let sqe = opcode::MsgRingData::new(types::Fd(ring.as_raw_fd()), 0, TOKEN_MSG_WAKE, None)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(TOKEN_MSG_SENT);
        // Held until the SQE is submitted: the fd number must not be reused
        // for another file before the kernel has looked it up.
        self.wake.held.push(ring.clone());
        loop {
            // SAFETY: a MSG_RING data message points at no memory; the target
            // ring fd stays open while `held` holds it, until the kernel has
            // taken the SQE (and its own reference to the file).
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
        if !self.wake.held.is_empty() {
            self.enter(0, None);
        }
    }
}

/// A completion that names buffer `bid` of `pool` (its group's id, group
/// 1's with `GROUP1_BASE`): one completion of op `key` per buffer it
/// filled (a bundle fills several; each but the last says more follow).
/// Out of line: the reap's loop stays small for the ops that name none.
#[inline(never)]
fn pooled_completion(
    slots: &mut Slots,
    pool: &Pool,
    closes: &mut Vec<RawFd>,
    key: u64,
    bid: u16,
    res: i32,
    flags: u32,
) {
    let bid = bid & !GROUP1_BASE;
    let keep = flags & !(CQE_BID_MASK | CQE_F_MORE | CQE_F_BUF_MORE);
    let buf_more = flags & CQE_F_BUF_MORE != 0;
    pool.split(bid, res, buf_more, |bid, res, last| {
        let more = if last { flags & CQE_F_MORE } else { CQE_F_MORE };
        let flags = keep | more | (bid as u32) << 16;
        if let After::Close(fd) = slots.complete(key, res, flags) {
            closes.push(fd);
        }
    });
}

/// A completion of one of the driver's own tokens (a wake-up's, an
/// untracked op's, a registered file emptied), out of line: rare next to
/// op completions.
#[cold]
#[inline(never)]
fn driver_token(
    stats: &super::Counters,
    wake: &mut super::wake::Wake,
    untracked: &mut usize,
    files: &mut Option<files::Files>,
    user_data: u64,
    res: i32,
    flags: u32,
) {
    match user_data {
        // Neither was counted as in flight.
        TOKEN_MSG_WAKE => stats.cqe_unpaired(),
        TOKEN_MSG_SENT => {
            stats.cqe_unpaired();
            if res < 0 {
                wake.failed();
            }
        }
        TOKEN_UNTRACKED => {
            stats.cqe(flags);
            *untracked -= 1;
        }
        TOKEN_WAKE => {
            stats.cqe(flags);
            wake.armed = false;
        }
        key => {
            debug_assert!(
                key & !0xffff == TOKEN_UNFIX,
                "corio: unknown driver token {key:#x}"
            );
            stats.cqe(flags);
            stats.registered_file(false);
            *untracked -= 1;
            files::unfixed(files, key, res);
        }
    }
}
