//! Polling an op on the ring.
//!
//! How it works: the first poll submits the op's SQE into a slot that holds
//! the task's waker; the next polls take its completions (`on_cqe` for each,
//! `Done` ends it). `EAGAIN` from a socket in `O_NONBLOCK` mode is not a
//! result: a `POLL_ADD` for the op's readiness is submitted, and the op is
//! retried when it fires. An op of a multishot role takes the completions of
//! the multishot op armed on its fd, arming one if there is none; a plain
//! read on that fd takes the armed op down first, so what it received is
//! kept for the read. An accept that waits while a dropped accept keeps a
//! connection cancels its own and takes the kept one. Ops on opcodes the
//! kernel lacks run on the blocking pool. The common shapes (a completion
//! taken, a roleless op or a plain read started, a pooled receive served)
//! are also answered by `poll_fast`, inlined where the op is polled, with
//! the same helpers as `poll_op`, which the driver calls out of line for
//! the rest (`lifecycle.rs`).

use std::task::Context;

use io_uring::{opcode, types};

use super::Ring;
use super::slots::Owner;
use crate::driver::blocking::{self, BlockingPool};
use crate::driver::op::{Interest, Kind, OpCode, Step, Wait, cqe_result, op_data, role_of};
use crate::driver::{OpState, Progress};

fn shut_down() -> std::io::Error {
    std::io::Error::other("corio: the runtime has shut down")
}

