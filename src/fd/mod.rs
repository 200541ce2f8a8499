//! `SharedFd`: an fd shared by its handles and its in-flight ops, and what
//! dropped reads and accepts left on it.
//!
//! How it works: every handle (stream, halves, listener, file) and every op
//! on the fd holds an `Rc` of it, so the fd is closed only after the last op
//! on it has completed: its number can never be reused under a stale op. The
//! close goes through the release queue (`release.rs`): at once with
//! close(2), batched on the ring, or — when a multishot op is armed on the fd
//! (`armed`) — after that op's cancellation has come back, since it holds the
//! socket in the kernel but no `Rc` of it.
//!
//! The fd also carries its cancel-recovery state (`kept.rs`: bytes,
//! datagrams and connections that arrived for futures that were dropped) and
//! the flag that serialises reads: a read starts only when no earlier read
//! is in the kernel, so bytes never overtake each other. The driver's op
//! path is the one place that consults both, for every read and accept op.

mod kept;

use std::cell::{RefCell, RefMut};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};
use std::task::Waker;

pub(crate) use kept::{Kept, copy_into};

/// An fd shared by handles and in-flight ops.
#[derive(Clone, Debug)]
pub(crate) struct SharedFd {
    inner: Rc<Inner>,
}

/// A weak reference to a [`SharedFd`], held by a multishot op the driver
/// keeps armed on it (so the op does not keep the fd open).
#[derive(Clone, Debug)]
pub(crate) struct WeakFd(Weak<Inner>);

impl WeakFd {
    pub(crate) fn upgrade(&self) -> Option<SharedFd> {
        self.0.upgrade().map(|inner| SharedFd { inner })
    }
}

#[derive(Debug)]
struct Inner {
    fd: RawFd,
    state: RefCell<State>,
}

#[derive(Debug, Default)]
struct State {
    /// A read is in the kernel (owned by a future, or released), or the
    /// multishot receive armed on the fd is being taken down.
    reading: bool,
    /// `try_release` took the fd back: do not close it.
    released: bool,
    /// The poll driver has registered this fd (not an earlier file that
    /// had the same number).
    registered: bool,
    /// A short read does not show the socket drained: a Unix stream ends a
    /// read after bytes that carried fds, with more queued behind them.
    reads_stop_short: bool,
    /// The multishot op armed on the fd: its ring slot and the token of the
    /// driver that owns the ring.
    armed: Option<(u64, Weak<()>)>,
    /// What dropped ops left behind and who waits: rare, so kept out of
    /// line (an idle connection should cost little memory).
    kept: Option<Box<Kept>>,
}

impl SharedFd {
    /// Takes ownership of `fd`.
    pub(crate) fn new(fd: OwnedFd) -> SharedFd {
        SharedFd {
            inner: Rc::new(Inner {
                fd: fd.into_raw_fd(),
                state: RefCell::default(),
            }),
        }
    }

    #[inline]
    pub(crate) fn raw(&self) -> RawFd {
        self.inner.fd
    }

    /// True when both handles share one fd.
    pub(crate) fn same(&self, other: &SharedFd) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn downgrade(&self) -> WeakFd {
        WeakFd(Rc::downgrade(&self.inner))
    }

    /// Gives the fd back to the caller if nothing else (no other handle, no
    /// op still in the kernel) uses it. What dropped reads kept is lost.
    pub(crate) fn try_release(self) -> Result<OwnedFd, SharedFd> {
        if Rc::strong_count(&self.inner) != 1 || self.inner.state.borrow().armed.is_some() {
            return Err(self);
        }
        self.inner.state.borrow_mut().released = true;
        // SAFETY: this is the last reference to the fd and `released` stops
        // `Inner::drop` from closing it, so ownership moves to the `OwnedFd`.
        Ok(unsafe { OwnedFd::from_raw_fd(self.inner.fd) })
    }

