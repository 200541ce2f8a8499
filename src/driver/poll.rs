//! The readiness driver on mio: the same API where io_uring is missing.
//!
//! How it works: an fd is made non-blocking and registered (edge-triggered,
//! readable and writable) the first time an op waits on it. The driver keeps,
//! per fd, whether it believes each direction ready and the wakers waiting on
//! it; an op attempts its syscall while the fd is believed ready, and on
//! `WouldBlock` (or a result showing the fd drained) clears the belief and
//! parks. A peer's close or a socket error is remembered apart: it is final
//! and no edge follows it, so it keeps the direction ready. Each turn polls mio (without
//! waiting when tasks are runnable), marks the fds that saw an edge ready and
//! wakes their waiters. Remote wake-ups come through a `mio::Waker`. Fds whose
//! last handle was dropped are deregistered and closed at the next turn.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest as MioInterest, Poll, Token};

use crate::op::Interest;
use crate::runtime::core::Core;

const WAKE_TOKEN: Token = Token(usize::MAX);

/// Readiness state of one fd, indexed by the fd number.
#[derive(Debug)]
struct FdSlot {
    registered: bool,
    readable: bool,
    writable: bool,
    /// The peer closed its side (or the socket failed): final states that
    /// keep the direction ready whatever an attempt showed, since no edge
    /// follows them.
    read_closed: bool,
    write_closed: bool,
    readers: Vec<Waker>,
    writers: Vec<Waker>,
}

impl Default for FdSlot {
    fn default() -> Self {
        // Unknown fds are assumed ready: the first attempt finds out.
        FdSlot {
            registered: false,
            readable: true,
            writable: true,
            read_closed: false,
            write_closed: false,
            readers: Vec::new(),
            writers: Vec::new(),
        }
    }
}

/// The mio-based readiness driver of one runtime.
pub(crate) struct Driver {
    poll: Poll,
    events: Events,
    fds: Vec<FdSlot>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollDriver").finish_non_exhaustive()
    }
}

/// Wakes a parked poll-driver runtime from any thread.
#[derive(Debug)]
pub(crate) struct Unparker {
    waker: Arc<mio::Waker>,
}

impl Unparker {
    pub(crate) fn unpark(&self) {
        // An error means the wake-up fd is gone with its runtime.
        let _ = self.waker.wake();
    }
}

impl Driver {
    /// A driver taking at most `max_events` events per turn (up to 1024).
    pub(crate) fn new(max_events: usize) -> io::Result<(Driver, Unparker)> {
        let poll = Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
        let driver = Driver {
            poll,
            events: Events::with_capacity(max_events.clamp(1, 1024)),
            fds: Vec::new(),
        };
        Ok((driver, Unparker { waker }))
    }

    fn slot(&mut self, fd: RawFd) -> &mut FdSlot {
        let i = fd as usize;
        if i >= self.fds.len() {
            self.fds.resize_with(i + 1, FdSlot::default);
        }
        &mut self.fds[i]
    }

    /// True when `fd` is believed ready for `interest`; otherwise parks
    /// `waker` until it is. The first call for an fd makes it non-blocking
    /// and registers it.
    pub(crate) fn poll_ready(&mut self, fd: RawFd, interest: Interest, waker: &Waker) -> bool {
        let registry = self.poll.registry();
        let i = fd as usize;
        if i >= self.fds.len() {
            self.fds.resize_with(i + 1, FdSlot::default);
        }
        let slot = &mut self.fds[i];
        if !slot.registered {
            set_nonblocking(fd);
            let both = MioInterest::READABLE | MioInterest::WRITABLE;
            // A failure (say the fd is not pollable) leaves it unregistered:
            // attempts then report the syscall's own error.
            if registry
                .register(&mut SourceFd(&fd), Token(i), both)
                .is_ok()
            {
                slot.registered = true;
            }
        }
        let (ready, waiters) = match interest {
            Interest::Readable => (slot.readable || slot.read_closed, &mut slot.readers),
            Interest::Writable => (slot.writable || slot.write_closed, &mut slot.writers),
        };
        if ready || !slot.registered {
            return true;
        }
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
        false
    }

    /// The last attempt on `fd` would block: it is not ready any more.
    pub(crate) fn clear_ready(&mut self, fd: RawFd, interest: Interest) {
        let slot = self.slot(fd);
        match interest {
            Interest::Readable => slot.readable = false,
            Interest::Writable => slot.writable = false,
        }
    }

    /// Deregisters and closes fds whose last handle was dropped.
    fn close_pending(&mut self, core: &Core) {
        let closes = std::mem::take(&mut *core.pending_close.borrow_mut());
        for fd in closes {
            self.close(fd);
        }
    }

    /// Deregisters and closes `fd` now, as close(2) on drop would.
    pub(crate) fn close(&mut self, fd: RawFd) {
        let slot = self.slot(fd);
        let registered = slot.registered;
        *slot = FdSlot::default();
        if registered {
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        // SAFETY: the fd's owner dropped it and no op uses it any more.
        unsafe { libc::close(fd) };
    }

    /// One turn: poll for events (waiting at most `timeout`), wake waiters.
    pub(crate) fn turn(&mut self, core: &Core, timeout: Option<Duration>) {
        self.close_pending(core);
        crate::op::release_orphans(core, false);
        core.counters.enter();
        if timeout != Some(Duration::ZERO) {
            core.counters.park();
        }
        let polled = self.poll.poll(&mut self.events, timeout);
        // Awake: wake-ups from here on need no signal through the waker.
        core.shared
            .parked
            .store(false, std::sync::atomic::Ordering::SeqCst);
        if let Err(e) = polled {
            if e.kind() == io::ErrorKind::Interrupted {
                return;
            }
            panic!("corio: polling for readiness failed: {e}");
        }
        core.counters.events(self.events.iter().count() as u64);
        for ev in self.events.iter() {
            let Token(i) = ev.token();
            if ev.token() == WAKE_TOKEN || i >= self.fds.len() {
                continue;
            }
            let slot = &mut self.fds[i];
            let hup = ev.is_error() || ev.is_read_closed() || ev.is_write_closed();
            slot.read_closed |= ev.is_error() || ev.is_read_closed();
            slot.write_closed |= ev.is_error() || ev.is_write_closed();
            if ev.is_readable() || hup {
                slot.readable = true;
                for w in slot.readers.drain(..) {
                    w.wake();
                }
            }
            if ev.is_writable() || hup {
                slot.writable = true;
                for w in slot.writers.drain(..) {
                    w.wake();
                }
            }
        }
    }

    /// Nothing is in the kernel's hands on this driver; close what is due.
    pub(crate) fn shutdown(&mut self, core: &Core) {
        self.close_pending(core);
    }
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an fd the caller's handle keeps open; errors are
    // harmless here (the attempt then reports them).
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 && flags & libc::O_NONBLOCK == 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}
