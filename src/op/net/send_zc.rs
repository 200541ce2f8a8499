//! Zero-copy send: like send(2) / sendto(2) with `MSG_ZEROCOPY`, on
//! `IORING_OP_SEND_ZC`.
//!
//! How it works: the kernel posts two completions. The first (with
//! `IORING_CQE_F_MORE`) carries the send's result; the second (with
//! `IORING_CQE_F_NOTIF`) says the kernel no longer reads the buffer. The op
//! records the first in `on_cqe` and ends with the second, so its buffer
//! goes back to the caller (or, once the future is gone, is freed by the
//! driver) only after the notification. Where the kernel lacks SEND_ZC (or
//! it is turned off) the op downgrades itself to a plain `IORING_OP_SEND`;
//! the poll driver runs the plain non-blocking send(2). A send from a
//! registered (fixed) buffer names its index (`IORING_RECVSEND_FIXED_BUF`),
//! sparing the kernel the page pinning per send; only SEND_ZC takes one on
//! sockets (a plain SEND with it is `EINVAL` on TCP and UDP as of 6.18),
//! so a downgraded op sends the same bytes without it.

use std::io;

use socket2::SockAddr;

use crate::buf::{BufResult, IoBuf};
use crate::driver::op::{CQE_F_NOTIF, syscall_result};
use crate::fd::SharedFd;
use crate::op::{Interest, OpCode, Sqe, Wait, uring};

/// `IORING_OP_SEND_ZC`, for asking the driver whether the kernel has it.
pub(crate) fn send_zc_opcode() -> u8 {
    uring!(opcode::SendZc::CODE)
}

/// Sends a buffer's initialised bytes without copying them (where it can),
/// to the connected peer or to an address.
pub(crate) struct SendZc<B> {
    fd: SharedFd,
    buf: B,
    /// Still zero-copy (not downgraded to a plain send).
    zc: bool,
    /// The send's result, from the completion before the notification.
    res: i32,
    /// The destination, for a datagram socket (boxed: the kernel reads it).
    addr: Option<Box<SockAddr>>,
    /// The index of the registered buffer `buf` lies in.
    fixed: Option<u16>,
}

impl<B: IoBuf> SendZc<B> {
    pub(crate) fn new(fd: &SharedFd, buf: B) -> SendZc<B> {
        SendZc {
            fd: fd.clone(),
            buf,
            zc: true,
            res: 0,
            addr: None,
            fixed: None,
        }
    }

    /// A send from memory inside the ring's registered buffer `index`
    /// (`None`: not registered with this runtime's ring, a plain zero-copy
    /// send).
    pub(crate) fn fixed(fd: &SharedFd, buf: B, index: Option<u16>) -> SendZc<B> {
        SendZc {
            fixed: index,
            ..SendZc::new(fd, buf)
        }
    }

    /// A send to `addr` (a datagram socket's `send_to`).
    pub(crate) fn to(fd: &SharedFd, buf: B, addr: SockAddr) -> SendZc<B> {
        SendZc {
            addr: Some(Box::new(addr)),
            ..SendZc::new(fd, buf)
        }
    }
}

// SAFETY: the buffer's memory is stable and owned by the op (`IoBuf`), the
// destination address is boxed and owned by the op; the op ends only with
// the notification, after which the kernel no longer reads them. A fixed
// index names the registration the buffer's memory lies in (its owner made
// sure of that, and the registration lives while the buffer does).
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
            let (dest, dest_len) = match &self.addr {
                Some(a) => (a.as_ptr().cast::<libc::sockaddr>(), a.len()),
                None => (std::ptr::null(), 0),
            };
            if self.zc {
                opcode::SendZc::new(fd, ptr, len)
                    .buf_index(self.fixed)
                    .flags(libc::MSG_NOSIGNAL)
                    .dest_addr(dest)
                    .dest_addr_len(dest_len)
                    .build()
            } else {
                opcode::Send::new(fd, ptr, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .dest_addr(dest)
                    .dest_addr_len(dest_len)
                    .build()
            }
        })
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (ptr, len) = (self.buf.stable_ptr(), self.buf.bytes_init());
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let (dest, dest_len) = match &self.addr {
            Some(a) => (a.as_ptr().cast::<libc::sockaddr>(), a.len()),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: the buffer is owned by the op and has `len` initialised
        // bytes; the address (if any) is boxed and owned by the op.
        let res = unsafe { libc::sendto(self.fd.raw(), ptr.cast(), len, flags, dest, dest_len) };
        syscall_result(res)
    }

    fn drained(&self, n: u32) -> bool {
        // A short stream send filled the socket's buffer.
        self.addr.is_none() && (n as usize) < self.buf.bytes_init()
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