    /// True when a read is in the kernel; `waker` is then woken when it
    /// ends.
    #[inline]
    pub(crate) fn wait_read(&self, waker: &Waker) -> bool {
        let mut st = self.inner.state.borrow_mut();
        if !st.reading {
            return false;
        }
        kept::push_waker(&mut st.kept_mut().read_waiters, waker);
        true
    }

    /// A read goes to the kernel: later reads wait until it ends.
    #[inline]
    pub(crate) fn start_read(&self) {
        self.inner.state.borrow_mut().reading = true;
    }

    /// The read in flight has ended: the next may start.
    pub(crate) fn end_read(&self) {
        let waiters = {
            let mut st = self.inner.state.borrow_mut();
            st.reading = false;
            match st.kept.as_deref_mut() {
                Some(k) => std::mem::take(&mut k.read_waiters),
                None => Vec::new(),
            }
        };
        for w in waiters {
            w.wake();
        }
    }

    /// The ring slot of the multishot op armed on this fd, if any.
    #[inline]
    pub(crate) fn armed(&self) -> Option<u64> {
        self.inner.state.borrow().armed.as_ref().map(|(k, _)| *k)
    }

    /// Records (or clears) the multishot op armed on this fd by the driver
    /// whose token is `owner`.
    pub(crate) fn set_armed(&self, armed: Option<(u64, Weak<()>)>) {
        self.inner.state.borrow_mut().armed = armed;
    }

    /// [reliability] Takes the multishot op armed on this fd off it (the
    /// fd's next op arms a new one); returns its slot and driver token.
    pub(crate) fn take_armed(&self) -> Option<(u64, Weak<()>)> {
        self.inner.state.borrow_mut().armed.take()
    }

    /// True when the poll driver registered this very fd.
    #[inline]
    pub(crate) fn registered(&self) -> bool {
        self.inner.state.borrow().registered
    }

    pub(crate) fn set_registered(&self) {
        self.inner.state.borrow_mut().registered = true;
    }

    /// Marks a socket whose reads may return fewer bytes than are queued
    /// (Unix streams): the poll driver then learns it is drained from
    /// `EAGAIN` only.
    pub(crate) fn set_reads_stop_short(&self) {
        self.inner.state.borrow_mut().reads_stop_short = true;
    }

    /// See [`set_reads_stop_short`](Self::set_reads_stop_short).
    #[inline]
    pub(crate) fn reads_stop_short(&self) -> bool {
        self.inner.state.borrow().reads_stop_short
    }

    /// True when dropped ops left something on this fd.
    #[inline]
    pub(crate) fn has_kept(&self) -> bool {
        self.inner
            .state
            .borrow()
            .kept
            .as_deref()
            .is_some_and(Kept::has_any)
    }

    /// What dropped ops left on this fd (made on first use).
    pub(crate) fn kept(&self) -> RefMut<'_, Kept> {
        RefMut::map(self.inner.state.borrow_mut(), State::kept_mut)
    }

    /// Keeps a connection an abandoned accept got, and wakes accepts that
    /// wait so one of them takes it.
    pub(crate) fn stash_accepted(&self, fd: OwnedFd) {
        let waiters = {
            let mut k = self.kept();
            k.accepted.push_back(fd);
            std::mem::take(&mut k.accept_waiters)
        };
        for w in waiters {
            w.wake();
        }
    }
}

impl State {
    fn kept_mut(&mut self) -> &mut Kept {
        self.kept.get_or_insert_with(Default::default)
    }
}

impl AsFd for SharedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open as long as any `SharedFd` clone lives.
        unsafe { BorrowedFd::borrow_raw(self.inner.fd) }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if st.released {
            return;
        }
        match st.armed.take() {
            // The armed op holds the socket in the kernel: close after it.
            Some((key, owner)) => crate::release::close(self.fd, Some((key, &owner))),
            None => crate::release::close(self.fd, None),
        }
    }
}
