//! Passing fds over Unix sockets: sendmsg(2) and recvmsg(2) with an
//! `SCM_RIGHTS` control message.
//!
//! How it works: each op boxes its `msghdr` (`MsgParts`) and a control
//! buffer aligned for `cmsghdr`, so the kernel sees stable addresses while
//! the op value moves between its future and the driver. A send holds its
//! own copies of the fds it passes (the caller duplicates them) until its
//! last completion, so the caller may close its own at once, even if the
//! future is dropped while the kernel still has the op. A receive asks for
//! `MSG_CMSG_CLOEXEC` and turns each fd in the control data into an
//! `OwnedFd`. A receive is a read like any other (its fd's reads are
//! serialised and it takes what dropped reads kept first, bytes or
//! datagrams without fds); when its future is gone, its bytes are kept on
//! the socket for the next read and the fds it got are closed, so none
//! leaks. When the control data was truncated (`MSG_CTRUNC`: more fds than
//! asked for, or the process is out of fds) the fds that did arrive are
//! closed, the bytes are kept for the next read, and the receive fails.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::MsgParts;
use super::cmsg;
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::driver::op::syscall_result;
use crate::fd::{SharedFd, copy_into};
use crate::op::{Interest, Kind, OpCode, Role, Sqe, Wait, uring};

/// Most fds one message may carry (the kernel's `SCM_MAX_FD`).
pub(crate) const MAX_FDS: usize = 253;

const FD_SIZE: usize = std::mem::size_of::<RawFd>();

/// A control area with room for `fds` fds (none for 0).
fn control_buf(fds: usize) -> Box<[usize]> {
    if fds == 0 {
        return Box::default();
    }
    cmsg::control_buf(cmsg::space(fds * FD_SIZE))
}

/// Sends a buffer's initialised bytes with fds attached.
pub(crate) struct SendFds<B> {
    fd: SharedFd,
    buf: B,
    parts: Box<MsgParts>,
    /// Copies of the fds passed, open until the kernel is done with the op.
    _fds: Vec<OwnedFd>,
}

impl<B: IoBuf> SendFds<B> {
    /// Passes `fds` (the op's own copies, closed when it is done); at most
    /// [`MAX_FDS`].
    pub(crate) fn new(fd: &SharedFd, buf: B, fds: Vec<OwnedFd>) -> SendFds<B> {
        debug_assert!(fds.len() <= MAX_FDS);
        let iov = libc::iovec {
            iov_base: buf.stable_ptr() as *mut _,
            iov_len: buf.bytes_init(),
        };
        let parts = MsgParts::with_control(vec![iov], control_buf(fds.len()));
        if !fds.is_empty() {
            // SAFETY: the control buffer has room for one header and
            // `fds.len()` ints (CMSG_SPACE), so the first header is in it.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&parts.msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN((fds.len() * FD_SIZE) as u32) as _;
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                for (i, f) in fds.iter().enumerate() {
                    data.add(i).write_unaligned(f.as_raw_fd());
                }
            }
        }
        SendFds {
            fd: fd.clone(),
            buf,
            parts,
            _fds: fds,
        }
    }
}

// SAFETY: the msghdr, its iovec and the control buffer are boxed and owned
// by the op, the iovec points into the owned buffer (`IoBuf`), and the fds
// named in the control data stay open (owned copies) until the op is done.
unsafe impl<B: IoBuf> OpCode for SendFds<B> {
    type Output = BufResult<usize, B>;

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
        (res.map(|n| n as usize), self.buf)
    }
}

/// Receives into a buffer (from its start) with up to `max_fds` fds.
pub(crate) struct RecvFds<B> {
    fd: SharedFd,
    buf: B,
    parts: Box<MsgParts>,
    /// A datagram socket: results are kept as whole datagrams.
    datagram: bool,
}

impl<B: IoBufMut> RecvFds<B> {
    /// At most [`MAX_FDS`] fds.
    pub(crate) fn new(fd: &SharedFd, mut buf: B, max_fds: usize, datagram: bool) -> RecvFds<B> {
        debug_assert!(max_fds <= MAX_FDS);
        let iov = libc::iovec {
            iov_base: buf.stable_mut_ptr().cast(),
            iov_len: buf.bytes_total(),
        };
        RecvFds {
            fd: fd.clone(),
            buf,
            parts: MsgParts::with_control(vec![iov], control_buf(max_fds)),
            datagram,
        }
    }