/// Makes a socket blocking again (io_uring waits for data itself).
fn set_blocking(fd: i32) {
    // SAFETY: fcntl on an fd the caller's handle keeps open.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

impl Ring {
    /// `op`'s SQE, naming its fd by registered-file slot where it has one
    /// (`files.rs`).
    #[inline]
    fn op_sqe<T: OpCode>(&self, op: &mut T) -> io_uring::squeue::Entry {
        let mut sqe = op.sqe();
        if self.files.is_some()
            && let Some(fd) = op.fixed_fd()
        {
            self.fix_sqe(&mut sqe, fd);
        }
        sqe
    }

    /// Submits `op`'s SQE as a single-shot op owned by the future.
    #[inline(always)]
    fn submit_single<T: OpCode>(&mut self, op: &mut T, cx: &Context<'_>) -> Option<u64> {
        if self.closed {
            return None;
        }
        let sqe = self.op_sqe(op);
        let key = self.slots.insert_future(cx.waker());
        if let Some(clock) = &mut self.latency {
            clock.times.start(key, T::kind_name());
        }
        match op.linked() {
            None => self.push(sqe, key),
            Some(link) => self.push_linked(sqe, key, link),
        }
        Some(key)
    }

    #[inline]
    pub(crate) fn poll_op<T: OpCode>(
        &mut self,
        state: &mut OpState<T>,
        data: &mut Option<T>,
        cx: &mut Context<'_>,
        pool: &BlockingPool,
    ) -> Progress {
        loop {
            match *state {
                OpState::Idle => {
                    let op = op_data(data);
                    if let Some(code) = op.optional_opcode()
                        && !self.supports(code)
                        && !op.downgrade()
                    {
                        // The kernel lacks the opcode: run the syscall on
                        // the blocking pool, as the poll driver does.
                        return blocking::poll(state, data, cx, pool);
                    }
                    let (kind, multishot, armed) = match op.role() {
                        Some(r) => (Some(r.kind), r.multishot, r.fd.armed()),
                        None => (None, false, None),
                    };
                    if multishot || (kind == Some(Kind::Accept) && armed.is_some()) {
                        // Pooled receives and multishot accepts take from the
                        // op armed on the fd; so does any accept while one is
                        // armed (its connections are for whoever accepts).
                        match armed {
                            Some(key) => *state = OpState::Armed(key),
                            None => match self.arm(op) {
                                Some(key) => *state = OpState::Armed(key),
                                None => return Progress::Ready(Err(shut_down()), 0),
                            },
                        }
                    } else if let (Some(Kind::Read), Some(key)) = (kind, armed) {
                        self.disarm_for_read(op, key);
                        return Progress::Restart;
                    } else {
                        return self.start_single(state, op, kind, cx);
                    }
                }
                OpState::Retry => {
                    // After a readiness poll: the op still holds its read.
                    let op = op_data(data);
                    let Some(key) = self.submit_single(op, cx) else {
                        if let Some(role) = op.role().filter(|r| r.kind == Kind::Read) {
                            role.fd.end_read();
                        }
                        return Progress::Ready(Err(shut_down()), 0);
                    };
                    *state = OpState::Ring(key);
                    return Progress::Pending;
                }
                OpState::Ring(key) | OpState::RingCancel(key) => {
                    let cancelling = matches!(state, OpState::RingCancel(_));
                    return self.take_single(state, op_data(data), key, cancelling, cx);
                }
                OpState::RingPoll(key) => {
                    let Some((res, _, last)) = self.slots.take(key, cx.waker()) else {
                        return Progress::Pending;
                    };
                    if !last {
                        self.slots.orphan_rest(key);
                    }
                    if res == -libc::ECANCELED && !self.closed {
                        // The op's linked timeout fired while it waited.
                        let op = op_data(data);
                        if let Some(role) = op.role().filter(|r| r.kind == Kind::Read) {
                            role.fd.end_read();
                        }
                        return Progress::Ready(cqe_result(res), 0);
                    }
                    *state = OpState::Retry;
                }
                OpState::Armed(key) => return self.take_armed_op(state, op_data(data), key, cx),
                OpState::Blocking(_) => return blocking::poll(state, data, cx, pool),
                OpState::Done => unreachable!("corio: op polled after completion"),
            }
        }
    }

    /// The hot shapes of an op's poll, kept small so they compile tight
    /// where the op is polled: a single-shot op's completion, a pooled
    /// receive taking from its fd's armed op, and the start of an op with no
    /// role, a plain read or a pooled receive (on an fd with no kept data;
    /// a plain read's with no armed receive, a pooled one's with one) when
    /// the task has budget left. `None`: any other shape, for `poll_op`
    /// (whose answer is the same for these).
    #[inline(always)]
    pub(crate) fn poll_fast<T: OpCode>(
        &mut self,
        state: &mut OpState<T>,
        data: &mut Option<T>,
        cx: &mut Context<'_>,
        budget_left: bool,
    ) -> Option<Progress> {
        match *state {
            OpState::Ring(key) => Some(self.take_single(state, op_data(data), key, false, cx)),
            OpState::Idle if budget_left && !self.closed => {
                let op = op_data(data);
                if op.optional_opcode().is_some() {
                    return None;
                }
                let kind = match op.role() {
                    None => None,
                    Some(r) if r.kind == Kind::Read => {
                        // `poll_op`'s order: wait for the read in flight,
                        // then recover kept data (there), then take from
                        // the receive armed on the fd (a pooled receive) or
                        // start a plain read; arming one and taking one down
                        // for a plain read are there too.
                        if r.fd.wait_read(cx.waker()) {
                            return Some(Progress::Pending);
                        }
                        if r.fd.has_kept() {
                            return None;
                        }
                        match (r.multishot, r.fd.armed()) {
                            (false, None) => Some(Kind::Read),
                            (true, Some(key)) => {
                                *state = OpState::Armed(key);
                                return Some(self.take_armed_op(state, op, key, cx));
                            }
                            _ => return None,
                        }
                    }
                    Some(_) => return None,
                };
                Some(self.start_single(state, op, kind, cx))
            }
            OpState::Armed(key) => Some(self.take_armed_op(state, op_data(data), key, cx)),
            _ => None,
        }
    }

    /// An op of a multishot role takes the next completion of the op armed
    /// in slot `key` on its fd (or waits for one).
    #[inline(always)]
    fn take_armed_op<T: OpCode>(
        &mut self,
        state: &mut OpState<T>,
        op: &mut T,
        key: u64,
        cx: &mut Context<'_>,
    ) -> Progress {
        let fd = role_of(op).fd;
        if fd.armed() != Some(key) {
            // Taken down (a plain read came): start over.
            return Progress::Restart;
        }
        let Some((res, flags, last)) = self.slots.take_armed(key, cx.waker()) else {
            return Progress::Pending;
        };
        if last {
            // The kernel ended it (freed with its last completion): the
            // next receive arms another.
            fd.set_armed(None);
        }
        if res >= 0 {
            return Progress::Ready(Ok(res as u32), flags);
        }
        self.armed_error(state, fd, res, cx)
    }

    /// A single-shot op in slot `key` takes its completions: its result
    /// once the last has come (a readiness wait first when a socket in
    /// `O_NONBLOCK` mode said `EAGAIN`).
    #[inline(always)]
    fn take_single<T: OpCode>(
        &mut self,
        state: &mut OpState<T>,
        op: &mut T,
        key: u64,
        cancelling: bool,
        cx: &mut Context<'_>,
    ) -> Progress {
        loop {
            let Some((res, flags, last)) = self.slots.take(key, cx.waker()) else {
                if op.role().is_some_and(|r| r.kind == Kind::Accept) {
                    self.accept_waits(state, op, key, cx);
                }
                return Progress::Pending;
            };
            if op.on_cqe(res, flags) == Step::More && !last {
                continue;
            }
            let res = op.final_res(res);
            if !last {
                // Done before the kernel's last completion.
                self.slots.orphan_rest(key);
            }
            if res == -libc::EAGAIN
                && let Wait::Ready(fd, interest) = op.wait()
                && !self.closed
            {
                // A socket in O_NONBLOCK mode: wait for readiness, then
                // retry (a read keeps its turn meanwhile). An op's linked
                // timeout bounds the wait too.
                let raw = fd.raw();
                let link = op.linked();
                *state = OpState::RingPoll(self.poll_readiness(raw, interest, link, cx));
                return Progress::Pending;
            }
            if let Some(role) = op.role().filter(|r| r.kind == Kind::Read) {
                role.fd.end_read();
            }
            if cancelling && res == -libc::ECANCELED {
                // Cancelled to take a kept connection.
                return Progress::Restart;
            }
            return Progress::Ready(cqe_result(res), flags);
        }
    }

    /// Submits a single-shot op (a read takes its fd's turn first).
    #[inline]
    fn start_single<T: OpCode>(
        &mut self,
        state: &mut OpState<T>,
        op: &mut T,
        kind: Option<Kind>,
        cx: &mut Context<'_>,
    ) -> Progress {
        if kind == Some(Kind::Read) {
            role_of(op).fd.start_read();
        }
        let Some(key) = self.submit_single(op, cx) else {
            if kind == Some(Kind::Read) {
                role_of(op).fd.end_read();
            }
            return Progress::Ready(Err(shut_down()), 0);
        };
        if kind == Some(Kind::Accept) {
            // Woken if a dropped accept keeps a connection.
            role_of(op).fd.kept().wait_accepted(cx.waker());
        }
        *state = OpState::Ring(key);
        Progress::Pending
    }

    /// Arms `op`'s multishot op on its fd; its slot, or `None` after
    /// shutdown.
    #[inline(never)]
    fn arm<T: OpCode>(&mut self, op: &mut T) -> Option<u64> {
        if self.closed {
            return None;
        }
        let sqe = self.op_sqe(op);
        let armed = op.arm().expect("corio: a multishot op arms");
        let key = self.slots.insert(Owner::Armed(armed));
        self.push(sqe, key);
        let fd = role_of(op).fd;
        fd.set_armed(Some((key, self.owner.clone())));
        Some(key)
    }

    /// A plain read on a socket whose pooled receives armed a multishot
    /// receive: that is taken down; what it received is kept for this read,
    /// which waits until it has ended.
    #[cold]
    #[inline(never)]
    fn disarm_for_read<T: OpCode>(&mut self, op: &mut T, key: u64) {
        let fd = role_of(op).fd;
        fd.set_armed(None);
        fd.start_read();
        if let Ok(true) = self.slots.disarm(key, None) {
            self.cancel(key);
        }
    }

    /// An accept waits in the kernel: if a dropped accept keeps a
    /// connection meanwhile, this one is cancelled to take it.
    #[cold]
    #[inline(never)]
    fn accept_waits<T: OpCode>(
        &mut self,
        state: &mut OpState<T>,
        op: &mut T,
        key: u64,
        cx: &mut Context<'_>,
    ) {
        let fd = role_of(op).fd;
        let mut kept = fd.kept();
        if kept.has_accepted() {
            drop(kept);
            if !matches!(state, OpState::RingCancel(_)) {
                self.cancel(key);
                *state = OpState::RingCancel(key);
            }
        } else {
            kept.wait_accepted(cx.waker());
        }
    }

    /// Submits a readiness poll for `fd`; its slot.
    #[cold]
    #[inline(never)]
    fn poll_readiness(
        &mut self,
        fd: i32,
        interest: Interest,
        link: Option<io_uring::squeue::Entry>,
        cx: &mut Context<'_>,
    ) -> u64 {
        self.stats.would_block();
        let mask = match interest {
            Interest::Readable => libc::POLLIN,
            Interest::Writable => libc::POLLOUT,
        };
        let sqe = opcode::PollAdd::new(types::Fd(fd), mask as u32).build();
        let key = self.slots.insert_future(cx.waker());
        match link {
            None => self.push(sqe, key),
            Some(link) => self.push_linked(sqe, key, link),
        }
        key
    }

    /// A multishot op's completion carried an error.
    #[cold]
    #[inline(never)]
    fn armed_error<T>(
        &mut self,
        state: &mut OpState<T>,
        fd: &crate::fd::SharedFd,
        res: i32,
        cx: &mut Context<'_>,
    ) -> Progress {
        match -res {
            // Every pool buffer is leased out: re-armed once one comes back.
            libc::ENOBUFS => {
                self.stats.enobufs();
                // The op's pool is one of the dry ones (a spurious wake-up
                // from the other only re-arms once more).
                let dry: Vec<_> = self
                    .pools
                    .iter()
                    .flatten()
                    .filter(|p| !p.has_free())
                    .collect();
                if dry.is_empty() {
                    return Progress::Restart;
                }
                for pool in dry {
                    pool.wait_for_free(cx.waker());
                }
                *state = OpState::Idle;
                Progress::Pending
            }
            // A socket in O_NONBLOCK mode: make it blocking and re-arm.
            libc::EAGAIN => {
                self.stats.would_block();
                set_blocking(fd.raw());
                Progress::Restart
            }
            _ => Progress::Ready(cqe_result(res), 0),
        }
    }
}
