//! A receive with a kernel-side deadline: `IORING_OP_RECV` linked to an
//! `IORING_OP_LINK_TIMEOUT`, one SQE pair and no user-space timer.
//!
//! How it works: the receive's SQE carries `IOSQE_IO_LINK` and the driver
//! submits the timeout right after it ([`OpCode::linked`]); the timeout's
//! own completion is the driver's (untracked). If the deadline passes first
//! the kernel cancels the receive, which completes with `ECANCELED`: the
//! future gives `TimedOut` and the buffer back. If data came first the
//! receive's result wins and the timeout is cancelled: nothing is lost. All
//! else is the plain [`Recv`]'s: its turn on the fd, what dropped reads
//! kept, what a receive whose future was dropped got (kept for the next).

use std::io;
use std::time::Duration;

use super::Recv;
use crate::buf::{BufResult, IoBufMut};
use crate::fd::SharedFd;
use crate::op::{OpCode, Role, Sqe, Wait, uring};

/// `IORING_OP_LINK_TIMEOUT`, for asking the driver whether the kernel has it.
pub(crate) fn link_timeout_opcode() -> u8 {
    uring!(opcode::LinkTimeout::CODE)
}

/// The error of a read whose deadline passed.
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "corio: read timed out")
}

/// A receive bounded by a linked timeout.
pub(crate) struct RecvTimeout<B> {
    recv: Recv<B>,
    /// The deadline as a `__kernel_timespec` (`tv_sec`, `tv_nsec`), boxed:
    /// the kernel reads it when the pair is submitted.
    ts: Box<[i64; 2]>,
}

impl<B: IoBufMut> RecvTimeout<B> {
    pub(crate) fn new(fd: &SharedFd, buf: B, timeout: Duration) -> RecvTimeout<B> {
        let secs = timeout.as_secs().min(i64::MAX as u64) as i64;
        RecvTimeout {
            recv: Recv::new(fd, buf, false),
            ts: Box::new([secs, i64::from(timeout.subsec_nanos())]),
        }
    }
}

// SAFETY: the receive's SQE points into its owned `IoBufMut` (as `Recv`'s);
// the linked timeout's at the boxed timespec, which the op owns and which
// stays put until its last completion, after the pair's submission.
unsafe impl<B: IoBufMut> OpCode for RecvTimeout<B> {
    type Output = BufResult<usize, B>;

    fn wait(&self) -> Wait<'_> {
        self.recv.wait()
    }

    fn role(&self) -> Option<Role<'_>> {
        self.recv.role()
    }

    fn recover(&mut self) -> Option<io::Result<u32>> {
        self.recv.recover()
    }

    fn sqe(&mut self) -> Sqe {
        self.recv.sqe()
    }

    fn linked(&mut self) -> Option<Sqe> {
        // `[i64; 2]` has the layout of `__kernel_timespec`, which
        // `types::Timespec` wraps transparently.
        let ts = self.ts.as_ptr();
        Some(uring!(
            opcode::LinkTimeout::new(ts.cast::<types::Timespec>()).build()
        ))
    }

    fn attempt(&mut self) -> io::Result<u32> {
        self.recv.attempt()
    }

    fn drained(&self, n: u32) -> bool {
        self.recv.drained(n)
    }

    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output {
        let res = match res {
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => Err(timed_out()),
            res => res,
        };
        self.recv.complete(res, flags)
    }

    fn release(&mut self, res: io::Result<u32>, flags: u32) {
        self.recv.release(res, flags)
    }
}
