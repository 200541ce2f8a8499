//! [`FixedBufPool`] and [`FixedBuf`]: buffers registered with the ring for
//! `READ_FIXED` / `WRITE_FIXED`.
//!
//! How it works: the pool is one page-aligned, zeroed allocation cut into
//! `count` buffers, registered with the runtime's ring
//! (`IORING_REGISTER_BUFFERS`, buffer `i` at index `i`) so the kernel pins
//! its pages once instead of per I/O. [`FixedBufPool::get`] leases a free
//! buffer; dropping the lease returns it.
//!
//! Lifetimes: every lease (and every op holding one, even abandoned in the
//! driver until its completion) keeps the pool's memory alive through an
//! `Rc`, so the kernel never writes to freed memory. The registration is
//! owned by a token the driver watches: when the last handle and lease go,
//! the pool unregisters the buffers, then frees the memory. If that happens
//! inside the driver (the lease was in an abandoned op that just completed),
//! the unregister is left to the next registration or to the ring's end; the
//! stale table is harmless because an op names a fixed index only when the
//! driver says its pool owns the current registration. A ring has one buffer
//! table, so a runtime has at most one live pool (on both drivers, so code
//! behaves the same on each). On the poll driver nothing is registered and
//! fixed reads are plain preads into the same memory.

use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::cell::RefCell;
use std::io;
use std::ops::{Deref, DerefMut};
use std::rc::{Rc, Weak};

use super::region::Region;
use crate::buf::{IoBuf, IoBufMut};
use crate::runtime::context;
use crate::runtime::core::Core;

/// The most buffers a ring can register (`IORING_MAX_REG_BUFFERS`).
const MAX_BUFFERS: usize = 1 << 14;
/// The largest registered buffer the kernel accepts.
const MAX_SIZE: usize = 1 << 30;
const PAGE: usize = 4096;

thread_local! {
    /// Live pools on this thread and their runtimes: one per runtime.
    static POOLS: RefCell<Vec<(Weak<Core>, Weak<()>)>> = const { RefCell::new(Vec::new()) };
}

/// A pool of buffers registered with the runtime's io_uring, for
/// [`File::read_fixed_at`] and [`File::write_fixed_at`].
///
/// Registered buffers save the kernel from pinning and unpinning the
/// buffer's pages on every read, which makes small cached reads
/// measurably faster. Each buffer starts on a 4 KiB boundary, so the buffers
/// also suit `O_DIRECT`.
///
/// A runtime has at most one live pool (io_uring keeps one buffer table per
/// ring); a second [`new`](FixedBufPool::new) fails with `ResourceBusy`
/// until the first pool and all its buffers are dropped. The registered
/// memory counts against `RLIMIT_MEMLOCK` for users without
/// `CAP_IPC_LOCK`. On the poll driver the buffers are plain memory.
///
/// [`File::read_fixed_at`]: super::File::read_fixed_at
/// [`File::write_fixed_at`]: super::File::write_fixed_at
///
/// ```no_run
/// use corio::fs::{File, FixedBufPool};
///
/// corio::run(async {
///     let pool = FixedBufPool::new(8, 4096)?;
///     let file = File::open("/etc/hostname").await?;
///     let buf = pool.get().expect("a free buffer");
///     let (res, buf) = file.read_fixed_at(buf, 0).await;
///     println!("{:?}", std::str::from_utf8(&buf[..res?]));
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct FixedBufPool {
    inner: Rc<PoolInner>,
}

struct PoolInner {
    mem: *mut u8,
    layout: Layout,
    /// Distance between buffers (the size rounded up to a page).
    stride: usize,
    size: usize,
    count: usize,
    free: RefCell<Vec<u16>>,
    core: Weak<Core>,
    /// Owns the ring's registration; the driver holds a `Weak` of it, dead
    /// once this drops.
    _token: Rc<()>,
    token_weak: Weak<()>,
}

