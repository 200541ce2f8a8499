//! An op's life, the same on every backend: start, recover, wait, finish or
//! be released.
//!
//! How it works: before a backend sees an op, this is the one place where
//! cancel recovery happens. A read waits while an earlier read on its fd is
//! in the kernel (bytes never overtake each other); a read or accept then
//! takes what dropped ops kept on the fd (`OpCode::recover`) instead of
//! asking the kernel. Results that arrive without waiting (kept data, a
//! queued multishot completion, a syscall that succeeds at once) each take
//! one unit of the task's budget; when it is spent the op yields first, so a
//! task whose I/O keeps completing at once cannot starve the others. A
//! backend may ask to start over (`Progress::Restart`), say after a plain
//! read took down a multishot receive.
//!
//! An op that may finish at once without any backend (`OpCode::TRY_NOW`: a
//! positional file read the page cache holds, `op/fs/cached.rs`) tries that
//! before anything else on its first poll, when `try_now_pays` says a
//! syscall beats sharing the next submission; its result takes a unit of
//! the budget like any other that did not wait.
//!
//! The common shapes are answered first, inline where the op is polled: on
//! io_uring `Ring::poll_fast` (a completion taken, a plain op started, a
//! pooled receive served by its armed receive), on the poll driver an op
//! with no role or a plain read trying its syscall. They make the same
//! checks in the same order and leave every other case (kept data, arming,
//! a spent budget, ...) to the general path, which is out of line (a copy
//! per backend): with all of it inline, each op's poll paid for the
//! register pressure of shapes it rarely takes.
//!
//! Dropping the future calls [`release_op`]: an op still in the kernel (or on
//! the blocking pool) goes to the release queue with its value, so nothing
//! the kernel may touch is freed, and the driver finishes it later.

use std::cell::Cell;
use std::io;
use std::rc::Weak;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::blocking::{self, Job};
use super::op::{Kind, OpCode, op_data};
use super::{Backend, Driver};
use crate::release::{self, Release, Released};

/// Where an op is in its life; the future holds it, the driver reads it.
pub(crate) enum OpState<T> {
    /// Not started (or starting over).
    Idle,
    /// Single-shot, in the ring's slot with this key.
    Ring(u64),
    /// As `Ring`, and cancelled by the driver (an accept that will take a
    /// kept connection once its own op has come back).
    RingCancel(u64),
    /// A readiness poll in the ring before the op is retried (a socket in
    /// `O_NONBLOCK` mode said `EAGAIN`).
    RingPoll(u64),
    /// Submit again after the readiness poll (transient).
    Retry,
    /// Taking completions from the multishot op armed in this slot.
    Armed(u64),
    /// The syscall runs on the blocking pool; the op value is in the job.
    Blocking(Arc<Job<T>>),
    /// Finished.
    Done,
}

/// What a backend made of a poll.
pub(crate) enum Progress {
    /// The op's final result and completion flags.
    Ready(io::Result<u32>, u32),
    Pending,
    /// Go back to `Idle` and start over.
    Restart,
}

/// The most other ops a read may expect to share its submission with and
/// still try the page cache first ([`Driver::try_now_pays`]). Random 4 KiB
/// reads of a cached file on io_uring (`examples/file_random_read.rs`, two
/// runs each, a syscall per read against the ring): alone, the syscalls
/// are 1.35× faster; with one other reader 1.10–1.15×; with two or three
/// about even; with seven or 31 the ring is faster by 2–15 %.
const MAX_SHARERS: usize = 1;

/// True when the task may take one more result that arrived without waiting.
#[inline]
fn budget_left(budget: &Cell<u32>) -> bool {
    budget.get() > 0
}

#[inline]
fn charge(budget: &Cell<u32>) {
    budget.set(budget.get().saturating_sub(1));
}

impl Driver {
    /// Polls the op `data` in `state`: its final result and flags, once
    /// there. `budget` is the polling task's; `queued`: how many other
    /// tasks are queued to run (counted for [`OpCode::TRY_NOW`] ops only).
    #[inline]
    pub(crate) fn poll_op<T: OpCode>(
        &mut self,
        state: &mut OpState<T>,
        data: &mut Option<T>,
        cx: &mut Context<'_>,
        budget: &Cell<u32>,
        queued: usize,
    ) -> Poll<(io::Result<u32>, u32)> {
        // [reliability] A forked child must not touch the parent's ring.
        self.check_fork();
        // A read the page cache answers at once never reaches a backend
        // (`op/fs/cached.rs`); `TRY_NOW` is a constant, false for every
        // other op.
        if T::TRY_NOW
            && matches!(state, OpState::Idle)
            && self.try_now_pays(queued)
            && self.cached_reads
            && budget_left(budget)
            && let Some(n) = op_data(data).try_now()
        {
            self.stats.cached_read();
            charge(budget);
            *state = OpState::Done;
            return Poll::Ready((Ok(n), 0));
        }
        // The hot shapes first (on io_uring `Ring::poll_fast`: a completion
        // taken, a plain op started, a pooled receive; on the poll driver a
        // plain op tried), small enough to compile tight where the op is
        // polled; the rest out of line. The fast paths answer as the
        // general one would, checking the same things in the same order.
        let first = matches!(state, OpState::Idle);
        match &mut self.backend {
            #[cfg(corio_uring)]
            Backend::Uring(d) => match d.poll_fast(state, data, cx, budget_left(budget)) {
                Some(Progress::Ready(res, flags)) => {
                    if first {
                        charge(budget);
                    }
                    *state = OpState::Done;
                    Poll::Ready((res, flags))
                }
                Some(Progress::Pending) => Poll::Pending,
                Some(Progress::Restart) => {
                    *state = OpState::Idle;
                    self.poll_op_slow::<T, true>(state, data, cx, budget, first)
                }
                None => self.poll_op_slow::<T, true>(state, data, cx, budget, first),
            },
            // The poll driver's common shape: an op with no role, or a plain
            // read with nothing kept, that may take a result now (it tries
            // its syscall or waits for readiness at once).
            Backend::Poll(_) => {
                let fast = first
                    && budget_left(budget)
                    && match op_data(data).role() {
                        None => true,
                        Some(r) if r.kind == Kind::Read && !r.multishot => {
                            if r.fd.wait_read(cx.waker()) {
                                return Poll::Pending;
                            }
                            !r.fd.has_kept()
                        }
                        Some(_) => false,
                    };
                if !fast {
                    return self.poll_op_slow::<T, false>(state, data, cx, budget, first);
                }
                let progress = match &mut self.backend {
                    Backend::Poll(d) => {
                        d.poll_op(state, data, cx, &self.blocking, self.pool.as_ref())
                    }
                    #[cfg(corio_uring)]
                    Backend::Uring(_) => unreachable!("corio: the backend changed"),
                };
                match progress {
                    Progress::Ready(res, flags) => {
                        charge(budget);
                        *state = OpState::Done;
                        Poll::Ready((res, flags))
                    }
                    Progress::Pending => Poll::Pending,
                    Progress::Restart => {
                        *state = OpState::Idle;
                        self.poll_op_slow::<T, false>(state, data, cx, budget, first)
                    }
                }
            }
        }
    }

