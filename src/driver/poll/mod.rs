//! The readiness driver on mio: the same API where io_uring is missing.
//!
//! How it works: an fd is made non-blocking and registered (edge-triggered,
//! readable and writable) the first time an op waits on it (the fd records
//! that, so a later file with the same number is registered anew). The
//! driver keeps,
//! per fd, whether it believes each direction ready and the wakers waiting on
//! it; an op attempts its syscall while the fd is believed ready, and on
//! `WouldBlock` (or a result showing the fd drained) clears the belief and
//! parks. A peer's close or a socket error is remembered apart: it is final
//! and no edge follows it, so it keeps the direction ready. Each turn polls mio (without
//! waiting when tasks are runnable), marks the fds that saw an edge ready and
//! wakes their waiters. Remote wake-ups come through a `mio::Waker`. An fd
//! whose last handle goes is closed at once. epoll forgets a registration
//! only when the file itself goes, not the fd number: a child forked at that
//! moment (by any thread) still holds the file until it execs, and the old
//! file's events keep coming under the number a new fd may have by then.
//! So each registration's token carries the slot's generation beside the
//! fd number, and events of an older generation are dropped.

mod op;

use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest as MioInterest, Poll, Token};

use super::latency::Latencies;
use super::op::Interest;
use super::stats::Counters;
use crate::fd::SharedFd;

const WAKE_TOKEN: Token = Token(usize::MAX);

/// The token of generation `generation` of fd slot `i` (fd numbers fit in
/// 31 bits, so the generation has the upper half).
fn token(i: usize, generation: u16) -> Token {
    Token(i | (generation as usize) << 32)
}

/// Readiness state of one fd, indexed by the fd number.
#[derive(Debug)]
struct FdSlot {
    registered: bool,
    /// Bumped at each registration of a new file under this number; in the
    /// upper half of its token. 16 bits keep the slot at 88 bytes (the
    /// bools' padding); an old file's events come only until the child
    /// holding it execs, far fewer than 65,536 registrations of one number.
    generation: u16,
    readable: bool,
    writable: bool,
    /// The peer closed its side (or the socket failed): final states that
    /// keep the direction ready whatever an attempt showed, since no edge
    /// follows them.
    read_closed: bool,
    write_closed: bool,
    readers: Vec<Waker>,
    writers: Vec<Waker>,
    /// With `op_latency`: since when an op has waited for each direction.
    waiting_since: [Option<Instant>; 2],
}

impl Default for FdSlot {
    fn default() -> Self {
        // Unknown fds are assumed ready: the first attempt finds out.
        FdSlot {
            registered: false,
            generation: 0,
            readable: true,
            writable: true,
            read_closed: false,
            write_closed: false,
            readers: Vec::new(),
            writers: Vec::new(),
            waiting_since: [None; 2],
        }
    }
}

/// The mio-based readiness driver of one runtime.
pub(crate) struct Poller {
    poll: Poll,
    events: Events,
    fds: Vec<FdSlot>,
    stats: Rc<Counters>,
    /// Per-op latency (`Builder::op_latency`), boxed: usually off.
    latency: Option<Box<Latencies>>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollDriver").finish_non_exhaustive()
    }
}

/// Wakes a parked poll-driver runtime from any thread.
#[derive(Debug, Clone)]
pub(crate) struct Unparker {
    waker: Arc<mio::Waker>,
}

impl Unparker {
    pub(crate) fn unpark(&self) {
        // An error means the wake-up fd is gone with its runtime.
        let _ = self.waker.wake();
    }
}

