//! Accepting connections, like accept4(2) with `SOCK_CLOEXEC`: one at a
//! time, or from a multishot accept the driver keeps armed on the listener.

use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};

use socket2::SockAddr;

use super::AddrBuf;
use crate::driver::armed::Armed;
use crate::driver::op::CQE_F_MORE;
use crate::fd::{SharedFd, WeakFd};
use crate::op::{Interest, Kind, OpCode, Role, Sqe, Wait, uring};
use crate::release::Released;

/// Accepts a connection. With `multishot`, on io_uring it takes the next
/// connection of a multishot accept armed on the listener (arming one if
/// none is); such connections come without a peer address.
pub(crate) struct Accept {
    fd: SharedFd,
    addr: Box<AddrBuf>,
    multishot: bool,
}

impl Accept {
    pub(crate) fn new(fd: &SharedFd, multishot: bool) -> Accept {
        Accept {
            fd: fd.clone(),
            addr: AddrBuf::new(),
            multishot,
        }
    }
}

/// Wraps an accepted fd.
fn owned(raw: u32) -> OwnedFd {
    // SAFETY: a successful accept returns a new fd that we now own.
    unsafe { OwnedFd::from_raw_fd(raw as i32) }
}

// SAFETY: the address storage is boxed and owned by the op; a multishot
// accept names no memory.
unsafe impl OpCode for Accept {
    type Output = io::Result<(OwnedFd, Option<SockAddr>)>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Readable)
    }

    fn role(&self) -> Option<Role<'_>> {
        Some(Role {
            fd: &self.fd,
            kind: Kind::Accept,
            multishot: self.multishot,
        })
    }

    fn recover(&mut self) -> Option<io::Result<u32>> {
        let conn = self.fd.kept().take_accepted()?;
        self.addr.clear();
        Some(Ok(conn.into_raw_fd() as u32))
    }

    fn arm(&mut self) -> Option<Box<Armed>> {
        Some(Armed::boxed(ArmedAccept {
            listener: self.fd.downgrade(),
        }))
    }

    fn sqe(&mut self) -> Sqe {
        self.addr.reset();
        if self.multishot {
            self.addr.clear();
        }
        uring!(if self.multishot {
            opcode::AcceptMulti::new(types::Fd(self.fd.raw()))
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            let addr = self.addr.ptr();
            opcode::Accept::new(types::Fd(self.fd.raw()), addr, &mut self.addr.len)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        })
    }

    fn attempt(&mut self) -> io::Result<u32> {
        self.addr.reset();
        let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        let addr = self.addr.ptr();
        // SAFETY: the address storage and its length are owned by the op.
        let res = unsafe { libc::accept4(self.fd.raw(), addr, &mut self.addr.len, flags) };
        crate::driver::op::syscall_result(res as libc::ssize_t)
    }

    fn complete(self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        let conn = owned(res?);
        Ok((conn, self.addr.get()))
    }

    fn release(&mut self, res: io::Result<u32>, _flags: u32) {
        match res {
            // The listener keeps it for its next accept (and closes it if
            // the listener itself is gone).
            Ok(raw) => keep(&self.fd, owned(raw)),
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => restart_accepts(&self.fd, true),
            Err(_) => {}
        }
    }
}

/// A multishot accept the driver keeps armed on a listener: connections
/// that arrive once it is taken down go to the listener's next accept, or
/// are closed when the listener is gone.
struct ArmedAccept {
    listener: WeakFd,
}

impl Released for ArmedAccept {
    fn completion(&mut self, res: i32, flags: u32) -> bool {
        if res >= 0 {
            let conn = owned(res as u32);
            if let Some(listener) = self.listener.upgrade() {
                keep(&listener, conn);
            }
        } else if res == -libc::ECANCELED
            && let Some(listener) = self.listener.upgrade()
        {
            // Taken down (by a restart, or with its listener): single
            // accepts start over; a multishot op armed since stays, or
            // restarts would take each other down for ever.
            restart_accepts(&listener, false);
        }
        flags & CQE_F_MORE == 0
    }
}

/// Keeps a connection a dropped accept got, for the listener's next accept.
/// An `incoming()` waiting on a multishot accept armed on the listener
/// waits for that op, not for kept connections: the op is taken down, so
/// the `incoming()` starts over and takes the kept one.
fn keep(listener: &SharedFd, conn: OwnedFd) {
    listener.stash_accepted(conn);
    take_down_multishot(listener);
}

/// Takes the multishot accept armed on `listener` down, if there is one:
/// the driver cancels it (what it still accepts is kept), and the next
/// multishot accept arms a fresh one.
fn take_down_multishot(listener: &SharedFd) {
    if let Some((key, owner)) = listener.take_armed() {
        crate::release::push(&owner, crate::release::Release::Rearm { key });
    }
}

/// An accept whose future is gone came back cancelled. The kernel wakes one
/// waiting accept per new connection; when the cancel landed after such a
/// wake-up but before the accept ran (with `DEFER_TASKRUN` that is until the
/// runtime next enters the kernel), the connection stays queued and no
/// other accept is woken for it. So every accept waiting on the listener
/// starts over: the first to go to the kernel again finds the connection.
/// With `multishot`, a multishot accept armed on the listener (an
/// `incoming()`) is taken down too, and its next op arms a fresh one.
fn restart_accepts(listener: &SharedFd, multishot: bool) {
    if multishot {
        take_down_multishot(listener);
    }
    let waiters = listener.kept().restart_accepts();
    for w in waiters {
        w.wake();
    }
}
