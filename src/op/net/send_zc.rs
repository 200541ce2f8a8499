//! Zero-copy send: like send(2) with `MSG_ZEROCOPY`, on `IORING_OP_SEND_ZC`.
//!
//! How it works: the kernel posts two completions. The first (with
//! `IORING_CQE_F_MORE`) carries the send's result; the second (with
//! `IORING_CQE_F_NOTIF`) says the kernel no longer reads the buffer. The op
//! records the first in `on_cqe` and ends with the second, so its buffer
//! goes back to the caller (or, once the future is gone, is freed by the
//! driver) only after the notification. Where the kernel lacks SEND_ZC (or
//! it is turned off) the op downgrades itself to a plain `IORING_OP_SEND`;
//! the poll driver runs the plain non-blocking send(2).

use std::io;

use crate::buf::{BufResult, IoBuf};
use crate::driver::op::{CQE_F_NOTIF, syscall_result};
use crate::fd::SharedFd;
use crate::op::{Interest, OpCode, Sqe, Wait, uring};

/// Sends a buffer's initialised bytes without copying them (where it can).
pub(crate) struct SendZc<B> {
    fd: SharedFd,
    buf: B,
    /// Still zero-copy (not downgraded to a plain send).
    zc: bool,
    /// The send's result, from the completion before the notification.
    res: i32,
}

impl<B: IoBuf> SendZc<B> {
    pub(crate) fn new(fd: &SharedFd, buf: B) -> SendZc<B> {
        SendZc {
            fd: fd.clone(),
            buf,
            zc: true,
            res: 0,
        }
    }
}

// SAFETY: the buffer's memory is stable and owned by the op (`IoBuf`); the
// op ends only with the notification, after which the kernel no longer
// reads it.
unsafe impl<B: IoBuf> OpCode for SendZc<B> {
    type Output = BufResult<usize, B>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Writable)
    }

    fn optional_opcode(&self) -> Option<u8> {
        Some(uring!(opcode::SendZc::CODE))
    }

    fn downgrade(&mut self) -> bool {
        self.zc = false;
        true
    }

    fn sqe(&mut self) -> Sqe {
        uring!({
            let (fd, ptr) = (types::Fd(self.fd.raw()), self.buf.stable_ptr());
            let len = self.buf.bytes_init().min(u32::MAX as usize) as u32;
            if self.zc {
                opcode::SendZc::new(fd, ptr, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
            } else {
                opcode::Send::new(fd, ptr, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
            }
        })
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (ptr, len) = (self.buf.stable_ptr(), self.buf.bytes_init());
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the buffer is owned by the op and has `len` initialised bytes.
        let res = unsafe { libc::send(self.fd.raw(), ptr.cast(), len, flags) };
        syscall_result(res)
    }

    fn drained(&self, n: u32) -> bool {
        (n as usize) < self.buf.bytes_init()
    }

    fn on_cqe(&mut self, res: i32, flags: u32) -> crate::driver::op::Step {
        if flags & CQE_F_NOTIF == 0 {
            self.res = res;
        }
        crate::driver::op::Step::from_flags(flags)
    }

    fn final_res(&self, _last: i32) -> i32 {
        // `on_cqe` saw every completion: after a notification this is the
        // send's own result, otherwise the last completion's.
        self.res
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        (res.map(|n| n as usize), self.buf)
    }
}