impl FixedBufPool {
    /// Allocates `count` buffers of `size` bytes and registers them with the
    /// current runtime's ring.
    ///
    /// Fails with `InvalidInput` for a count outside `1..=16384` or a size
    /// outside `1..=1 GiB`, `ResourceBusy` when the runtime already has a
    /// live pool, and with the kernel's error when registering fails (say
    /// `ENOMEM` over the memlock limit).
    ///
    /// # Panics
    ///
    /// Panics outside a corio runtime.
    #[track_caller]
    pub fn new(count: usize, size: usize) -> io::Result<FixedBufPool> {
        let core = context::current("FixedBufPool::new");
        if !(1..=MAX_BUFFERS).contains(&count) || !(1..=MAX_SIZE).contains(&size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "corio: a FixedBufPool needs 1..={MAX_BUFFERS} buffers of 1..={MAX_SIZE} bytes"
                ),
            ));
        }
        let busy = POOLS.with(|p| {
            let mut p = p.borrow_mut();
            p.retain(|(_, token)| token.strong_count() > 0);
            p.iter()
                .any(|(c, _)| std::ptr::eq(c.as_ptr(), Rc::as_ptr(&core)))
        });
        if busy {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "corio: this runtime already has a FixedBufPool (io_uring registers one \
                 buffer table per ring); drop it and its buffers first",
            ));
        }
        let stride = size.div_ceil(PAGE) * PAGE;
        let layout = stride
            .checked_mul(count)
            .and_then(|total| Layout::from_size_align(total, PAGE).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "corio: pool too large"))?;
        // SAFETY: the layout is at least one page.
        let mem = unsafe { alloc_zeroed(layout) };
        if mem.is_null() {
            handle_alloc_error(layout);
        }
        let token = Rc::new(());
        let inner = Rc::new(PoolInner {
            mem,
            layout,
            stride,
            size,
            count,
            // Handed out from the end: buffer 0 first.
            free: RefCell::new((0..count as u16).rev().collect()),
            core: Rc::downgrade(&core),
            token_weak: Rc::downgrade(&token),
            _token: token,
        });
        let iovecs: Vec<libc::iovec> = (0..count)
            .map(|i| libc::iovec {
                // SAFETY: `i * stride` is inside the allocation.
                iov_base: unsafe { mem.add(i * stride) }.cast(),
                iov_len: size,
            })
            .collect();
        // SAFETY: the memory stays allocated while the token lives (both go
        // with `PoolInner`, the memory after the unregister attempt), and an
        // op names an index only while the driver says this token owns the
        // registration (`FixedBuf::ring_index`).
        let registered = unsafe {
            core.driver
                .borrow_mut()
                .register_buffers(&iovecs, inner.token_weak.clone())
        };
        // On failure `inner` drops here: nothing registered, memory freed.
        registered?;
        POOLS.with(|p| {
            p.borrow_mut()
                .push((Rc::downgrade(&core), inner.token_weak.clone()))
        });
        Ok(FixedBufPool { inner })
    }

    /// Leases a free buffer (length 0), or `None` when all are in use.
    pub fn get(&self) -> Option<FixedBuf> {
        let index = self.inner.free.borrow_mut().pop()?;
        // SAFETY: `index < count`, so the buffer lies inside the allocation.
        let ptr = unsafe { self.inner.mem.add(index as usize * self.inner.stride) };
        Some(FixedBuf {
            pool: self.inner.clone(),
            index,
            // SAFETY: buffer `index` is `size` initialised bytes of the pool's
            // allocation, which the lease keeps alive; it is leased to this
            // value alone until it is dropped.
            region: unsafe { Region::new(ptr, self.inner.size) },
        })
    }

    /// The number of buffers.
    pub fn count(&self) -> usize {
        self.inner.count
    }

    /// The size of each buffer.
    pub fn buf_size(&self) -> usize {
        self.inner.size
    }

    /// The number of buffers not leased.
    pub fn available(&self) -> usize {
        self.inner.free.borrow().len()
    }

    /// True when fixed reads and writes on the current runtime use the
    /// registered buffers (io_uring, and this is the runtime that made the
    /// pool); false on the poll driver, where they are plain reads and writes.
    pub fn is_registered(&self) -> bool {
        context::with_core(|c| {
            c.is_some_and(|c| c.driver.borrow().buffers_owned_by(&self.inner.token_weak))
        })
    }
}

