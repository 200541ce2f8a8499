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
//! With registered files on (`Builder::registered_files`), an accepted
//! socket or an opened file is also installed in its ring's registered-file
//! table: the fd keeps its plain number (everything that uses the number
//! still works) and records its slot (`slot`, in what was padding) and the
//! ring that owns it (`owner`). Its ops then name the slot; when the fd goes,
//! the slot is emptied through the release queue (`Release::Unfix`) before
//! the close, so it is never reused while an op may still name it.
//!
//! The fd also carries its cancel-recovery state (`kept.rs`: bytes,
//! datagrams and connections that arrived for futures that were dropped) and
//! the flag that serialises reads: a read starts only when no earlier read
//! is in the kernel, so bytes never overtake each other. The driver's op
//! path is the one place that consults both, for every read and accept op.

mod kept;

use std::cell::{Cell, RefCell, RefMut};
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

struct Inner {
    fd: RawFd,
    /// `READING`, `RELEASED`, `REGISTERED`, `STOP_SHORT`, `KEPT`,
    /// `READ_WAITERS`, `CACHED_READS`, `CACHE_MISSED`: read on every op, so
    /// plain bits rather than a borrow.
    flags: Cell<u8>,
    /// Registered-file slot on `owner`'s ring (`NO_SLOT`: none).
    slot: Cell<u16>,
    /// Ring slot of the multishot op armed on the fd (`NOT_ARMED`: none).
    armed: Cell<u64>,
    /// The token of the driver whose ring holds this fd's ring state: the
    /// armed op and the registered-file slot (one driver holds both: arming
    /// on another ring gives the slot up).
    owner: Cell<Weak<()>>,
    /// What dropped ops left behind and who waits: rare, so kept out of
    /// line (an idle connection should cost little memory).
    kept: RefCell<Option<Box<Kept>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("fd", &self.fd)
            .field("flags", &self.flags)
            .field("slot", &self.slot)
            .field("armed", &self.armed)
            .field("kept", &self.kept)
            .finish_non_exhaustive()
    }
}

/// A read is in the kernel (owned by a future, or released), or the
/// multishot receive armed on the fd is being taken down.
const READING: u8 = 1 << 0;
/// `try_release` took the fd back: do not close it.
const RELEASED: u8 = 1 << 1;
/// The poll driver has registered this fd (not an earlier file that had the
/// same number).
const REGISTERED: u8 = 1 << 2;
/// A short read does not show the socket drained: a Unix stream ends a read
/// after bytes that carried fds, with more queued behind them.
const STOP_SHORT: u8 = 1 << 3;
/// `kept` may hold something (set by every access, cleared when a look
/// finds it empty).
const KEPT: u8 = 1 << 4;
/// Reads wait in `kept` for the one in flight to end.
const READ_WAITERS: u8 = 1 << 5;
/// A regular file opened without `O_DIRECT`: its positional reads first try
/// the page cache without blocking (`op/fs/cached.rs`).
const CACHED_READS: u8 = 1 << 6;
/// The last such try missed the cache: the next read skips it.
const CACHE_MISSED: u8 = 1 << 7;
/// `armed` when nothing is armed (no key has an all-ones generation).
const NOT_ARMED: u64 = u64::MAX;
/// `slot` when the fd is not in a registered-file table.
const NO_SLOT: u16 = u16::MAX;

impl Inner {
    #[inline]
    fn has(&self, flag: u8) -> bool {
        self.flags.get() & flag != 0
    }

    #[inline]
    fn set(&self, flag: u8, on: bool) {
        let f = self.flags.get();
        self.flags.set(if on { f | flag } else { f & !flag });
    }
}

