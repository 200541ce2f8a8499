//! Connecting a socket, like connect(2), and shutting it down, like
//! shutdown(2).

use std::io;

use socket2::SockAddr;

use super::would_block;
use crate::driver::op::syscall_result;
use crate::fd::SharedFd;
use crate::op::{Interest, OpCode, Sqe, Wait, uring};

/// Connects a socket to an address of its family.
pub(crate) struct Connect {
    fd: SharedFd,
    addr: Box<SockAddr>,
    /// The poll driver's connect(2) was issued; now waiting for its outcome.
    started: bool,
}

impl Connect {
    pub(crate) fn new(fd: &SharedFd, addr: SockAddr) -> Connect {
        Connect {
            fd: fd.clone(),
            addr: Box::new(addr),
            started: false,
        }
    }
}

// SAFETY: the address is boxed and owned by the op.
unsafe impl OpCode for Connect {
    type Output = io::Result<()>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Writable)
    }

    fn sqe(&mut self) -> Sqe {
        uring!(
            opcode::Connect::new(
                types::Fd(self.fd.raw()),
                self.addr.as_ptr().cast(),
                self.addr.len()
            )
            .build()
        )
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let sock = socket2::SockRef::from(&self.fd);
        if !self.started {
            self.started = true;
            return match sock.connect(&self.addr) {
                Ok(()) => Ok(0),
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Err(would_block()),
                // A Unix socket whose listener's backlog is full.
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Err(would_block()),
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

/// Shuts down one or both directions of a socket.
pub(crate) struct Shutdown {
    fd: SharedFd,
    how: i32,
}

impl Shutdown {
    pub(crate) fn new(fd: &SharedFd, how: std::net::Shutdown) -> Shutdown {
        let how = match how {
            std::net::Shutdown::Read => libc::SHUT_RD,
            std::net::Shutdown::Write => libc::SHUT_WR,
            std::net::Shutdown::Both => libc::SHUT_RDWR,
        };
        Shutdown {
            fd: fd.clone(),
            how,
        }
    }
}

// SAFETY: names no memory.
unsafe impl OpCode for Shutdown {
    type Output = io::Result<()>;

    fn wait(&self) -> Wait<'_> {
        Wait::Never
    }

    fn sqe(&mut self) -> Sqe {
        uring!(opcode::Shutdown::new(types::Fd(self.fd.raw()), self.how).build())
    }

    fn attempt(&mut self) -> io::Result<u32> {
        // SAFETY: shutdown(2) on a socket the op keeps open.
        let res = unsafe { libc::shutdown(self.fd.raw(), self.how) };
        syscall_result(res as libc::ssize_t)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> io::Result<()> {
        res.map(drop)
    }
}