impl std::fmt::Debug for FixedBufPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedBufPool")
            .field("count", &self.inner.count)
            .field("buf_size", &self.inner.size)
            .field("available", &self.available())
            .finish()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // No lease is left, so no op uses the buffers: free the memory, and
        // have the driver unregister them at its next turn (this may run
        // inside the driver). Until then the registration is stale, which is
        // harmless: no op names it (see the module docs).
        if let Some(core) = self.core.upgrade() {
            crate::release::push(
                &core.owner,
                crate::release::Release::Unregister(self.token_weak.clone()),
            );
        }
        // SAFETY: allocated in `new` with this layout; nothing uses it now.
        unsafe { dealloc(self.mem, self.layout) };
    }
}

/// A buffer leased from a [`FixedBufPool`]; dropping it returns it.
///
/// Reads fill it from its start up to [`capacity`](FixedBuf::capacity) and
/// set its length; writes send its first `len()` bytes. It also works with
/// the plain I/O methods, as any owned buffer.
pub struct FixedBuf {
    pool: Rc<PoolInner>,
    index: u16,
    region: Region,
}

impl FixedBuf {
    /// The buffer's index in the pool (and in the ring's registration).
    pub fn index(&self) -> u16 {
        self.index
    }

    /// The number of bytes the buffer holds.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// True when the length is 0.
    pub fn is_empty(&self) -> bool {
        self.region.len() == 0
    }

    /// The buffer's size.
    pub fn capacity(&self) -> usize {
        self.region.capacity()
    }

    /// Sets the length. The memory is always initialised (zeroed when the
    /// pool was made, or left from earlier use), so any length up to the
    /// capacity is valid.
    ///
    /// # Panics
    ///
    /// Panics if `len > capacity()`.
    pub fn set_len(&mut self, len: usize) {
        self.region.set_len(len, "FixedBuf");
    }

    /// Sets the length to 0.
    pub fn clear(&mut self) {
        self.region.set_len(0, "FixedBuf");
    }

    /// Appends `data` after the current length.
    ///
    /// # Panics
    ///
    /// Panics if it does not fit in the capacity.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.region.extend_from_slice(data, "FixedBuf");
    }

    /// The index to name in a fixed op on the current runtime: `Some` when
    /// its ring has this buffer's pool registered.
    pub(crate) fn ring_index(&self) -> Option<u16> {
        let owned = context::with_core(|c| {
            c.is_some_and(|c| c.driver.borrow().buffers_owned_by(&self.pool.token_weak))
        });
        owned.then_some(self.index)
    }
}

impl Drop for FixedBuf {
    fn drop(&mut self) {
        self.pool.free.borrow_mut().push(self.index);
    }
}

impl std::fmt::Debug for FixedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixedBuf")
            .field("index", &self.index)
            .field("len", &self.region.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl Deref for FixedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.region.as_slice()
    }
}

impl DerefMut for FixedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.region.as_mut_slice()
    }
}

// SAFETY: the memory belongs to the pool's heap allocation, which the lease
// keeps alive and which does not move; the buffer is `capacity` bytes, all
// initialised, and leased to this value alone; `len <= capacity`.
unsafe impl IoBuf for FixedBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.region.ptr()
    }

    fn bytes_init(&self) -> usize {
        self.region.len()
    }

    fn bytes_total(&self) -> usize {
        self.region.capacity()
    }
}

// SAFETY: the same pointer, writable by this lease alone; `set_init` only
// grows the length.
unsafe impl IoBufMut for FixedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.region.ptr()
    }

    unsafe fn set_init(&mut self, pos: usize) {
        self.region.grow_len(pos);
    }
}
