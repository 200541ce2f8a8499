//! Moving file bytes to a socket without user-space copies: splice(2)
//! through a pipe (`IORING_OP_SPLICE`), or sendfile(2).
//!
//! How it works: on io_uring a send of a file is two splices per pipeful —
//! file → pipe at an offset, then pipe → socket — through an empty pipe the
//! driver keeps for reuse (`TcpStream::send_file` drives the loop). Where
//! the kernel lacks SPLICE (or it is turned off) and on the poll driver it
//! is [`SendFile`]: sendfile(2), on the blocking pool for io_uring (the
//! socket is blocking there), with writability waits on the poll driver.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::driver::op::syscall_result;
use crate::fd::SharedFd;
use crate::op::{Interest, OpCode, Sqe, Wait, uring};

/// The most one splice or sendfile moves (what the syscalls cut it to).
pub(crate) const MAX_MOVE: usize = 0x7fff_f000;

/// Moves up to `len` bytes from `fd_in` (at `off_in`, or -1 for a pipe's
/// current position) to `fd_out`, like splice(2); one end is a pipe.
pub(crate) struct Splice {
    fd_in: SharedFd,
    off_in: i64,
    fd_out: SharedFd,
    len: u32,
}

impl Splice {
    pub(crate) fn new(fd_in: &SharedFd, off_in: i64, fd_out: &SharedFd, len: usize) -> Splice {
        Splice {
            fd_in: fd_in.clone(),
            off_in,
            fd_out: fd_out.clone(),
            len: len.min(MAX_MOVE) as u32,
        }
    }
}

// SAFETY: a splice names only fds (kept open by the op) and an offset.
unsafe impl OpCode for Splice {
    type Output = io::Result<usize>;

    fn wait(&self) -> Wait<'_> {
        if self.off_in < 0 {
            // Pipe to socket: a socket in O_NONBLOCK mode may say EAGAIN;
            // the ring then waits for it to be writable and retries.
            Wait::Ready(&self.fd_out, Interest::Writable)
        } else {
            // File to pipe: a plain blocking splice where run without the
            // ring (`send_file` uses sendfile(2) there instead).
            Wait::Blocking
        }
    }

    fn optional_opcode(&self) -> Option<u8> {
        Some(uring!(opcode::Splice::CODE))
    }

    fn sqe(&mut self) -> Sqe {
        uring!(
            opcode::Splice::new(
                types::Fd(self.fd_in.raw()),
                self.off_in,
                types::Fd(self.fd_out.raw()),
                -1,
                self.len,
            )
            .build()
        )
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let mut off = self.off_in as libc::loff_t;
        let off_in: *mut libc::loff_t = if self.off_in < 0 {
            std::ptr::null_mut()
        } else {
            &mut off
        };
        let (fd_in, fd_out, len) = (self.fd_in.raw(), self.fd_out.raw(), self.len as usize);
        // SAFETY: plain fds the op keeps open and an offset on the stack.
        let res = unsafe { libc::splice(fd_in, off_in, fd_out, std::ptr::null_mut(), len, 0) };
        syscall_result(res)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        res.map(|n| n as usize)
    }
}

/// Sends up to `len` bytes of `file` from `offset` to `sock`, like
/// sendfile(2).
pub(crate) struct SendFile {
    sock: SharedFd,
    file: SharedFd,
    offset: i64,
    len: usize,
}

impl SendFile {
    pub(crate) fn new(sock: &SharedFd, file: &SharedFd, offset: i64, len: usize) -> SendFile {
        SendFile {
            sock: sock.clone(),
            file: file.clone(),
            offset,
            len: len.min(MAX_MOVE),
        }
    }
}

// SAFETY: sendfile names only fds (kept open by the op) and an offset.
unsafe impl OpCode for SendFile {
    type Output = io::Result<usize>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.sock, Interest::Writable)
    }

    /// Only used where io_uring lacks SPLICE (or on the poll driver): on
    /// io_uring the missing opcode sends it to the blocking pool.
    fn optional_opcode(&self) -> Option<u8> {
        Some(uring!(opcode::Splice::CODE))
    }

    fn sqe(&mut self) -> Sqe {
        // Never submitted: where SPLICE exists `send_file` splices instead.
        debug_assert!(false, "corio: SendFile submitted to the ring");
        uring!(opcode::Nop::new().build())
    }

    fn attempt(&mut self) -> io::Result<u32> {
        let mut off = self.offset as libc::off_t;
        let (sock, file) = (self.sock.raw(), self.file.raw());
        // SAFETY: plain fds the op keeps open and an offset on the stack.
        let res = unsafe { libc::sendfile(sock, file, &mut off, self.len) };
        syscall_result(res)
    }

    // No `drained`: a short count may be the end of the file, not a full
    // socket (the next attempt then returns 0 at once).

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        res.map(|n| n as usize)
    }
}

/// A new pipe (close-on-exec, as large as the system lets an unprivileged
/// process make it, up to 1 MiB): (read end, write end).
pub(crate) fn new_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both fds are new and ours.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A bigger pipe means fewer splices per file; the default (64 KiB)
    // works too.
    // SAFETY: fcntl on an fd we own.
    unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 1 << 20) };
    Ok((r, w))
}

/// The capacity of the pipe whose write end is `w`.
pub(crate) fn pipe_capacity(w: &SharedFd) -> usize {
    // SAFETY: fcntl on an fd the handle keeps open.
    let n = unsafe { libc::fcntl(w.raw(), libc::F_GETPIPE_SZ) };
    if n > 0 { n as usize } else { 64 << 10 }
}

/// `IORING_OP_SPLICE`, for asking the driver whether the kernel has it.
pub(crate) fn splice_opcode() -> u8 {
    uring!(opcode::Splice::CODE)
}
