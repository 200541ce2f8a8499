//! Waiting for a child process through its pidfd, which also reaps it.
//!
//! How it works: where the ring has `IORING_OP_WAITID` (Linux 6.7), one
//! op waits and reaps: waitid(2) on the pidfd, in the kernel. Elsewhere the
//! op waits for the pidfd to turn readable (it does when the child ends: a
//! `POLL_ADD` on io_uring, mio readiness on the poll driver), then reaps
//! with waitid(2) and `WNOHANG`, which cannot block any more. No `SIGCHLD`
//! handler is involved. A child reaped by an op whose future was dropped
//! keeps its status in the cell the op shares with its `Child`.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::rc::Rc;

use super::{Interest, OpCode, Sqe, Wait, uring};
use crate::fd::SharedFd;

/// Where a reaped child's status is kept, shared by the child and its ops.
pub(crate) type Reaped = Rc<Cell<Option<ExitStatus>>>;

/// Waits for a child to end and reaps it, like waitid(2) on its pidfd.
pub(crate) struct WaitPid {
    pidfd: SharedFd,
    info: Box<libc::siginfo_t>,
    /// The kernel waits (`IORING_OP_WAITID`); else a readiness poll first.
    ring_waitid: bool,
    reaped: Reaped,
}

impl WaitPid {
    /// An op reaping the child behind `pidfd` into `reaped`.
    pub(crate) fn new(pidfd: SharedFd, reaped: Reaped) -> WaitPid {
        WaitPid {
            pidfd,
            // SAFETY: siginfo_t is plain data; all-zero is a valid value.
            info: Box::new(unsafe { std::mem::zeroed() }),
            ring_waitid: ring_has_waitid(),
            reaped,
        }
    }

    /// waitid(2) without waiting: the child's status if it has ended (and
    /// is now reaped).
    fn try_reap(&mut self) -> io::Result<Option<ExitStatus>> {
        // A stale si_pid would pass for a reaped child.
        // SAFETY: as in `new`.
        *self.info = unsafe { std::mem::zeroed() };
        try_reap(self.pidfd.raw(), &mut self.info)
    }

    /// The status the kernel wrote into `info` (by WAITID or `attempt`).
    fn finish(&self) -> io::Result<Option<ExitStatus>> {
        let status = status_of(&self.info)?;
        self.reaped.set(Some(status));
        Ok(Some(status))
    }
}

/// waitid(`P_PIDFD`, `WEXITED | WNOHANG`): the status if the child ended.
pub(crate) fn try_reap(pidfd: RawFd, info: &mut libc::siginfo_t) -> io::Result<Option<ExitStatus>> {
    let flags = libc::WEXITED | libc::WNOHANG;
    // SAFETY: `info` is a valid siginfo_t the call may write.
    let res = unsafe { libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, info, flags) };
    if res < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: waitid filled (or left zeroed) the child fields of `info`.
    if unsafe { info.si_pid() } == 0 {
        return Ok(None);
    }
    status_of(info).map(Some)
}

/// An exit status from the `si_code`/`si_status` waitid(2) wrote, in the
/// form std's `ExitStatus` reads (a wait(2) status word).
fn status_of(info: &libc::siginfo_t) -> io::Result<ExitStatus> {
    // SAFETY: the kernel filled the child fields of `info`.
    let status = unsafe { info.si_status() };
    let raw = match info.si_code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        code => {
            return Err(io::Error::other(format!(
                "corio: waitid reported child state {code}, not an exit"
            )));
        }
    };
    Ok(ExitStatus::from_raw(raw))
}

/// Whether the current runtime's ring can wait with `IORING_OP_WAITID`.
fn ring_has_waitid() -> bool {
    let code: u8 = uring!(opcode::WaitId::CODE);
    crate::runtime::context::with_core(|core| {
        core.is_some_and(|c| c.driver.borrow().supports(code))
    })
}

// SAFETY: the kernel writes only into the boxed siginfo, owned by the op.
unsafe impl OpCode for WaitPid {
    /// The status, or `None` when the pidfd turned readable and the child
    /// has not ended after all (the caller waits again).
    type Output = io::Result<Option<ExitStatus>>;

    fn sqe(&mut self) -> Sqe {
        let fd = self.pidfd.raw();
        let info: *const libc::siginfo_t = &*self.info;
        uring!(if self.ring_waitid {
            opcode::WaitId::new(libc::P_PIDFD, fd as libc::id_t, libc::WEXITED)
                .infop(info)
                .build()
        } else {
            opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32).build()
        })
    }

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.pidfd, Interest::Readable)
    }

    fn attempt(&mut self) -> io::Result<u32> {
        match self.try_reap()? {
            Some(_) => Ok(1),
            None => Err(io::Error::from(io::ErrorKind::WouldBlock)),
        }
    }

    fn complete(mut self, res: io::Result<u32>, _flags: u32) -> Self::Output {
        match res? {
            // The ring's POLL_ADD said "readable": reap now.
            _ if !self.ring_waitid && self.info.si_signo == 0 => {
                let status = self.try_reap()?;
                self.reaped.set(status);
                Ok(status)
            }
            // WAITID, or `attempt` reaped it.
            _ => self.finish(),
        }
    }

    fn release(&mut self, res: io::Result<u32>, _flags: u32) {
        // Only WAITID reaps in the kernel; a poll reaped nothing.
        if res.is_ok() && (self.ring_waitid || self.info.si_signo != 0) {
            let _ = self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::process::Command;
    use crate::runtime::context;

    /// On a ring without `IORING_OP_WAITID` (before Linux 6.7) a wait polls
    /// the pidfd, then reaps with `WNOHANG`.
    #[test]
    fn without_waitid_the_pidfd_is_polled() {
        // (`CORIO_DRIVER=poll` makes it a poll runtime: skipped too.)
        let Some(rt) = crate::Builder::new()
            .driver(crate::DriverKind::Uring)
            .build()
            .ok()
            .filter(|rt| rt.driver_kind() == crate::DriverKind::Uring)
        else {
            eprintln!("skipped: io_uring is not available here");
            return;
        };
        rt.block_on(async {
            let core = context::current("test");
            core.driver
                .borrow_mut()
                .forget_opcode(uring!(opcode::WaitId::CODE));
            let mut child = match Command::new("sh").args(["-c", "exit 5"]).spawn() {
                // No pidfd_open(2) (Linux < 5.3, or valgrind 3.19): nothing
                // to poll.
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                    eprintln!("skipped: {e}");
                    return;
                }
                spawned => spawned.unwrap(),
            };
            let reaped = Reaped::default();
            assert!(!WaitPid::new(child.pidfd_for_test(), reaped).ring_waitid);
            assert_eq!(child.wait().await.unwrap().code(), Some(5));

            // Waits dropped in flight (their polls cancelled) lose nothing.
            let mut child = Command::new("sh")
                .args(["-c", "sleep 0.1; exit 6"])
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            let status = loop {
                assert!(Instant::now() < deadline);
                let wait = crate::time::timeout(Duration::from_micros(200), child.wait());
                if let Ok(res) = wait.await {
                    break res.unwrap();
                }
            };
            assert_eq!(status.code(), Some(6));
        });
    }
}
