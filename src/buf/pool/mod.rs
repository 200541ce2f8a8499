//! The driver-owned receive pool: buffers the kernel picks for each receive.
//!
//! How it works: one allocation holds `count` buffers of `size` bytes. On
//! io_uring they are published in a provided-buffer ring (registered with
//! `IORING_REGISTER_PBUF_RING`): a multishot receive takes the next buffer
//! only when data arrives, so an idle connection holds none. On the poll
//! driver the same buffers sit on a free list. Either way a receive yields a
//! [`PooledBuf`] lease; dropping it gives the buffer back (on io_uring by
//! appending it to the ring's tail) and wakes receives that had to stop
//! because the pool ran dry.
//!
//! Two ring modes the driver may turn on when it registers the ring
//! ([`RingMode`]): *bundles* (`IORING_RECVSEND_BUNDLE`, Linux 6.10), where
//! one completion fills several buffers taken from consecutive ring entries,
//! and *incremental* buffers (`IOU_PBUF_RING_INC`, Linux 6.12), where a
//! receive uses only the bytes it needs and the kernel keeps writing later
//! receives (of any socket) into the rest of the same buffer. [`Pool::split`]
//! turns each completion into one piece per buffer (buffer id, offset,
//! length); each piece becomes a lease. A buffer goes back to the ring once
//! the kernel has moved past it *and* every lease on it is gone: per buffer
//! the pool counts the pieces handed out (`refs`) and whether the kernel may
//! still write it (`kernel`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::Waker;

mod split;

/// `struct io_uring_buf`: one entry of a provided-buffer ring.
#[repr(C)]
struct RingEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// An anonymous mapping (page aligned, zeroed), unmapped on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh private anonymous mapping; checked for failure.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe a mapping made in `new`, unused now.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Where free buffers wait: in the kernel's ring, or on a plain list.
enum Free {
    /// The provided-buffer ring's entries; `tail` is our copy of its tail.
    Ring {
        entries: Mapping,
        mask: u16,
        tail: Cell<u16>,
    },
    List(RefCell<Vec<u16>>),
}

/// How the kernel uses the provided-buffer ring (set by the driver when it
/// registers the ring; both off on the poll driver).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RingMode {
    /// Stream receives ask for bundles (several buffers per completion).
    pub(crate) bundle: bool,
    /// The ring was registered with `IOU_PBUF_RING_INC`.
    pub(crate) inc: bool,
}

/// The largest buffer size incremental mode packs (offset, length) of a
/// piece into a completion result for (see [`Pool::piece`]).
pub(crate) const INC_MAX_SIZE: usize = 1 << 15;

/// The receive pool of a runtime at one moment (see
/// [`corio::runtime::pool_usage`](crate::runtime::pool_usage)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolUsage {
    /// Buffers in the pool.
    pub buffers: usize,
    /// Bytes per buffer.
    pub buffer_size: usize,
    /// Buffers holding received data not yet released: queued for a
    /// receive, or leased out as [`PooledBuf`](crate::PooledBuf)s. With an
    /// incremental ring several connections' data share one buffer.
    pub held: usize,
    /// Pooled stream receives take several buffers per completion
    /// (`IORING_RECVSEND_BUNDLE`, Linux 6.10).
    pub bundles: bool,
    /// The ring is incremental (`IOU_PBUF_RING_INC`, Linux 6.12): a
    /// receive uses only the bytes it got of a buffer.
    pub incremental: bool,
}

/// Where group 1's buffer ids start in its ring entries and completions
/// (group 0's are below: at most 32768 buffers a pool).
pub(crate) const GROUP1_BASE: u16 = 1 << 15;

/// What the pool knows of one buffer.
#[derive(Default)]
struct BufState {
    /// Ring position of its last publication (finds the buffers after it
    /// in a bundle).
    pos: Cell<u16>,
    /// Bytes the kernel has filled since it was published (incremental).
    used: Cell<u32>,
    /// Pieces of it handed out (queued completions and leases).
    refs: Cell<u32>,
    /// The kernel may still write it (published, not yet moved past).
    kernel: Cell<bool>,
}

/// The pool of one runtime.
pub(crate) struct Pool {
    mem: Mapping,
    size: usize,
    count: u16,
    free: Free,
    state: Box<[BufState]>,
    mode: Cell<RingMode>,
    /// The provided-buffer group of its ring (0, or 1 for datagrams when
    /// group 0 is incremental).
    group: u16,
    /// Buffers not in the ring or on the list (held by leases or queued
    /// completions).
    out: Cell<usize>,
    /// Receives waiting for a buffer to come back.
    waiters: RefCell<Vec<Waker>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("count", &self.count)
            .field("size", &self.size)
            .field("out", &self.out.get())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// `count` buffers of `size` bytes; `ring` puts them in a provided-buffer
    /// ring (the caller registers [`ring_addr`](Self::ring_addr)).
    #[cfg(test)]
    pub(crate) fn new(count: u16, size: usize, ring: bool) -> io::Result<Rc<Pool>> {
        Self::with_group(count, size, ring, 0)
    }

