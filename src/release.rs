//! The deferred-release queue: what a driver must finish after its owner is gone.
//!
//! How it works: a future dropped while its op is still in the kernel (or on
//! the blocking pool), the last handle of an fd, a registered-buffer pool
//! going away — none of these may touch the driver directly, since they can
//! happen while the driver itself is running (a released op's value dropped
//! inside it). Each pushes a [`Release`] to this thread's queue instead; the
//! driver drains the queue before every submit and at shutdown. Entries that
//! name a ring slot carry the token of the driver that owns it, so a thread
//! that runs two runtimes in turn finishes each entry on the right ring; an
//! entry whose driver is gone is finished on the spot (its ring has returned
//! every buffer by then).
//!
//! Closing is the common case and stays cheap: with no multishot op armed on
//! the fd, it is a `close(2)` at once, or — when the current runtime batches
//! closes on its ring — a queued close.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::{Rc, Weak};

/// An op value the driver keeps after its future went away, until the
/// kernel (or the blocking pool) is done with it.
pub(crate) trait Released {
    /// One completion of the op: release what it carries (give a buffer
    /// back, keep bytes or an accepted fd for the next op on the socket,
    /// close an fd nobody can take). True when it was the op's last.
    fn completion(&mut self, res: i32, flags: u32) -> bool;
}

/// A blocking-pool job whose future went away.
pub(crate) trait Orphan {
    /// True once the pool thread has finished with the op value.
    fn is_done(&self) -> bool;
    /// Releases the op value (on the runtime's thread) and what its syscall
    /// produced.
    fn release(self: Box<Self>);
}

/// One thing a driver must finish.
pub(crate) enum Release {
    /// Close `fd`; with `after`, once the multishot op in that ring slot has
    /// ended (it is cancelled first).
    Close { fd: RawFd, after: Option<u64> },
    /// The op in ring slot `key` lost its future; `op` is what the kernel
    /// may still touch (`None` for a readiness poll, which holds nothing).
    Op {
        key: u64,
        op: Option<Box<dyn Released>>,
    },
    /// A blocking-pool job lost its future.
    Job(Box<dyn Orphan>),
    /// The registered buffers owned by this token went away: unregister them.
    Unregister(Weak<()>),
    /// Take down the multishot op armed in this ring slot (cancel it; what
    /// it still gets goes to its release hook), so the fd's next op arms a
    /// fresh one.
    Rearm { key: u64 },
    /// Empty registered-file `slot`, which holds `fd` (its handles are
    /// gone, or it was taken back): queued before the fd's close.
    Unfix { slot: u16, fd: RawFd },
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Release::Close { fd, after } => write!(f, "Close({fd}, after {after:?})"),
            Release::Op { key, .. } => write!(f, "Op({key:#x})"),
            Release::Job(_) => f.write_str("Job"),
            Release::Unregister(_) => f.write_str("Unregister"),
            Release::Rearm { key } => write!(f, "Rearm({key:#x})"),
            Release::Unfix { slot, fd } => write!(f, "Unfix({slot}, fd {fd})"),
        }
    }
}

struct Entry {
    /// The driver that must finish it; `None`: any driver (a plain close).
    owner: Option<Weak<()>>,
    release: Release,
}

thread_local! {
    static QUEUE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
    /// Entries in `QUEUE` (a plain cell, cheap to read every tick).
    static QUEUED: Cell<usize> = const { Cell::new(0) };
    /// The runtime running on this thread closes fds with ops on its ring.
    static RING_CLOSES: Cell<bool> = const { Cell::new(false) };
}

/// Queues `release` for the driver `owner`. If that driver is gone, the
/// release is finished now: nothing of it is in a kernel's hands any more.
pub(crate) fn push(owner: &Weak<()>, release: Release) {
    if owner.strong_count() == 0 {
        finish_orphaned(release);
        return;
    }
    QUEUE.with(|q| {
        q.borrow_mut().push(Entry {
            owner: Some(owner.clone()),
            release,
        })
    });
    QUEUED.with(|n| n.set(n.get() + 1));
}

/// Closes `fd`, whose last handle went away: queued for the ring of the
/// running runtime when it batches closes, else at once. With `after`, the
/// fd is closed once that driver's multishot op has ended.
pub(crate) fn close(fd: RawFd, after: Option<(u64, &Weak<()>)>) {
    match after {
        Some((key, owner)) => push(
            owner,
            Release::Close {
                fd,
                after: Some(key),
            },
        ),
        None if RING_CLOSES.with(Cell::get) => {
            QUEUE.with(|q| {
                q.borrow_mut().push(Entry {
                    owner: None,
                    release: Release::Close { fd, after: None },
                })
            });
            QUEUED.with(|n| n.set(n.get() + 1));
        }
        None => close_now(fd),
    }
}

/// Says whether the runtime now running on this thread closes fds on its
/// ring (the runtime sets it as it enters and leaves).
pub(crate) fn set_ring_closes(on: bool) -> bool {
    RING_CLOSES.with(|c| c.replace(on))
}

/// Takes the entries the driver `owner` must finish (its own, and plain
/// closes) in the order they were queued; entries of another live driver
/// stay queued, and those of a driver that is gone are finished here.
pub(crate) fn take(owner: &Rc<()>, out: &mut Vec<Release>) {
    let mut orphaned = Vec::new();
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        if q.is_empty() {
            return;
        }
        let mine = |e: &Entry| {
            e.owner
                .as_ref()
                .is_none_or(|w| std::ptr::eq(w.as_ptr(), Rc::as_ptr(owner)))
        };
        if q.iter().all(mine) {
            out.extend(q.drain(..).map(|e| e.release));
            QUEUED.with(|n| n.set(0));
            return;
        }
        // Removing in place keeps the order and the queue's capacity; the
        // queue is short, and entries of other drivers are rare.
        let mut i = 0;
        while i < q.len() {
            match &q[i].owner {
                Some(w) if !std::ptr::eq(w.as_ptr(), Rc::as_ptr(owner)) => {
                    if w.strong_count() == 0 {
                        orphaned.push(q.remove(i).release);
                    } else {
                        i += 1;
                    }
                }
                _ => out.push(q.remove(i).release),
            }
        }
        QUEUED.with(|n| n.set(q.len()));
    });
    // Outside the borrow: finishing may drop fds, which queue closes.
    for r in orphaned {
        finish_orphaned(r);
    }
}

/// True when nothing waits in this thread's queue.
#[inline]
pub(crate) fn is_empty() -> bool {
    QUEUED.with(Cell::get) == 0
}

/// Finishes a release whose driver is gone: its ring was torn down after
/// every op completed, so the op values can simply go.
pub(crate) fn finish_orphaned(release: Release) {
    match release {
        Release::Close { fd, .. } => close_now(fd),
        Release::Op { op, .. } => drop(op),
        Release::Job(job) => job.release(),
        // The ring's table went with the ring.
        Release::Unregister(_) | Release::Rearm { .. } | Release::Unfix { .. } => {}
    }
}

/// `close(2)` on an fd nobody uses any more.
pub(crate) fn close_now(fd: RawFd) {
    // SAFETY: the caller owned `fd` and no op uses it any more.
    unsafe { libc::close(fd) };
    crate::freed::note_closed();
}
