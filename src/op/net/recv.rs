//! Receiving into an owned buffer: like recv(2), and like recvmsg(2) with
//! the source address and, when asked for, control messages.

use std::io;

use socket2::SockAddr;

use super::cmsg::{Control, control_buf};
use super::{AddrBuf, MsgParts};
use crate::buf::{BufResult, IoBufMut};
use crate::driver::op::syscall_result;
use crate::fd::{SharedFd, copy_into};
use crate::op::{Interest, Kind, OpCode, Role, Sqe, Wait, uring};

/// A receive of `n` bytes into room for `len` emptied its socket `fd`: a
/// short stream read (a datagram says nothing of the next one, 0 is the end,
/// and a Unix stream's read stops after bytes that carried fds). The poll
/// driver then forgets the socket's readability.
#[inline]
pub(crate) fn drained_by_read(fd: &SharedFd, datagram: bool, n: usize, len: usize) -> bool {
    !datagram && n > 0 && n < len && !fd.reads_stop_short()
}

/// Receives into a buffer (from its start, up to its capacity).
pub(crate) struct Recv<B> {
    fd: SharedFd,
    buf: B,
    /// A datagram socket: results are kept as whole datagrams.
    datagram: bool,
}

impl<B: IoBufMut> Recv<B> {
    pub(crate) fn new(fd: &SharedFd, buf: B, datagram: bool) -> Recv<B> {
        Recv {
            fd: fd.clone(),
            buf,
            datagram,
        }
    }
}