    /// Prepares the header for a receive.
    fn ready(&mut self) {
        self.parts.reattach();
    }

    /// The fds in the control data the kernel wrote, and whether it had to
    /// truncate it.
    fn take_fds(&mut self) -> (Vec<OwnedFd>, bool) {
        // Taken once: the op gives up its control area here.
        let control = self.parts.take_control();
        let truncated = control.flags & libc::MSG_CTRUNC != 0;
        let mut fds = Vec::new();
        for (level, ty, data) in control.messages() {
            if level == libc::SOL_SOCKET && ty == libc::SCM_RIGHTS {
                for raw in data.chunks_exact(FD_SIZE) {
                    let raw = RawFd::from_ne_bytes(raw.try_into().expect("an fd's bytes"));
                    // SAFETY: the kernel installed this fd for us with the
                    // SCM_RIGHTS message; we now own it, and take it once.
                    fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
        }
        (fds, truncated)
    }

    /// Keeps `n` received bytes (or a datagram) on the socket for its next
    /// read.
    fn keep(&self, n: u32) {
        // SAFETY: the kernel wrote `n` bytes at the buffer's start.
        let data = unsafe { std::slice::from_raw_parts(self.buf.stable_ptr(), n as usize) };
        let mut kept = self.fd.kept();
        if self.datagram {
            kept.stash_datagram(data.to_vec(), None);
        } else if n == 0 {
            kept.stash_end(Ok(()));
        } else {
            kept.stash_bytes(data);
        }
    }
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "corio: more fds arrived than asked for, or the process is out of fds \
         (MSG_CTRUNC); the fds were closed and the bytes are kept for the next read",
    )
}

// SAFETY: the msghdr, its iovec and the control buffer are boxed and owned
// by the op, and the iovec points into the owned buffer (`IoBufMut`).
unsafe impl<B: IoBufMut> OpCode for RecvFds<B> {
    type Output = BufResult<(usize, Vec<OwnedFd>), B>;

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
        // What dropped reads kept comes without fds (theirs were closed).
        self.parts.msg.msg_controllen = 0;
        self.parts.msg.msg_flags = 0;
        let mut kept = self.fd.kept();
        if self.datagram {
            let (data, _) = kept.take_datagram()?;
            return Some(Ok(copy_into(&data, &mut self.buf) as u32));
        }
        kept.take_bytes(&mut self.buf).map(|r| r.map(|n| n as u32))
    }

    fn sqe(&mut self) -> Sqe {
        self.ready();
        uring!(
            opcode::RecvMsg::new(types::Fd(self.fd.raw()), &mut self.parts.msg)
                .flags(libc::MSG_CMSG_CLOEXEC as u32)
                .build()
        )
    }

    fn attempt(&mut self) -> io::Result<u32> {
        self.ready();
        let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
        // SAFETY: the header and everything it points at are owned by the op.
        let res = unsafe { libc::recvmsg(self.fd.raw(), &mut self.parts.msg, flags) };
        syscall_result(res)
    }

    // A short read says nothing here: a Unix stream read stops after a
    // message that carries fds, with more bytes queued behind it.

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        let n = match res {
            Ok(n) => n,
            Err(e) => return (Err(e), self.buf),
        };
        // SAFETY: the kernel wrote `n` bytes at the start of the buffer.
        unsafe { self.buf.set_init(n as usize) };
        let (fds, truncated_fds) = self.take_fds();
        if truncated_fds {
            drop(fds);
            self.keep(n);
            return (Err(truncated()), self.buf);
        }
        (Ok((n as usize, fds)), self.buf)
    }

    fn release(&mut self, res: io::Result<u32>, _flags: u32) {
        match res {
            Ok(n) => {
                // Nobody takes the fds: close them; the bytes wait for the
                // next read.
                drop(self.take_fds());
                self.keep(n);
            }
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => {}
            Err(e) if !self.datagram => self.fd.kept().stash_end(Err(e)),
            Err(_) => {}
        }
    }
}