    /// A pool whose ring is provided-buffer group `group`; group 1's
    /// buffers carry ids from [`GROUP1_BASE`] up in the ring, so a
    /// completion's buffer id says which ring it came from.
    pub(crate) fn with_group(
        count: u16,
        size: usize,
        ring: bool,
        group: u16,
    ) -> io::Result<Rc<Pool>> {
        if count == 0 || !count.is_power_of_two() || count > 32768 || size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "corio: the buffer pool needs a power-of-two count up to 32768 and a non-zero size",
            ));
        }
        let mem = Mapping::new(count as usize * size)?;
        let free = if ring {
            let entries = Mapping::new(count as usize * std::mem::size_of::<RingEntry>())?;
            Free::Ring {
                entries,
                mask: count - 1,
                tail: Cell::new(0),
            }
        } else {
            Free::List(RefCell::new((0..count).rev().collect()))
        };
        let pool = Rc::new(Pool {
            mem,
            size,
            count,
            free,
            state: (0..count).map(|_| BufState::default()).collect(),
            mode: Cell::new(RingMode::default()),
            group,
            out: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
        });
        if let Free::Ring { .. } = pool.free {
            for bid in 0..count {
                pool.publish(bid);
            }
        }
        Ok(pool)
    }

    /// Number of buffers.
    #[allow(dead_code)] // Registering the ring: io_uring builds only.
    pub(crate) fn count(&self) -> u16 {
        self.count
    }

    /// Its provided-buffer group.
    pub(crate) fn group(&self) -> u16 {
        self.group
    }

    /// The buffer id the kernel sees for buffer `bid`.
    fn ring_bid(&self, bid: u16) -> u16 {
        if self.group == 0 {
            bid
        } else {
            bid + GROUP1_BASE
        }
    }

    /// Size of each buffer.
    pub(crate) fn buf_size(&self) -> usize {
        self.size
    }

    /// Address of the ring's entries, for `IORING_REGISTER_PBUF_RING`.
    #[allow(dead_code)] // Registering the ring: io_uring builds only.
    pub(crate) fn ring_addr(&self) -> Option<u64> {
        match &self.free {
            Free::Ring { entries, .. } => Some(entries.ptr as u64),
            Free::List(_) => None,
        }
    }

    #[inline]
    pub(crate) fn buf_ptr(&self, bid: u16) -> *mut u8 {
        debug_assert!(bid < self.count);
        // SAFETY: `bid < count`, so the offset stays inside `mem`.
        unsafe { self.mem.ptr.add(bid as usize * self.size) }
    }

    /// Appends buffer `bid` to the ring's tail, handing it to the kernel.
    fn publish(&self, bid: u16) {
        let Free::Ring {
            entries,
            mask,
            tail,
        } = &self.free
        else {
            return;
        };
        let t = tail.get();
        let st = &self.state[bid as usize];
        st.pos.set(t);
        st.used.set(0);
        st.kernel.set(true);
        // SAFETY: the slot index is masked into the ring's `count` entries.
        // Entry 0's `resv` field is the ring's shared tail: write the other
        // fields of that entry only, then publish the tail with a release
        // store so the kernel sees the entry before the new tail. The
        // kernel is not reading this entry: it lies past the tail it knows
        // (at most `count` buffers exist, so `t & mask` is not an entry it
        // still owns).
        unsafe {
            let slot = entries.ptr.cast::<RingEntry>().add((t & mask) as usize);
            std::ptr::addr_of_mut!((*slot).addr).write(self.buf_ptr(bid) as u64);
            std::ptr::addr_of_mut!((*slot).len).write(self.size as u32);
            std::ptr::addr_of_mut!((*slot).bid).write(self.ring_bid(bid));
            let shared_tail = &*entries.ptr.add(14).cast::<AtomicU16>();
            shared_tail.store(t.wrapping_add(1), Ordering::Release);
        }
        tail.set(t.wrapping_add(1));
    }

    /// How the kernel uses the ring.
    pub(crate) fn mode(&self) -> RingMode {
        self.mode.get()
    }

    /// Sets how the kernel uses the ring (when the driver registers it,
    /// before any receive).
    #[allow(dead_code)] // Registering the ring: io_uring builds only.
    pub(crate) fn set_mode(&self, mode: RingMode) {
        debug_assert!(!mode.inc || self.size <= INC_MAX_SIZE);
        self.mode.set(mode);
    }

    /// A buffer is free (none held by leases or queued completions).
    pub(crate) fn has_free(&self) -> bool {
        self.out.get() < self.count as usize
    }

    /// Buffers holding data not yet released (queued completions and
    /// leases): the pool memory a runtime's receivers hold.
    pub(crate) fn held(&self) -> usize {
        self.state.iter().filter(|s| s.refs.get() > 0).count()
    }

    /// What [`crate::runtime::pool_usage`] reports.
    pub(crate) fn usage(&self) -> PoolUsage {
        let mode = self.mode.get();
        PoolUsage {
            buffers: self.count as usize,
            buffer_size: self.size,
            held: self.held(),
            bundles: mode.bundle,
            incremental: mode.inc,
        }
    }

    /// Takes a free buffer from the list (poll driver).
    pub(crate) fn take(&self) -> Option<u16> {
        let Free::List(list) = &self.free else {
            return None;
        };
        let bid = list.borrow_mut().pop()?;
        self.out.set(self.out.get() + 1);
        let st = &self.state[bid as usize];
        st.refs.set(1);
        Some(bid)
    }

    /// Drops one piece of buffer `bid`; once the kernel is past it and no
    /// piece is left, gives it back and wakes receives waiting for one.
    pub(crate) fn recycle(&self, bid: u16) {
        let st = &self.state[bid as usize];
        debug_assert!(st.refs.get() > 0, "buffer {bid} recycled twice");
        st.refs.set(st.refs.get().saturating_sub(1));
        if st.refs.get() > 0 || st.kernel.get() {
            return;
        }
        match &self.free {
            Free::Ring { .. } => self.publish(bid),
            Free::List(list) => list.borrow_mut().push(bid),
        }
        self.out.set(self.out.get().saturating_sub(1));
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// Puts back a buffer a receive took but did not fill (no wake-ups).
    pub(crate) fn put_back(&self, bid: u16) {
        if let Free::List(list) = &self.free {
            self.state[bid as usize].refs.set(0);
            list.borrow_mut().push(bid);
            self.out.set(self.out.get().saturating_sub(1));
        }
    }

    /// Wakes `waker` when a buffer comes back.
    pub(crate) fn wait_for_free(&self, waker: &Waker) {
        let mut w = self.waiters.borrow_mut();
        if !w.iter().any(|x| x.will_wake(waker)) {
            w.push(waker.clone());
        }
    }

    /// Memory of buffer `bid`, for a receive to fill (poll driver).
    pub(crate) fn buf_mut(&self, bid: u16) -> (*mut u8, usize) {
        (self.buf_ptr(bid), self.size)
    }

    /// `len` bytes at `off` in buffer `bid`: a piece the caller holds (a
    /// completion named it, so the kernel has written them and writes, if
    /// at all, only past them: incremental mode hands later receives the
    /// bytes after `off + len`).
    pub(crate) fn bytes(&self, bid: u16, off: usize, len: usize) -> &[u8] {
        let off = off.min(self.size);
        let len = len.min(self.size - off);
        // SAFETY: `bid < count` and `off + len` lies inside buffer `bid`,
        // part of the mapping (zeroed at first, so initialised); the caller
        // holds the piece, so nobody writes these bytes meanwhile.
        unsafe { std::slice::from_raw_parts(self.buf_ptr(bid).add(off), len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::PooledBuf;

    #[test]
    fn list_pool_takes_and_recycles() {
        let pool = Pool::new(4, 64, false).unwrap();
        let ids: Vec<u16> = (0..4).map(|_| pool.take().unwrap()).collect();
        assert!(pool.take().is_none());
        assert!(!pool.has_free());
        let lease = PooledBuf::from_pool(pool.clone(), ids[2], 0, 0, 10);
        assert_eq!(lease.len(), 10);
        drop(lease);
        assert!(pool.has_free());
        assert_eq!(pool.take(), Some(ids[2]));
    }

    #[test]
    fn a_lease_reports_its_length_as_io_buf_without_making_the_slice() {
        use crate::buf::IoBuf;
        let pool = Pool::new(4, 64, false).unwrap();
        let bid = pool.take().unwrap();
        // Asked for more than the buffer holds past `off`: clamped.
        let lease = PooledBuf::from_pool(pool.clone(), bid, 8, 16, 100);
        assert_eq!(lease.len(), 48);
        assert_eq!(lease.bytes_init(), lease.len());
        assert_eq!(lease.bytes_total(), lease.len());
        let owned = PooledBuf::owned_at(vec![7; 20], 6);
        assert_eq!(owned.len(), 14);
        assert_eq!(owned.bytes_init(), 14);
        assert_eq!(owned.bytes_total(), 14);
        let past = PooledBuf::owned_at(vec![7; 4], 9);
        assert_eq!((past.len(), past.bytes_init()), (0, 0));
        // The pointer a send names is where the data starts, also made
        // without the slice; an offset past the buffer was clamped.
        for l in [&lease, &owned, &past] {
            assert_eq!(l.stable_ptr(), l.as_ptr());
        }
        let beyond = PooledBuf::from_pool(pool.clone(), pool.take().unwrap(), 0, 80, 8);
        assert_eq!((beyond.len(), beyond.stable_ptr()), (0, beyond.as_ptr()));
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(Pool::new(3, 64, false).is_err());
        assert!(Pool::new(4, 0, true).is_err());
    }
}