// SAFETY: the buffer's memory is stable and owned by the op (`IoBufMut`).
unsafe impl<B: IoBufMut> OpCode for Recv<B> {
    type Output = BufResult<usize, B>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Readable)
    }

    fn role(&self) -> Option<Role<'_>> {
        Some(Role {
            fd: &self.fd,
            kind: Kind::Read,
            multishot: false,
        })
    }

    fn recover(&mut self) -> Option<io::Result<u32>> {
        let mut kept = self.fd.kept();
        if self.datagram {
            let (data, _) = kept.take_datagram()?;
            return Some(Ok(copy_into(&data, &mut self.buf) as u32));
        }
        kept.take_bytes(&mut self.buf).map(|r| r.map(|n| n as u32))
    }

    #[inline]
    fn sqe(&mut self) -> Sqe {
        uring!({
            let len = self.buf.bytes_total() as u32;
            opcode::Recv::new(types::Fd(self.fd.raw()), self.buf.stable_mut_ptr(), len).build()
        })
    }

    #[inline]
    fn attempt(&mut self) -> io::Result<u32> {
        let (ptr, len) = (self.buf.stable_mut_ptr(), self.buf.bytes_total());
        // SAFETY: the buffer is owned by the op and `len` bytes long.
        let res = unsafe { libc::recv(self.fd.raw(), ptr.cast(), len, libc::MSG_DONTWAIT) };
        syscall_result(res)
    }

    fn drained(&self, n: u32) -> bool {
        drained_by_read(&self.fd, self.datagram, n as usize, self.buf.bytes_total())
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        let res = res.map(|n| {
            // SAFETY: the kernel wrote `n` bytes at the start of the buffer.
            unsafe { self.buf.set_init(n as usize) };
            n as usize
        });
        (res, self.buf)
    }

    fn release(&mut self, res: io::Result<u32>, _flags: u32) {
        let mut kept = self.fd.kept();
        match res {
            Ok(n) => {
                // SAFETY: the kernel wrote `n` bytes at the buffer's start.
                let data = unsafe { std::slice::from_raw_parts(self.buf.stable_ptr(), n as usize) };
                if self.datagram {
                    kept.stash_datagram(data.to_vec(), None);
                } else if n == 0 {
                    kept.stash_end(Ok(()));
                } else {
                    kept.stash_bytes(data);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {}
            Err(e) if !self.datagram => kept.stash_end(Err(e)),
            Err(_) => {}
        }
    }
}

/// Receives one datagram, its source and (with a control area) its control
/// messages and flags. A datagram kept for a dropped receive comes back
/// without control messages; a coalesced (GRO) one is kept as the datagrams
/// it coalesced.
pub(crate) struct RecvMsg<B> {
    fd: SharedFd,
    buf: B,
    parts: Box<MsgParts>,
    addr: Box<AddrBuf>,
}

impl<B: IoBufMut> RecvMsg<B> {
    pub(crate) fn new(fd: &SharedFd, buf: B) -> Self {
        Self::with_control(fd, buf, 0)
    }

    /// With room for `control` bytes of control messages.
    pub(crate) fn with_control(fd: &SharedFd, mut buf: B, control: usize) -> Self {
        let iov = libc::iovec {
            iov_base: buf.stable_mut_ptr().cast(),
            iov_len: buf.bytes_total(),
        };
        let mut parts = MsgParts::with_control(vec![iov], control_buf(control));
        let mut addr = AddrBuf::new();
        parts.msg.msg_name = addr.ptr().cast();
        parts.msg.msg_namelen = addr.len;
        RecvMsg {
            fd: fd.clone(),
            buf,
            parts,
            addr,
        }
    }

    /// Prepares the header for a receive.
    fn ready(&mut self) {
        self.addr.reset();
        self.parts.msg.msg_namelen = self.addr.len;
        self.parts.reattach();
    }

    /// The kernel wrote `n` bytes and the source.
    fn received(&mut self, n: u32) -> Option<SockAddr> {
        // SAFETY: the kernel wrote `n` bytes at the start of the buffer.
        unsafe { self.buf.set_init(n as usize) };
        self.addr.len = self.parts.msg.msg_namelen;
        self.addr.get()
    }
}

// SAFETY: the msghdr, its iovec and the address storage are boxed and owned
// by the op, and the iovec points into the owned buffer (`IoBufMut`).
unsafe impl<B: IoBufMut> OpCode for RecvMsg<B> {
    type Output = BufResult<(usize, Option<SockAddr>, Control), B>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Readable)
    }

    fn role(&self) -> Option<Role<'_>> {
        Some(Role {
            fd: &self.fd,
            kind: Kind::Read,
            multishot: false,
        })
    }

    fn recover(&mut self) -> Option<io::Result<u32>> {
        let (data, from) = self.fd.kept().take_datagram()?;
        let n = copy_into(&data, &mut self.buf);
        match from {
            Some(from) => self.addr.set(&from),
            None => self.addr.clear(),
        }
        self.parts.msg.msg_namelen = self.addr.len;
        self.parts.msg.msg_controllen = 0;
        self.parts.msg.msg_flags = 0;
        Some(Ok(n as u32))
    }

    fn sqe(&mut self) -> Sqe {
        self.ready();
        uring!(opcode::RecvMsg::new(types::Fd(self.fd.raw()), &mut self.parts.msg).build())
    }

    fn attempt(&mut self) -> io::Result<u32> {
        self.ready();
        // SAFETY: the header and everything it points at are owned by the op.
        let res = unsafe { libc::recvmsg(self.fd.raw(), &mut self.parts.msg, libc::MSG_DONTWAIT) };
        syscall_result(res)
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        let res = res.map(|n| {
            let from = self.received(n);
            (n as usize, from, self.parts.take_control())
        });
        (res, self.buf)
    }

    fn release(&mut self, res: io::Result<u32>, _flags: u32) {
        if let Ok(n) = res {
            let from = self.received(n);
            // SAFETY: `n` bytes at the buffer's start are initialised.
            let data = unsafe { std::slice::from_raw_parts(self.buf.stable_ptr(), n as usize) };
            let segment = self.parts.take_control().gro_segment();
            self.fd.kept().stash_datagrams(data, from, segment);
        }
    }
}
