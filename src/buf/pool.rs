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

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::Waker;

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

/// The pool of one runtime.
pub(crate) struct Pool {
    mem: Mapping,
    size: usize,
    count: u16,
    free: Free,
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
    pub(crate) fn new(count: u16, size: usize, ring: bool) -> io::Result<Rc<Pool>> {
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

    fn buf_ptr(&self, bid: u16) -> *mut u8 {
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
        let entry = RingEntry {
            addr: self.buf_ptr(bid) as u64,
            len: self.size as u32,
            bid,
            resv: 0,
        };
        // SAFETY: the slot index is masked into the ring's `count` entries.
        // Entry 0's `resv` field is the ring's shared tail: write the other
        // fields of that entry only, then publish the tail with a release
        // store so the kernel sees the entry before the new tail.
        unsafe {
            let slot = entries.ptr.cast::<RingEntry>().add((t & mask) as usize);
            std::ptr::addr_of_mut!((*slot).addr).write(entry.addr);
            std::ptr::addr_of_mut!((*slot).len).write(entry.len);
            std::ptr::addr_of_mut!((*slot).bid).write(entry.bid);
            let shared_tail = &*entries.ptr.add(14).cast::<AtomicU16>();
            shared_tail.store(t.wrapping_add(1), Ordering::Release);
        }
        tail.set(t.wrapping_add(1));
    }

    /// The kernel (or a receive on the poll driver) took a buffer.
    pub(crate) fn note_taken(&self) {
        self.out.set(self.out.get() + 1);
    }

    /// A buffer is free (none held by leases or queued completions).
    pub(crate) fn has_free(&self) -> bool {
        self.out.get() < self.count as usize
    }

    /// Takes a free buffer from the list (poll driver).
    pub(crate) fn take(&self) -> Option<u16> {
        let Free::List(list) = &self.free else {
            return None;
        };
        let bid = list.borrow_mut().pop()?;
        self.note_taken();
        Some(bid)
    }

    /// Gives buffer `bid` back and wakes receives waiting for one.
    pub(crate) fn recycle(&self, bid: u16) {
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

    /// The whole of buffer `bid`, which the caller holds (the kernel filled
    /// it and no longer writes it).
    pub(crate) fn buf(&self, bid: u16) -> &[u8] {
        // SAFETY: `bid < count` and buffer `bid` is `size` bytes of the
        // mapping (zeroed at first, so initialised); the caller holds it, so
        // neither the kernel nor a lease writes it meanwhile.
        unsafe { std::slice::from_raw_parts(self.buf_ptr(bid), self.size) }
    }
}

/// A received buffer leased from the runtime's pool.
///
/// It derefs to the bytes received. Dropping it returns the buffer to the
/// pool, where the next receive (on any socket) can use it; hold leases
/// briefly, or copy out what you keep, so the pool does not run dry.
pub struct PooledBuf {
    inner: Lease,
}

enum Lease {
    Pool {
        pool: Rc<Pool>,
        bid: u16,
        /// Where the data starts in the buffer (after a datagram's header).
        off: u32,
        len: u32,
    },
    /// Bytes kept on the socket by a dropped plain read, handed out from
    /// `off` (after a datagram's header).
    Owned(Vec<u8>, u32),
}

impl PooledBuf {
    /// A lease on buffer `bid`, whose data are `len` bytes at `off`.
    pub(crate) fn from_pool(pool: Rc<Pool>, bid: u16, off: usize, len: usize) -> PooledBuf {
        let len = len.min(pool.size.saturating_sub(off));
        PooledBuf {
            inner: Lease::Pool {
                pool,
                bid,
                off: off as u32,
                len: len as u32,
            },
        }
    }

    pub(crate) fn owned(data: Vec<u8>) -> PooledBuf {
        Self::owned_at(data, 0)
    }

    /// Owned bytes whose data start at `off` (at most their length).
    pub(crate) fn owned_at(data: Vec<u8>, off: usize) -> PooledBuf {
        let off = off.min(data.len()) as u32;
        PooledBuf {
            inner: Lease::Owned(data, off),
        }
    }

    /// The bytes before the data (a datagram's header: see
    /// `op/pooled_layout.rs`).
    pub(crate) fn header(&self) -> &[u8] {
        match &self.inner {
            Lease::Pool { pool, bid, off, .. } => {
                // SAFETY: as in `deref`: the lease owns buffer `bid`, and
                // `off` lies inside it.
                unsafe { std::slice::from_raw_parts(pool.buf_ptr(*bid), *off as usize) }
            }
            Lease::Owned(v, off) => &v[..*off as usize],
        }
    }

    /// The buffer id in the pool (`None` for bytes kept from a dropped read).
    pub fn buffer_id(&self) -> Option<u16> {
        match &self.inner {
            Lease::Pool { bid, .. } => Some(*bid),
            Lease::Owned(..) => None,
        }
    }
}

impl Deref for PooledBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.inner {
            Lease::Pool {
                pool,
                bid,
                off,
                len,
            } => {
                // SAFETY: the lease owns buffer `bid` until dropped: neither
                // the kernel nor another lease writes it, and `off + len`
                // lies inside it (clamped in `from_pool`; the mapping is
                // zeroed, so every byte is initialised).
                unsafe {
                    std::slice::from_raw_parts(pool.buf_ptr(*bid).add(*off as usize), *len as usize)
                }
            }
            Lease::Owned(v, off) => &v[*off as usize..],
        }
    }
}

// SAFETY: a lease's bytes live in the pool's mapping (or in its own Vec's
// heap buffer), which does not move with the lease and stays valid while
// the lease (holding the pool) lives; nobody else writes them meanwhile.
unsafe impl crate::buf::IoBuf for PooledBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.len()
    }

    fn bytes_total(&self) -> usize {
        self.len()
    }
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Lease::Pool { pool, bid, .. } = &self.inner {
            pool.recycle(*bid);
        }
    }
}

impl fmt::Debug for PooledBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuf")
            .field("buffer_id", &self.buffer_id())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_pool_takes_and_recycles() {
        let pool = Pool::new(4, 64, false).unwrap();
        let ids: Vec<u16> = (0..4).map(|_| pool.take().unwrap()).collect();
        assert!(pool.take().is_none());
        assert!(!pool.has_free());
        let lease = PooledBuf::from_pool(pool.clone(), ids[2], 0, 10);
        assert_eq!(lease.len(), 10);
        drop(lease);
        assert!(pool.has_free());
        assert_eq!(pool.take(), Some(ids[2]));
    }

    #[test]
    fn ring_pool_publishes_every_buffer_and_recycles_to_the_tail() {
        let pool = Pool::new(8, 32, true).unwrap();
        let Free::Ring { entries, tail, .. } = &pool.free else {
            panic!("not a ring pool")
        };
        assert_eq!(tail.get(), 8);
        // SAFETY: reading the shared tail of a ring we own.
        let shared = unsafe { &*entries.ptr.add(14).cast::<AtomicU16>() };
        assert_eq!(shared.load(Ordering::Acquire), 8);
        pool.note_taken();
        pool.recycle(5);
        assert_eq!(shared.load(Ordering::Acquire), 9);
        // Entry 8 & 7 = slot 0 was rewritten with buffer 5.
        // SAFETY: slot 0 lies inside the entries mapping.
        let e0 = unsafe { &*entries.ptr.cast::<RingEntry>() };
        assert_eq!(e0.bid, 5);
        assert_eq!(e0.addr, pool.buf_ptr(5) as u64);
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(Pool::new(3, 64, false).is_err());
        assert!(Pool::new(4, 0, true).is_err());
    }
}
