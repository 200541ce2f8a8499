//! A lease on received bytes: a piece of a pool buffer, or bytes kept on a
//! socket by a dropped read.
//!
//! How it works: a lease names its buffer, where its piece starts and where
//! its data lie; dropping it releases the piece (`Pool::recycle`), and the
//! pool republishes the buffer once no piece is out and the kernel has
//! moved past it.

use std::fmt;
use std::ops::Deref;
use std::rc::Rc;

use super::pool::Pool;

/// A received buffer leased from the runtime's pool.
///
/// It derefs to the bytes received. Dropping it returns the buffer to the
/// pool, where the next receive (on any socket) can use it; hold leases
/// briefly, or copy out what you keep, so the pool does not run dry. With
/// an incremental ring (Linux 6.12+, see
/// [`pool_usage`](crate::runtime::pool_usage)) several leases, of any
/// connections, may lie in one pool buffer, each on its own bytes; the
/// buffer goes back once the kernel has filled it and all are dropped.
pub struct PooledBuf {
    inner: Lease,
}

enum Lease {
    Pool {
        pool: Rc<Pool>,
        bid: u16,
        /// Where the piece starts in the buffer (0 unless the ring is
        /// incremental).
        start: u32,
        /// Where the data starts in the buffer (after a datagram's header).
        off: u32,
        len: u32,
    },
    /// Bytes kept on the socket by a dropped plain read, handed out from
    /// `off` (after a datagram's header).
    Owned(Vec<u8>, u32),
}

impl PooledBuf {
    /// A lease on one piece of buffer `bid` (one of the pieces the pool
    /// counted for it), whose piece starts at `start` and whose data are
    /// `len` bytes at `off`. Dropping it releases the piece.
    pub(crate) fn from_pool(
        pool: Rc<Pool>,
        bid: u16,
        start: usize,
        off: usize,
        len: usize,
    ) -> PooledBuf {
        let size = pool.buf_size();
        let off = off.min(size);
        let start = start.min(off);
        let len = len.min(size - off);
        PooledBuf {
            inner: Lease::Pool {
                pool,
                bid,
                start: start as u32,
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
            Lease::Pool {
                pool,
                bid,
                start,
                off,
                ..
            } => pool.bytes(*bid, *start as usize, (*off - *start) as usize),
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
                ..
            } => {
                // The lease holds its piece until dropped: a completion named
                // these bytes, so the kernel has written them and will not
                // again (an incremental buffer takes later receives past
                // them), the buffer is not republished while a piece is out,
                // and no other lease covers them.
                pool.bytes(*bid, *off as usize, *len as usize)
            }
            Lease::Owned(v, off) => &v[*off as usize..],
        }
    }
}

// SAFETY: a lease's bytes live in the pool's mapping (or in its own Vec's
// heap buffer), which does not move with the lease and stays valid while
// the lease (holding the pool) lives; nobody writes them meanwhile (see
// `deref`).
unsafe impl crate::buf::IoBuf for PooledBuf {
    /// The data's start, straight from the lease (no slice made: `off` was
    /// clamped into the buffer when the lease was made).
    #[inline]
    fn stable_ptr(&self) -> *const u8 {
        match &self.inner {
            Lease::Pool { pool, bid, off, .. } => pool.buf_ptr(*bid).wrapping_add(*off as usize),
            Lease::Owned(v, off) => v.as_ptr().wrapping_add(*off as usize),
        }
    }

    #[inline]
    fn bytes_init(&self) -> usize {
        self.data_len()
    }

    #[inline]
    fn bytes_total(&self) -> usize {
        self.data_len()
    }
}

impl PooledBuf {
    /// `self.len()` without making the slice: `from_pool` clamped `len`
    /// into the buffer already, so it is what `deref` yields.
    #[inline]
    fn data_len(&self) -> usize {
        match &self.inner {
            Lease::Pool { len, .. } => *len as usize,
            Lease::Owned(v, off) => v.len() - *off as usize,
        }
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