impl Poller {
    /// A driver taking at most `max_events` events per turn (up to 1024).
    pub(crate) fn new(
        max_events: usize,
        stats: Rc<Counters>,
        op_latency: bool,
    ) -> io::Result<(Poller, Unparker)> {
        let poll = Poll::new()?;
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE_TOKEN)?);
        let driver = Poller {
            poll,
            events: Events::with_capacity(max_events.clamp(1, 1024)),
            fds: Vec::new(),
            stats,
            latency: op_latency.then(Box::default),
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
    pub(crate) fn poll_ready(&mut self, fd: &SharedFd, interest: Interest, waker: &Waker) -> bool {
        let raw = fd.raw();
        let i = raw as usize;
        if i >= self.fds.len() {
            self.fds.resize_with(i + 1, FdSlot::default);
        }
        let slot = &mut self.fds[i];
        if !fd.registered() {
            // A new fd (perhaps with the number of one closed earlier, whose
            // file may still send events: a new generation tells them apart).
            let generation = slot.generation.wrapping_add(1);
            *slot = FdSlot {
                generation,
                ..FdSlot::default()
            };
            set_nonblocking(raw);
            let both = MioInterest::READABLE | MioInterest::WRITABLE;
            let registry = self.poll.registry();
            let tok = token(i, generation);
            let done = match registry.register(&mut SourceFd(&raw), tok, both) {
                // Still registered: the same file handed back in (`into_std`
                // then `from_std`).
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    registry.reregister(&mut SourceFd(&raw), tok, both)
                }
                r => r,
            };
            // A failure (say the fd is not pollable) leaves it unregistered:
            // attempts then report the syscall's own error.
            if done.is_ok() {
                slot.registered = true;
                fd.set_registered();
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
        if self.latency.is_some() {
            slot.waiting_since[interest as usize].get_or_insert_with(Instant::now);
        }
        false
    }

    /// The last attempt on `fd` would block: it is not ready any more.
    ///
    /// `would_block`: the attempt said `WouldBlock`, so the direction is not
    /// closed either (a closed one reports end of file or an error), and a
    /// closed mark is dropped too: kept, it would make the op's loop retry
    /// for ever.
    pub(crate) fn clear_ready(&mut self, fd: RawFd, interest: Interest, would_block: bool) {
        let slot = self.slot(fd);
        match interest {
            Interest::Readable => {
                slot.readable = false;
                slot.read_closed &= !would_block;
            }
            Interest::Writable => {
                slot.writable = false;
                slot.write_closed &= !would_block;
            }
        }
    }

    /// One turn: poll for events (waiting at most `timeout`), wake waiters;
    /// lowers `parked` as soon as the wait ends.
    pub(crate) fn turn(&mut self, timeout: Option<Duration>, parked: &AtomicBool) {
        self.stats.enter();
        if timeout != Some(Duration::ZERO) {
            self.stats.park();
        }
        let polled = self.poll.poll(&mut self.events, timeout);
        // Awake: wake-ups from here on need no signal through the waker.
        parked.swap(false, Ordering::SeqCst);
        if let Err(e) = polled {
            if e.kind() == io::ErrorKind::Interrupted {
                return;
            }
            panic!("corio: polling for readiness failed: {e}");
        }
        self.stats.events(self.events.iter().count() as u64);
        for ev in self.events.iter() {
            if ev.token() == WAKE_TOKEN {
                continue;
            }
            let Token(t) = ev.token();
            let (i, generation) = (t & 0xffff_ffff, (t >> 32) as u16);
            // An event of a file closed since (see the module doc).
            let Some(slot) = self.fds.get_mut(i).filter(|s| s.generation == generation) else {
                continue;
            };
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

impl Poller {
    /// True with `op_latency` on.
    #[inline]
    pub(crate) fn timed(&self) -> bool {
        self.latency.is_some()
    }

    /// The latency histograms, with `op_latency` on.
    pub(crate) fn latencies(&mut self) -> Option<&mut Latencies> {
        self.latency.as_deref_mut()
    }

    /// With `op_latency` on: an op of kind `kind` on `fd` (waiting for
    /// `interest`, if it does) has its result; `None` for an op that never
    /// waits.
    #[cold]
    pub(crate) fn record_latency(&mut self, kind: &'static str, wait: Option<(RawFd, Interest)>) {
        let since =
            wait.and_then(|(fd, interest)| self.slot(fd).waiting_since[interest as usize].take());
        if let Some(hist) = &mut self.latency {
            hist.record(kind, since.map_or(Duration::ZERO, |t| t.elapsed()));
        }
    }
}
