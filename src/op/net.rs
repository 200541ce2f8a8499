//! Socket operations: accept, connect, recv, send, sendmsg, recvmsg, shutdown.
//!
//! How it works: each op owns its socket (`SharedFd`, so the fd outlives the
//! op), its buffers, and any kernel-visible structure (`msghdr`, iovecs,
//! socket addresses) in a `Box`, so those addresses are stable while the op
//! value moves between its future and the driver. Read-side ops carry a
//! `ReadGuard` and, when abandoned, leave what they received on the socket
//! for the next read; an abandoned accept leaves its connection for the next
//! accept.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

#[cfg(corio_uring)]
use io_uring::{opcode, squeue, types};
use socket2::{SockAddr, SockAddrStorage};

use super::{Interest, OpCode, syscall_result};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::net::fd::{ReadGuard, SharedFd};

/// Storage the kernel writes a peer address into.
pub(crate) struct AddrBuf {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl AddrBuf {
    pub(crate) fn new() -> Box<AddrBuf> {
        // SAFETY: sockaddr_storage is plain data; all-zero is valid.
        let storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        Box::new(AddrBuf { storage, len })
    }

    fn reset(&mut self) {
        self.len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    }

    fn ptr(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }

    /// The address the kernel wrote, if it is an IP one.
    pub(crate) fn to_socket_addr(&self) -> Option<SocketAddr> {
        let mut storage = SockAddrStorage::zeroed();
        let len = self.len.min(storage.size_of());
        // SAFETY: `SockAddrStorage` is a transparent wrapper of
        // sockaddr_storage, so both are the same size; we copy `len` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&self.storage as *const libc::sockaddr_storage).cast::<u8>(),
                (&mut storage as *mut SockAddrStorage).cast::<u8>(),
                len as usize,
            )
        };
        // SAFETY: the kernel initialised `len` bytes (the rest is zero).
        unsafe { SockAddr::new(storage, len) }.as_socket()
    }
}

#[cfg(corio_uring)]
fn fd(f: &SharedFd) -> types::Fd {
    types::Fd(f.raw())
}

fn would_block() -> io::Error {
    io::Error::from(io::ErrorKind::WouldBlock)
}

/// Accepts a connection, like accept4(2) with `SOCK_CLOEXEC`.
pub(crate) struct Accept {
    pub(crate) fd: SharedFd,
    pub(crate) addr: Box<AddrBuf>,
}

// SAFETY: the address storage is boxed and owned by the op.
unsafe impl OpCode for Accept {
    type Output = io::Result<(OwnedFd, Option<SocketAddr>)>;

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> squeue::Entry {
        let addr = self.addr.ptr();
        opcode::Accept::new(fd(&self.fd), addr, &mut self.addr.len)
            .flags(libc::SOCK_CLOEXEC)
            .build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        Some((self.fd.raw(), Interest::Readable))
    }

    fn attempt(&mut self) -> io::Result<u32> {
        self.addr.reset();
        let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        let addr = self.addr.ptr();
        // SAFETY: the address storage and its length are owned by the op.
        let res = unsafe { libc::accept4(self.fd.raw(), addr, &mut self.addr.len, flags) };
        syscall_result(res as libc::ssize_t)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        // SAFETY: a successful accept returns a new fd that we now own.
        let conn = unsafe { OwnedFd::from_raw_fd(res? as i32) };
        Ok((conn, self.addr.to_socket_addr()))
    }

    fn abandoned(self, res: io::Result<u32>, _flags: u32) {
        if let Ok(raw) = res {
            // SAFETY: as above; the listener keeps it for the next accept,
            // and closes it if the listener itself is gone.
            self.fd
                .stash_accepted(unsafe { OwnedFd::from_raw_fd(raw as i32) });
        }
    }
}

/// Connects a socket, like connect(2).
pub(crate) struct Connect {
    fd: SharedFd,
    addr: Box<SockAddr>,
    /// The poll driver's connect(2) was issued; now waiting for its outcome.
    started: bool,
}

impl Connect {
    pub(crate) fn new(fd: SharedFd, addr: SocketAddr) -> Connect {
        Connect {
            fd,
            addr: Box::new(addr.into()),
            started: false,
        }
    }
}