impl SharedFd {
    /// Takes ownership of `fd`.
    pub(crate) fn new(fd: OwnedFd) -> SharedFd {
        SharedFd {
            inner: Rc::new(Inner {
                fd: fd.into_raw_fd(),
                flags: Cell::new(0),
                slot: Cell::new(NO_SLOT),
                armed: Cell::new(NOT_ARMED),
                owner: Cell::new(Weak::new()),
                kept: RefCell::new(None),
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
        if Rc::strong_count(&self.inner) != 1 || self.armed().is_some() {
            return Err(self);
        }
        self.inner.unfix();
        self.inner.set(RELEASED, true);
        // SAFETY: this is the last reference to the fd and `RELEASED` stops
        // `Inner::drop` from closing it, so ownership moves to the `OwnedFd`.
        Ok(unsafe { OwnedFd::from_raw_fd(self.inner.fd) })
    }

    /// True when a read is in the kernel; `waker` is then woken when it
    /// ends.
    #[inline]
    pub(crate) fn wait_read(&self, waker: &Waker) -> bool {
        if !self.inner.has(READING) {
            return false;
        }
        kept::push_waker(&mut self.kept().read_waiters, waker);
        self.inner.set(READ_WAITERS, true);
        true
    }

    /// A read goes to the kernel: later reads wait until it ends.
    #[inline]
    pub(crate) fn start_read(&self) {
        self.inner.set(READING, true);
    }

    /// The read in flight has ended: the next may start.
    #[inline]
    pub(crate) fn end_read(&self) {
        self.inner.set(READING, false);
        if self.inner.has(READ_WAITERS) {
            self.wake_readers();
        }
    }

    #[cold]
    fn wake_readers(&self) {
        self.inner.set(READ_WAITERS, false);
        let waiters = std::mem::take(&mut self.kept().read_waiters);
        for w in waiters {
            w.wake();
        }
    }

    /// The ring slot of the multishot op armed on this fd, if any.
    #[inline]
    pub(crate) fn armed(&self) -> Option<u64> {
        let key = self.inner.armed.get();
        (key != NOT_ARMED).then_some(key)
    }

    /// Records (or clears) the multishot op armed on this fd by the driver
    /// whose token is `owner`. A registered-file slot on another driver's
    /// ring is given up (one driver holds the fd's ring state).
    pub(crate) fn set_armed(&self, armed: Option<(u64, Weak<()>)>) {
        match armed {
            Some((key, owner)) => {
                debug_assert_ne!(key, NOT_ARMED);
                if self.inner.slot.get() != NO_SLOT && !self.owned_by(&owner) {
                    self.inner.unfix();
                }
                self.inner.armed.set(key);
                self.inner.owner.set(owner);
            }
            None => self.inner.armed.set(NOT_ARMED),
        }
    }

    /// Takes the multishot op armed on this fd off it (the fd's next op
    /// arms a new one); returns its slot and driver token.
    pub(crate) fn take_armed(&self) -> Option<(u64, Weak<()>)> {
        let key = self.inner.armed.replace(NOT_ARMED);
        (key != NOT_ARMED).then(|| (key, self.inner.owner_token()))
    }

    /// True when the driver whose token is `owner` holds this fd's ring
    /// state.
    #[inline]
    fn owned_by(&self, owner: &Weak<()>) -> bool {
        let mine = self.inner.owner.take();
        let same = mine.ptr_eq(owner);
        self.inner.owner.set(mine);
        same
    }

    /// The fd's registered-file slot on the ring of the driver `owner`, if
    /// it has one there.
    #[inline]
    pub(crate) fn fixed_slot(&self, owner: &Weak<()>) -> Option<u16> {
        let slot = self.inner.slot.get();
        (slot != NO_SLOT && self.owned_by(owner)).then_some(slot)
    }

    /// True when the fd has a registered-file slot (on any ring).
    #[inline]
    pub(crate) fn has_slot(&self) -> bool {
        self.inner.slot.get() != NO_SLOT
    }

    /// Records that the driver `owner` installed this fd in `slot` of its
    /// registered-file table (the fd has no slot and nothing armed).
    pub(crate) fn set_slot(&self, slot: u16, owner: Weak<()>) {
        debug_assert!(slot != NO_SLOT && !self.has_slot() && self.armed().is_none());
        self.inner.slot.set(slot);
        self.inner.owner.set(owner);
    }

    /// True when the poll driver registered this very fd.
    #[inline]
    pub(crate) fn registered(&self) -> bool {
        self.inner.has(REGISTERED)
    }

    pub(crate) fn set_registered(&self) {
        self.inner.set(REGISTERED, true);
    }

    /// Marks a socket whose reads may return fewer bytes than are queued
    /// (Unix streams): the poll driver then learns it is drained from
    /// `EAGAIN` only.
    pub(crate) fn set_reads_stop_short(&self) {
        self.inner.set(STOP_SHORT, true);
    }

    /// See [`set_reads_stop_short`](Self::set_reads_stop_short).
    #[inline]
    pub(crate) fn reads_stop_short(&self) -> bool {
        self.inner.has(STOP_SHORT)
    }

    /// Lets positional reads of this fd try the page cache first (a file
    /// that is not `O_DIRECT`; see `op/fs/cached.rs`).
    pub(crate) fn set_cached_reads(&self) {
        self.inner.set(CACHED_READS, true);
    }

    /// True when a positional read should try the page cache first. After a
    /// miss, one read goes straight to the driver (this call clears the
    /// miss): a file that is never cached pays the try on half its reads at
    /// most.
    #[inline]
    pub(crate) fn cached_read_turn(&self) -> bool {
        let f = self.inner.flags.get();
        if f & (CACHED_READS | CACHE_MISSED) == CACHED_READS {
            return true;
        }
        self.inner.set(CACHE_MISSED, false);
        false
    }

    /// The last try missed the page cache (`EAGAIN`).
    pub(crate) fn note_cache_miss(&self) {
        self.inner.set(CACHE_MISSED, true);
    }

    /// The fd cannot take such tries (not a regular file, or a file system
    /// without `RWF_NOWAIT`): its reads go to the driver from now on.
    pub(crate) fn stop_cached_reads(&self) {
        self.inner.set(CACHED_READS | CACHE_MISSED, false);
    }

    /// True when dropped ops left something on this fd.
    #[inline]
    pub(crate) fn has_kept(&self) -> bool {
        self.inner.has(KEPT) && self.look_kept()
    }

    #[cold]
    fn look_kept(&self) -> bool {
        let any = self
            .inner
            .kept
            .borrow()
            .as_deref()
            .is_some_and(Kept::has_any);
        if !any {
            self.inner.set(KEPT, false);
        }
        any
    }

    /// What dropped ops left on this fd (made on first use).
    pub(crate) fn kept(&self) -> RefMut<'_, Kept> {
        self.inner.set(KEPT, true);
        RefMut::map(self.inner.kept.borrow_mut(), |k| {
            &mut **k.get_or_insert_with(Default::default)
        })
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

impl AsFd for SharedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open as long as any `SharedFd` clone lives.
        unsafe { BorrowedFd::borrow_raw(self.inner.fd) }
    }
}

impl Inner {
    /// A clone of the owner token (kept for the slot).
    fn owner_token(&self) -> Weak<()> {
        let owner = self.owner.take();
        self.owner.set(owner.clone());
        owner
    }

    /// Gives up the fd's registered-file slot, if it has one: its owner
    /// empties it at its next drain, before any close queued after this.
    fn unfix(&self) {
        let slot = self.slot.replace(NO_SLOT);
        if slot != NO_SLOT {
            crate::release::push(
                &self.owner_token(),
                crate::release::Release::Unfix { slot, fd: self.fd },
            );
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.has(RELEASED) {
            return;
        }
        self.unfix();
        match self.armed.get() {
            NOT_ARMED => crate::release::close(self.fd, None),
            // The armed op holds the socket in the kernel: close after it.
            key => crate::release::close(self.fd, Some((key, &self.owner.take()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_lives_in_what_was_padding() {
        // fd, flags and the registered-file slot share one word; an idle
        // connection's fd costs no more than before it had a slot.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<Inner>(), 40);
    }

    fn devnull() -> SharedFd {
        SharedFd::new(std::fs::File::open("/dev/null").unwrap().into())
    }

    #[test]
    fn cached_reads_are_off_until_set() {
        let fd = devnull();
        assert!(!fd.cached_read_turn());
        fd.set_cached_reads();
        assert!(fd.cached_read_turn());
        assert!(fd.cached_read_turn(), "a hit keeps the turn");
    }

    #[test]
    fn after_a_miss_one_read_skips_the_try() {
        let fd = devnull();
        fd.set_cached_reads();
        fd.note_cache_miss();
        assert!(!fd.cached_read_turn(), "the read after a miss skips");
        assert!(fd.cached_read_turn(), "the one after that tries again");
        // The other bits are untouched.
        fd.set_reads_stop_short();
        fd.note_cache_miss();
        assert!(!fd.cached_read_turn());
        assert!(fd.reads_stop_short());
    }

    #[test]
    fn an_fd_that_cannot_try_stops_for_good() {
        let fd = devnull();
        fd.set_cached_reads();
        fd.note_cache_miss();
        fd.stop_cached_reads();
        for _ in 0..3 {
            assert!(!fd.cached_read_turn());
        }
    }
}