    /// Whether an op that may finish at once ([`OpCode::try_now`]) should
    /// try. On io_uring only when its submission would be shared by at most
    /// [`MAX_SHARERS`] other ops (the `queued` tasks' and the SQEs waiting
    /// for the next `io_uring_enter`): one enter for many reads costs the
    /// kernel less than a syscall each. On the poll driver always (its
    /// other way is a trip to the blocking pool).
    #[inline]
    fn try_now_pays(&mut self, queued: usize) -> bool {
        // (Only io_uring reads `queued`.)
        let _ = queued;
        match &mut self.backend {
            #[cfg(corio_uring)]
            // The queue first (no ring access), then the SQ with what is left.
            Backend::Uring(d) => queued <= MAX_SHARERS && d.sq_len() <= MAX_SHARERS - queued,
            Backend::Poll(_) => true,
        }
    }

    /// [`poll_op`](Self::poll_op) for every shape (after the fork check), out
    /// of line; `first`: the poll found the op `Idle` (it may have started
    /// over since, in the fast path). `URING` says which backend this
    /// driver has (a constant, so each backend's copy holds its own code
    /// only).
    #[inline(never)]
    fn poll_op_slow<T: OpCode, const URING: bool>(
        &mut self,
        state: &mut OpState<T>,
        data: &mut Option<T>,
        cx: &mut Context<'_>,
        budget: &Cell<u32>,
        first: bool,
    ) -> Poll<(io::Result<u32>, u32)> {
        if first && !budget_left(budget) {
            // Spent: yield before taking anything, so a future dropped
            // meanwhile has taken nothing.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        loop {
            if let OpState::Idle = state {
                let op = op_data(data);
                if let Some(role) = op.role() {
                    if role.kind == Kind::Read && role.fd.wait_read(cx.waker()) {
                        return Poll::Pending;
                    }
                    if role.fd.has_kept()
                        && let Some(res) = op.recover()
                    {
                        *state = OpState::Done;
                        charge(budget);
                        return Poll::Ready((res, 0));
                    }
                }
            }
            let progress = match &mut self.backend {
                #[cfg(corio_uring)]
                Backend::Uring(d) if URING => d.poll_op(state, data, cx, &self.blocking),
                Backend::Poll(d) if !URING => {
                    d.poll_op(state, data, cx, &self.blocking, self.pool.as_ref())
                }
                _ => unreachable!("corio: an op polled for another backend"),
            };
            match progress {
                Progress::Ready(res, flags) => {
                    if first {
                        charge(budget);
                    }
                    *state = OpState::Done;
                    return Poll::Ready((res, flags));
                }
                Progress::Pending => return Poll::Pending,
                Progress::Restart => *state = OpState::Idle,
            }
        }
    }
}

impl Driver {
    /// Asks the kernel to cancel the op in `state` if it waits in the ring,
    /// or the readiness poll it waits on (its future keeps waiting for the
    /// result); otherwise does nothing.
    pub(crate) fn cancel_op<T>(&mut self, state: &OpState<T>) {
        match (state, &mut self.backend) {
            #[cfg(corio_uring)]
            // A readiness wait cancelled ends the op with ECANCELED too.
            (OpState::Ring(key) | OpState::RingPoll(key), Backend::Uring(d)) => d.cancel(*key),
            _ => {}
        }
    }
}

/// The future of an op in `state` went away (`data` is its value, if the
/// future still had it): whatever the kernel may still touch goes to the
/// release queue of the driver `owner`, to be finished there.
pub(crate) fn release_op<T: OpCode>(owner: &Weak<()>, state: OpState<T>, data: Option<T>) {
    match state {
        OpState::Idle | OpState::Done | OpState::Retry | OpState::Armed(_) => {}
        OpState::Ring(key) | OpState::RingCancel(key) => {
            let op = data.map(|d| Box::new(d) as Box<dyn Released>);
            release::push(owner, Release::Op { key, op });
        }
        OpState::RingPoll(key) => {
            // A readiness poll holds nothing; the read it waited for gives
            // its turn back now.
            if let Some(role) = data.as_ref().and_then(|d| d.role())
                && role.kind == Kind::Read
            {
                role.fd.end_read();
            }
            release::push(owner, Release::Op { key, op: None });
        }
        OpState::Blocking(job) => blocking::abandon(owner, job),
    }
}
