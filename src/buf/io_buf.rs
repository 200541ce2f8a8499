//! The [`IoBuf`] / [`IoBufMut`] traits and their implementations for std and `bytes` types.
//!
//! How it works: each implementation exposes a raw pointer to heap or
//! `'static` memory (which does not move when the owning value moves), the
//! number of initialized bytes (what a write sends) and the total capacity
//! (what a read may fill). After a read, the runtime calls
//! [`IoBufMut::set_init`] so the buffer's length covers the bytes the kernel
//! wrote.

use std::ops::{Bound, RangeBounds};

use super::Slice;

/// Result of an owned-buffer I/O op: the buffer always comes back, even on error.
pub type BufResult<T, B> = (std::io::Result<T>, B);

/// A buffer whose memory can be read by the kernel for the duration of an io_uring operation.
///
/// Implemented for `Vec<u8>`, `Box<[u8]>`, [`bytes::Bytes`], [`bytes::BytesMut`],
/// `&'static [u8]`, `&'static str` and [`Slice`] of any of these.
///
/// Note: for an empty buffer (e.g. a `Vec` with capacity 0) the pointer may be
/// dangling. That is fine: the operation length will then be 0, so the kernel
/// never dereferences it.
///
/// # Safety
///
/// Implementors must guarantee that, for as long as the value is alive and is
/// not mutated through other means (including while the value is moved):
///
/// * [`stable_ptr`](IoBuf::stable_ptr) returns the same pointer every time and
///   the memory it points to does not move (it lives on the heap or is
///   `'static`, never inline in the value);
/// * the pointer is valid for reads of [`bytes_total`](IoBuf::bytes_total)
///   bytes, of which the first [`bytes_init`](IoBuf::bytes_init) are
///   initialized;
/// * `bytes_init() <= bytes_total()`.
pub unsafe trait IoBuf: Unpin + 'static {
    /// Returns a pointer to the start of the buffer's memory.
    ///
    /// The pointer stays valid when `self` is moved. It may be dangling if
    /// [`bytes_total`](IoBuf::bytes_total) is 0.
    fn stable_ptr(&self) -> *const u8;

    /// Number of initialized bytes (e.g. `Vec::len`); this is what a write sends.
    fn bytes_init(&self) -> usize;

    /// Total number of bytes of memory (e.g. `Vec::capacity`); this is what a read may fill.
    fn bytes_total(&self) -> usize;

    /// Returns a view of a sub-range of the buffer that owns the buffer.
    ///
    /// The range is relative to the start of the buffer and may extend past
    /// the initialized bytes, up to [`bytes_total`](IoBuf::bytes_total). An
    /// unbounded end means `bytes_total()`. Use [`Slice::into_inner`] to get
    /// the buffer back.
    ///
    /// # Panics
    ///
    /// Panics if the range start is greater than its end, or if the end is
    /// greater than `bytes_total()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use corio::IoBuf;
    ///
    /// let buf = b"hello world".to_vec().slice(6..);
    /// assert_eq!(&buf[..], b"world");
    /// ```
    fn slice(self, range: impl RangeBounds<usize>) -> Slice<Self>
    where
        Self: Sized,
    {
        let begin = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n.checked_add(1).expect("slice range start overflows usize"),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&n) => n.checked_add(1).expect("slice range end overflows usize"),
            Bound::Excluded(&n) => n,
            Bound::Unbounded => self.bytes_total(),
        };
        assert!(
            begin <= end,
            "slice range start ({begin}) is greater than its end ({end})"
        );
        let total = self.bytes_total();
        assert!(
            end <= total,
            "slice range end ({end}) is out of bounds of buffer of total size {total}"
        );
        Slice::new(self, begin, end)
    }
}

/// A buffer whose memory can be written by the kernel for the duration of an io_uring operation.
///
/// Implemented for `Vec<u8>`, `Box<[u8]>`, [`bytes::BytesMut`] and [`Slice`] of
/// any of these.
///
/// # Safety
///
/// In addition to the [`IoBuf`] requirements, implementors must guarantee that
/// [`stable_mut_ptr`](IoBufMut::stable_mut_ptr) returns the same address as
/// [`stable_ptr`](IoBuf::stable_ptr), valid for writes of `bytes_total()`
/// bytes under the same stability rules, and that
/// [`set_init`](IoBufMut::set_init) never shrinks `bytes_init()`.
pub unsafe trait IoBufMut: IoBuf {
    /// Returns a mutable pointer to the start of the buffer's memory.
    ///
    /// The pointer stays valid when `self` is moved. It may be dangling if
    /// [`bytes_total`](IoBuf::bytes_total) is 0.
    fn stable_mut_ptr(&mut self) -> *mut u8;

    /// Marks the first `pos` bytes as initialized (e.g. `Vec::set_len(max(len, pos))`).
    ///
    /// Never shrinks the initialized length: if `pos <= bytes_init()` this is a no-op.
    ///
    /// # Safety
    ///
    /// The caller must ensure that `pos <= bytes_total()` and that all bytes
    /// in `0..pos` have been initialized (for example, written by the kernel
    /// or already initialized before).
    unsafe fn set_init(&mut self, pos: usize);
}

// SAFETY: a Vec's data lives on the heap (or is dangling when capacity is 0,
// in which case bytes_total is 0) and does not move when the Vec is moved;
// `len <= capacity` and the first `len` elements are initialized.
unsafe impl IoBuf for Vec<u8> {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.len()
    }

    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: `as_mut_ptr` returns the same heap pointer as `as_ptr`, valid for
