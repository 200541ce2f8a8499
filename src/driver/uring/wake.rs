//! Waking a parked ring: the eventfd read kept in flight, and MSG_RING
//! wake-ups sent to other rings.
//!
//! How it works: every ring keeps a read of its eventfd in flight; a write
//! to the eventfd from any thread completes it and ends the ring's wait.
//! When the waker runs on another corio io_uring runtime and the target
//! accepts them, that runtime's ring sends an `IORING_OP_MSG_RING` instead:
//! the message goes out with the sender's next submit (no extra syscall,
//! nothing to re-arm on the target). Each runtime that accepts MSG_RING
//! wake-ups keeps a `dup` of its ring fd in its [`Unparker`], and a sender
//! holds that dup until its SQE is submitted, so a message never targets a
//! recycled fd number. A failed message (its completion is the only one a
//! MSG_RING posts on the sender) does not say which target it was for: every
//! target this ring has messaged is woken through its eventfd instead.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Weak};

use io_uring::{opcode, squeue, types};

/// `user_data` of internal ops whose completion only needs counting.
pub(super) const TOKEN_UNTRACKED: u64 = u64::MAX;
/// `user_data` of the eventfd read that wakes a parked thread.
pub(super) const TOKEN_WAKE: u64 = u64::MAX - 1;
/// `user_data` of the completion a MSG_RING wake-up posts on the woken ring:
/// its arrival ends the wait, nothing else is done with it.
pub(super) const TOKEN_MSG_WAKE: u64 = u64::MAX - 2;
/// `user_data` of a MSG_RING wake-up on the sending ring. It is sent with
/// `IOSQE_CQE_SKIP_SUCCESS`, so only a failure posts a completion.
pub(super) const TOKEN_MSG_SENT: u64 = u64::MAX - 3;

/// Whether a runtime that does not choose accepts MSG_RING wake-ups
/// (`Builder::msg_ring_wakeups`).
pub(crate) const MSG_RING_DEFAULT: bool = true;

/// Wakes a parked runtime from any thread.
#[derive(Debug, Clone)]
pub(crate) struct Unparker {
    pub(super) fd: Arc<OwnedFd>,
    /// A `dup` of the runtime's ring fd when it accepts MSG_RING wake-ups.
    /// Owning it keeps the ring (not only the number) alive while any waker
    /// may target it; it closes with the runtime's shared part.
    pub(super) ring: Option<Arc<OwnedFd>>,
}

impl Unparker {
    pub(crate) fn unpark(&self) {
        write_eventfd(&self.fd);
    }

    /// True when the runtime accepts MSG_RING wake-ups.
    pub(crate) fn by_ring(&self) -> bool {
        self.ring.is_some()
    }
}

/// The wake-up side of one ring.
pub(super) struct Wake {
    pub(super) fd: Arc<OwnedFd>,
    buf: Box<u64>,
    /// The eventfd read is in flight.
    pub(super) armed: bool,
    /// This ring can send MSG_RING wake-ups (the probe has the opcode and
    /// the kernel `IOSQE_CQE_SKIP_SUCCESS`).
    pub(super) msg_ring: bool,
    /// The eventfds of the runtimes this ring has sent MSG_RING wake-ups to,
    /// for the fallback when one fails.
    pub(super) targets: Vec<Weak<OwnedFd>>,
    /// The ring fds of the targets whose MSG_RING wake-ups wait in the
    /// submission queue (released once the queue is empty).
    pub(super) held: Vec<Arc<OwnedFd>>,
}

impl Wake {
    /// A new eventfd and, when the ring may receive MSG_RING wake-ups, a
    /// `dup` of its fd for the unparker.
    pub(super) fn new(
        ring: &io_uring::IoUring,
        msg_ring: bool,
        accept: bool,
    ) -> io::Result<(Wake, Unparker)> {
        // SAFETY: eventfd returns a new fd or -1; checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh eventfd owned by nobody else.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        // Without a spare fd (EMFILE) wake-ups simply stay on the eventfd.
        let ring_dup = if msg_ring && accept {
            dup(ring).ok().map(Arc::new)
        } else {
            None
        };
        let wake = Wake {
            fd: fd.clone(),
            buf: Box::new(0),
            armed: false,
            msg_ring,
            targets: Vec::new(),
            held: Vec::new(),
        };
        Ok((wake, Unparker { fd, ring: ring_dup }))
    }

    /// The eventfd read to keep in flight.
    pub(super) fn read_sqe(&mut self) -> squeue::Entry {
        let buf: *mut u64 = &mut *self.buf;
        self.armed = true;
        opcode::Read::new(types::Fd(self.fd.as_raw_fd()), buf.cast(), 8)
            .build()
            .user_data(TOKEN_WAKE)
    }

    /// A MSG_RING wake-up failed: wake every target through its eventfd.
    pub(super) fn failed(&mut self) {
        self.targets.retain(|w| match w.upgrade() {
            Some(fd) => {
                write_eventfd(&fd);
                true
            }
            None => false,
        });
    }
}

/// Adds one to an eventfd, waking the read kept in flight on it.
fn write_eventfd(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd we own. A full
    // counter (EAGAIN) already means a wake-up is pending.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// A `dup` of `fd` (close-on-exec).
pub(super) fn dup(fd: &impl AsRawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an fd we hold open returns a new fd or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}
