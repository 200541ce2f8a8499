//! Sending from an owned buffer: like send(2), and like sendmsg(2) for
//! several buffers, a destination or control messages, both with
//! `MSG_NOSIGNAL`.

use std::io;

use socket2::SockAddr;

use super::MsgParts;
use crate::buf::{BufResult, IoBuf};
use crate::driver::op::syscall_result;
use crate::fd::SharedFd;
use crate::op::{Interest, OpCode, Sqe, Wait, uring};

/// Sends a buffer's initialised bytes.
pub(crate) struct Send<B> {
    fd: SharedFd,
    buf: B,
}

impl<B: IoBuf> Send<B> {
    pub(crate) fn new(fd: &SharedFd, buf: B) -> Send<B> {
        Send {
            fd: fd.clone(),
            buf,
        }
    }
}

// SAFETY: the buffer's memory is stable and owned by the op (`IoBuf`).
unsafe impl<B: IoBuf> OpCode for Send<B> {
    type Output = BufResult<usize, B>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Writable)
    }

    #[inline]
    fn sqe(&mut self) -> Sqe {
        uring!({
            let len = self.buf.bytes_init() as u32;
            opcode::Send::new(types::Fd(self.fd.raw()), self.buf.stable_ptr(), len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        })
    }

    #[inline]
    fn attempt(&mut self) -> io::Result<u32> {
        let (ptr, len) = (self.buf.stable_ptr(), self.buf.bytes_init());
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the buffer is owned by the op and has `len` initialised bytes.
        let res = unsafe { libc::send(self.fd.raw(), ptr.cast(), len, flags) };
        syscall_result(res)
    }

    fn drained(&self, n: u32) -> bool {
        // A short send filled the socket's send buffer.
        (n as usize) < self.buf.bytes_init()
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        (res.map(|n| n as usize), self.buf)
    }
}

/// Sends several buffers, and optionally a destination.
pub(crate) struct SendMsg<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    parts: Box<MsgParts>,
    /// The destination `parts.msg` points at; kept alive for the kernel.
    _addr: Option<Box<SockAddr>>,
}

impl<B: IoBuf> SendMsg<B> {
    pub(crate) fn new(fd: &SharedFd, bufs: Vec<B>, addr: Option<SockAddr>) -> Self {
        Self::with_control(fd, bufs, addr, Box::default())
    }

    /// With control messages laid out by `cmsg::encode`.
    pub(crate) fn with_control(
        fd: &SharedFd,
        bufs: Vec<B>,
        addr: Option<SockAddr>,
        control: Box<[usize]>,
    ) -> Self {
        let iovecs = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr() as *mut _,
                iov_len: b.bytes_init(),
            })
            .collect();
        let mut parts = MsgParts::with_control(iovecs, control);
        let addr = addr.map(Box::new);
        if let Some(a) = &addr {
            parts.msg.msg_name = a.as_ptr() as *mut _;
            parts.msg.msg_namelen = a.len();
        }
        SendMsg {
            fd: fd.clone(),
            bufs,
            parts,
            _addr: addr,
        }
    }
}

// SAFETY: the msghdr, iovec array and address are boxed (or in a Vec's heap
// buffer) and owned by the op, and the iovecs point into owned `IoBuf`s.
unsafe impl<B: IoBuf> OpCode for SendMsg<B> {
    type Output = BufResult<usize, Vec<B>>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Writable)
    }

    fn sqe(&mut self) -> Sqe {
        uring!(
            opcode::SendMsg::new(types::Fd(self.fd.raw()), &self.parts.msg)
                .flags(libc::MSG_NOSIGNAL as u32)
                .build()
        )
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: the header and everything it points at are owned by the op.
        let res = unsafe { libc::sendmsg(self.fd.raw(), &self.parts.msg, flags) };
        syscall_result(res)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        (res.map(|n| n as usize), self.bufs)
    }
}