// writes of `capacity` bytes; `set_init` only ever grows the length.
unsafe impl IoBufMut for Vec<u8> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }

    unsafe fn set_init(&mut self, pos: usize) {
        if self.len() < pos {
            // SAFETY: the caller guarantees `pos <= capacity()` and that the
            // bytes in `0..pos` are initialized.
            unsafe { self.set_len(pos) };
        }
    }
}

/// Implements `IoBuf` for fully initialized types whose size is their length.
macro_rules! impl_io_buf_full {
    ($($ty:ty),* $(,)?) => {$(
        // SAFETY: the bytes live on the heap or in `'static` memory (or the
        // pointer is dangling when empty, with `bytes_total == 0`) and do not
        // move when the value is moved; all `len` bytes are initialized, so
        // `bytes_init == bytes_total == len`.
        unsafe impl IoBuf for $ty {
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
    )*};
}

// `Bytes` gets only `IoBuf` (read-only) since its memory may be shared.
impl_io_buf_full!(Box<[u8]>, bytes::Bytes, &'static [u8], &'static str);

// SAFETY: `as_mut_ptr` returns the same heap pointer as `as_ptr`, valid for
// writes of `len` bytes; the box is always fully initialized so `set_init`
// has nothing to do and never shrinks anything.
unsafe impl IoBufMut for Box<[u8]> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }

    unsafe fn set_init(&mut self, _pos: usize) {}
}

// SAFETY: `BytesMut` data lives on the heap (or is dangling when capacity is
// 0) and does not move when the handle is moved; `len <= capacity` and the
// first `len` bytes are initialized.
unsafe impl IoBuf for bytes::BytesMut {
    fn stable_ptr(&self) -> *const u8 {
        self.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.len()
    }

    fn bytes_total(&self) -> usize {
        self.capacity()
    }
}

// SAFETY: `as_mut_ptr` returns the same heap pointer as `as_ptr`, uniquely
// owned by this `BytesMut` and valid for writes of `capacity` bytes;
// `set_init` only ever grows the length.
unsafe impl IoBufMut for bytes::BytesMut {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.as_mut_ptr()
    }

    unsafe fn set_init(&mut self, pos: usize) {
        if self.len() < pos {
            // SAFETY: the caller guarantees `pos <= capacity()` and that the
            // bytes in `0..pos` are initialized.
            unsafe { self.set_len(pos) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};

    #[test]
    fn vec_init_and_total() {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(b"abc");
        assert_eq!(v.bytes_init(), 3);
        assert_eq!(v.bytes_total(), v.capacity());
        assert!(v.bytes_total() >= 16);
        assert_eq!(v.stable_ptr(), v.as_ptr());
    }

    #[test]
    fn vec_ptr_stable_across_move() {
        let v = Vec::<u8>::with_capacity(8);
        let p = v.stable_ptr();
        let moved = Box::new(v);
        assert_eq!(moved.stable_ptr(), p);
    }

    #[test]
    fn vec_set_init_grows_never_shrinks() {
        let mut v = Vec::with_capacity(8);
        v.extend_from_slice(b"ab");
        let p = v.stable_mut_ptr();
        // SAFETY: bytes 2..5 are within capacity (8) and written before set_init.
        unsafe {
            p.add(2).copy_from_nonoverlapping(b"cde".as_ptr(), 3);
            v.set_init(5);
        }
        assert_eq!(v, b"abcde");
        // SAFETY: 1 <= capacity and bytes 0..1 are initialized.
        unsafe { v.set_init(1) };
        assert_eq!(v.len(), 5);
    }

    #[test]
    fn empty_vec_is_zero_sized() {
        let v = Vec::<u8>::new();
        assert_eq!(v.bytes_init(), 0);
        assert_eq!(v.bytes_total(), 0);
    }

    #[test]
    fn boxed_slice_fully_initialized() {
        let mut b: Box<[u8]> = vec![1, 2, 3, 4].into_boxed_slice();
        assert_eq!(b.bytes_init(), 4);
        assert_eq!(b.bytes_total(), 4);
        // SAFETY: no-op for boxed slices; 0 <= len.
        unsafe { b.set_init(0) };
        assert_eq!(b.bytes_init(), 4);
        assert_eq!(b.stable_mut_ptr().cast_const(), b.stable_ptr());
    }

    #[test]
    fn bytes_and_static_pointers() {
        static DATA: &[u8] = b"hello";
        let b = Bytes::from_static(DATA);
        assert_eq!(b.stable_ptr(), DATA.as_ptr());
        assert_eq!(b.bytes_init(), 5);
        assert_eq!(b.bytes_total(), 5);

        let s: &'static str = "world!";
        assert_eq!(s.stable_ptr(), s.as_ptr());
        assert_eq!(s.bytes_init(), 6);
        assert_eq!(s.bytes_total(), 6);

        assert_eq!(DATA.stable_ptr(), DATA.as_ptr());
        assert_eq!(DATA.bytes_init(), 5);
        assert_eq!(DATA.bytes_total(), 5);
    }

    #[test]
    fn bytes_mut_set_init() {
        let mut b = BytesMut::with_capacity(8);
        b.extend_from_slice(b"xy");
        assert_eq!(b.bytes_init(), 2);
        assert_eq!(b.bytes_total(), b.capacity());
        let p = b.stable_mut_ptr();
        // SAFETY: byte 2 is within capacity and written before set_init.
        unsafe {
            p.add(2).write(b'z');
            b.set_init(3);
        }
        assert_eq!(&b[..], b"xyz");
        // SAFETY: 0 <= capacity; shrinking is a no-op.
        unsafe { b.set_init(0) };
        assert_eq!(b.len(), 3);
    }
}
