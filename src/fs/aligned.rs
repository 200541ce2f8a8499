//! [`AlignedBuf`]: an owned buffer whose memory starts on an alignment
//! boundary, as `O_DIRECT` I/O needs.
//!
//! How it works: one zeroed heap allocation with the requested alignment;
//! since every byte is initialised from the start, the length can be set
//! freely up to the capacity.

use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::ops::{Deref, DerefMut};

use super::region::Region;
use crate::buf::{IoBuf, IoBufMut};

/// An owned, zero-initialised buffer aligned to a power of two, for
/// `O_DIRECT` reads and writes (whose buffer, position and length must all
/// be multiples of the device's block size).
///
/// Reads fill it from its start up to its capacity and set its length;
/// writes send its first `len()` bytes.
///
/// ```no_run
/// use corio::fs::{AlignedBuf, OpenOptions};
///
/// corio::run(async {
///     let file = OpenOptions::new()
///         .read(true)
///         .custom_flags(libc::O_DIRECT)
///         .open("/var/tmp/data.bin")
///         .await?;
///     let align = file.metadata().await?.direct_io_align();
///     let (res, buf) = file.read_at(AlignedBuf::new(64 * 1024, align), 0).await;
///     println!("read {} bytes", res?);
///     assert_eq!(buf.as_ptr() as usize % align, 0);
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub struct AlignedBuf {
    region: Region,
    /// The allocation's layout (at least one byte).
    layout: Layout,
}

impl AlignedBuf {
    /// A buffer of `capacity` bytes (all zero, length 0) aligned to `align`.
    ///
    /// # Panics
    ///
    /// Panics if `align` is not a power of two, or the size overflows.
    pub fn new(capacity: usize, align: usize) -> AlignedBuf {
        assert!(
            align.is_power_of_two(),
            "corio: AlignedBuf alignment {align} is not a power of two"
        );
        // A zero-sized allocation is not allowed: keep at least one byte.
        let layout = Layout::from_size_align(capacity.max(1), align)
            .expect("corio: AlignedBuf size overflows");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            handle_alloc_error(layout);
        }
        AlignedBuf {
            // SAFETY: a fresh zeroed allocation of at least `capacity` bytes,
            // owned by this value until `drop` frees it.
            region: unsafe { Region::new(ptr, capacity) },
            layout,
        }
    }

    /// The number of bytes the buffer holds (what a write sends).
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// True when the length is 0.
    pub fn is_empty(&self) -> bool {
        self.region.len() == 0
    }

    /// The size of the memory (what a read may fill).
    pub fn capacity(&self) -> usize {
        self.region.capacity()
    }

    /// The alignment of the memory.
    pub fn align(&self) -> usize {
        self.layout.align()
    }

    /// Sets the length; the memory is always initialised, so any length up
    /// to the capacity is valid.
    ///
    /// # Panics
    ///
    /// Panics if `len > capacity()`.
    pub fn set_len(&mut self, len: usize) {
        self.region.set_len(len, "AlignedBuf");
    }

    /// Sets the length to 0.
    pub fn clear(&mut self) {
        self.region.set_len(0, "AlignedBuf");
    }

    /// Appends `data` after the current length.
    ///
    /// # Panics
    ///
    /// Panics if it does not fit in the capacity.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.region.extend_from_slice(data, "AlignedBuf");
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated with this layout.
        unsafe { dealloc(self.region.ptr(), self.layout) };
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.region.len())
            .field("capacity", &self.capacity())
            .field("align", &self.align())
            .finish()
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.region.as_slice()
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.region.as_mut_slice()
    }
}

// SAFETY: the buffer owns its memory exclusively, like a `Box<[u8]>`.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads.
unsafe impl Sync for AlignedBuf {}

// SAFETY: the memory is a heap allocation that does not move with the value,
// valid for `capacity` bytes, all initialised; `len <= capacity`.
unsafe impl IoBuf for AlignedBuf {
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

// SAFETY: the same pointer, writable; `set_init` only grows the length.
unsafe impl IoBufMut for AlignedBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.region.ptr()
    }

    unsafe fn set_init(&mut self, pos: usize) {
        self.region.grow_len(pos);
    }
}