// SAFETY: the address is boxed and owned by the op.
unsafe impl OpCode for Connect {
    type Output = io::Result<()>;

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> squeue::Entry {
        opcode::Connect::new(fd(&self.fd), self.addr.as_ptr().cast(), self.addr.len()).build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        Some((self.fd.raw(), Interest::Writable))
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let sock = socket2::SockRef::from(&self.fd);
        if !self.started {
            self.started = true;
            return match sock.connect(&self.addr) {
                Ok(()) => Ok(0),
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Err(would_block()),
                Err(e) => Err(e),
            };
        }
        // Writable: the connection finished, one way or the other.
        if let Some(e) = sock.take_error()? {
            return Err(e);
        }
        match sock.peer_addr() {
            Ok(_) => Ok(0),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Err(would_block()),
            Err(e) => Err(e),
        }
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}

/// Receives into a buffer, like recv(2).
pub(crate) struct Recv<B> {
    pub(crate) guard: ReadGuard,
    pub(crate) buf: B,
    /// A datagram socket: an abandoned result is kept as one datagram.
    #[cfg_attr(not(corio_uring), allow(dead_code))]
    pub(crate) datagram: bool,
}

// SAFETY: the buffer's memory is stable and owned by the op (`IoBufMut`).
unsafe impl<B: IoBufMut> OpCode for Recv<B> {
    type Output = BufResult<usize, B>;

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> squeue::Entry {
        let len = self.buf.bytes_total() as u32;
        opcode::Recv::new(fd(self.guard.fd()), self.buf.stable_mut_ptr(), len).build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        Some((self.guard.fd().raw(), Interest::Readable))
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let (ptr, len) = (self.buf.stable_mut_ptr(), self.buf.bytes_total());
        // SAFETY: the buffer is owned by the op and `len` bytes long.
        let res = unsafe { libc::recv(self.guard.fd().raw(), ptr.cast(), len, libc::MSG_DONTWAIT) };
        syscall_result(res)
    }

    fn drained(&self, n: u32) -> bool {
        super::drained_by_read(self.datagram, n as usize, self.buf.bytes_total())
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        let res = res.map(|n| {
            // SAFETY: the kernel wrote `n` bytes at the start of the buffer.
            unsafe { self.buf.set_init(n as usize) };
            n as usize
        });
        (res, self.buf)
    }

    fn abandoned(mut self, res: io::Result<u32>, _flags: u32) {
        let fd = self.guard.fd();
        match res {
            Ok(n) => {
                // SAFETY: as in `complete`.
                unsafe { self.buf.set_init(n as usize) };
                // SAFETY: `n` bytes at the buffer's start are initialised.
                let data = unsafe { std::slice::from_raw_parts(self.buf.stable_ptr(), n as usize) };
                if self.datagram {
                    fd.stash_datagram(data.to_vec(), None);
                } else if n == 0 {
                    fd.stash_read_end(Ok(()));
                } else {
                    fd.stash_bytes(data);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {}
            Err(e) if !self.datagram => fd.stash_read_end(Err(e)),
            Err(_) => {}
        }
    }
}

/// Sends a buffer, like send(2) with `MSG_NOSIGNAL`.
pub(crate) struct Send<B> {
    pub(crate) fd: SharedFd,
    pub(crate) buf: B,
}

// SAFETY: the buffer's memory is stable and owned by the op (`IoBuf`).
unsafe impl<B: IoBuf> OpCode for Send<B> {
    type Output = BufResult<usize, B>;

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> squeue::Entry {
        let len = self.buf.bytes_init() as u32;
        opcode::Send::new(fd(&self.fd), self.buf.stable_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        Some((self.fd.raw(), Interest::Writable))
    }

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

/// The boxed `msghdr` of a sendmsg/recvmsg and what it points at.
struct MsgParts {
    msg: libc::msghdr,
    iovecs: Vec<libc::iovec>,
}

impl MsgParts {
    fn new(iovecs: Vec<libc::iovec>) -> Box<MsgParts> {
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let msg: libc::msghdr = unsafe { std::mem::zeroed() };
        let mut parts = Box::new(MsgParts { msg, iovecs });
        parts.msg.msg_iov = parts.iovecs.as_mut_ptr();
        parts.msg.msg_iovlen = parts.iovecs.len() as _;
        parts
    }
}

/// Sends several buffers (and optionally a destination), like sendmsg(2)
/// with `MSG_NOSIGNAL`.
pub(crate) struct SendMsg<B> {
    fd: SharedFd,
    bufs: Vec<B>,
    parts: Box<MsgParts>,
    /// The destination `parts.msg` points at; kept alive for the kernel.
    _addr: Option<Box<SockAddr>>,
}

impl<B: IoBuf> SendMsg<B> {
    pub(crate) fn new(fd: SharedFd, bufs: Vec<B>, addr: Option<SocketAddr>) -> Self {
        let iovecs = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.stable_ptr() as *mut _,
                iov_len: b.bytes_init(),
            })
            .collect();
        let mut parts = MsgParts::new(iovecs);
        let addr = addr.map(|a| Box::new(SockAddr::from(a)));
        if let Some(a) = &addr {
            parts.msg.msg_name = a.as_ptr() as *mut _;
            parts.msg.msg_namelen = a.len();
        }
        SendMsg {
            fd,
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

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> squeue::Entry {
        opcode::SendMsg::new(fd(&self.fd), &self.parts.msg)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        Some((self.fd.raw(), Interest::Writable))
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

/// Receives one datagram and its source, like recvmsg(2).
pub(crate) struct RecvMsg<B> {
    guard: ReadGuard,
    buf: B,
    parts: Box<MsgParts>,
    addr: Box<AddrBuf>,
}

impl<B: IoBufMut> RecvMsg<B> {
    pub(crate) fn new(guard: ReadGuard, mut buf: B) -> Self {
        let iov = libc::iovec {
            iov_base: buf.stable_mut_ptr().cast(),
            iov_len: buf.bytes_total(),
        };
        let mut parts = MsgParts::new(vec![iov]);
        let mut addr = AddrBuf::new();
        parts.msg.msg_name = addr.ptr().cast();
        parts.msg.msg_namelen = addr.len;
        RecvMsg {
            guard,
            buf,
            parts,
            addr,
        }
    }

    fn finish(&mut self, n: u32) -> Option<SocketAddr> {
        // SAFETY: the kernel wrote `n` bytes at the start of the buffer.
        unsafe { self.buf.set_init(n as usize) };
        let full = self.addr.len;
        self.addr.len = self.parts.msg.msg_namelen;
        let from = self.addr.to_socket_addr();
        self.addr.len = full;
        from
    }
}

// SAFETY: as for `SendMsg`; the source address storage is boxed too.
unsafe impl<B: IoBufMut> OpCode for RecvMsg<B> {
    type Output = BufResult<(usize, SocketAddr), B>;

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> squeue::Entry {
        self.parts.msg.msg_namelen = self.addr.len;
        opcode::RecvMsg::new(fd(self.guard.fd()), &mut self.parts.msg).build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        Some((self.guard.fd().raw(), Interest::Readable))
    }

    fn attempt(&mut self) -> io::Result<u32> {
        self.parts.msg.msg_namelen = self.addr.len;
        // SAFETY: the header and everything it points at are owned by the op.
        let res = unsafe {
            libc::recvmsg(
                self.guard.fd().raw(),
                &mut self.parts.msg,
                libc::MSG_DONTWAIT,
            )
        };
        syscall_result(res)
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        let res = res.and_then(|n| {
            let from = self.finish(n).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, "datagram without an IP source")
            })?;
            Ok((n as usize, from))
        });
        (res, self.buf)
    }

    fn abandoned(mut self, res: io::Result<u32>, _flags: u32) {
        if let Ok(n) = res {
            let from = self.finish(n);
            // SAFETY: `n` bytes at the buffer's start are initialised.
            let data = unsafe { std::slice::from_raw_parts(self.buf.stable_ptr(), n as usize) };
            self.guard.fd().stash_datagram(data.to_vec(), from);
        }
    }
}

/// Shuts down one or both directions, like shutdown(2).
pub(crate) struct Shutdown {
    pub(crate) fd: SharedFd,
    pub(crate) how: std::net::Shutdown,
}

impl Shutdown {
    fn how_raw(&self) -> i32 {
        match self.how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        }
    }
}

// SAFETY: names no memory.
unsafe impl OpCode for Shutdown {
    type Output = io::Result<()>;

    #[cfg(corio_uring)]
    fn sqe(&mut self) -> squeue::Entry {
        opcode::Shutdown::new(fd(&self.fd), self.how_raw()).build()
    }

    fn readiness(&self) -> Option<(RawFd, Interest)> {
        None
    }

    fn attempt(&mut self) -> io::Result<u32> {
        // SAFETY: shutdown(2) on a socket the op keeps open.
        let res = unsafe { libc::shutdown(self.fd.raw(), self.how_raw()) };
        syscall_result(res as libc::ssize_t)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
