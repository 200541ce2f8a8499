//! [`Slice`]: an owned view of a sub-range of an I/O buffer.
//!
//! How it works: a `Slice` stores the whole buffer plus a `begin..end` range
//! and itself implements [`IoBuf`] / [`IoBufMut`] by offsetting the pointer
//! and clamping lengths to the range, so any operation accepting a buffer
//! also accepts a slice of one. [`Slice::into_inner`] returns the buffer.

use std::ops::{Deref, DerefMut};

use super::{IoBuf, IoBufMut};

/// An owned view of the bytes `begin..end` of a buffer.
///
/// Created with [`IoBuf::slice`]. The range may extend past the initialized
/// bytes of the buffer (up to its total capacity), so a read can fill it.
/// Dereferencing yields only the initialized part of the range.
#[derive(Debug)]
pub struct Slice<T> {
    buf: T,
    begin: usize,
    end: usize,
}

impl<T> Slice<T> {
    /// Creates a slice; the caller must ensure `begin <= end <= buf.bytes_total()`.
    pub(crate) fn new(buf: T, begin: usize, end: usize) -> Self {
        debug_assert!(begin <= end);
        Slice { buf, begin, end }
    }

    /// Offset of the start of the slice in the underlying buffer.
    pub fn begin(&self) -> usize {
        self.begin
    }

    /// Offset one past the end of the slice in the underlying buffer.
    pub fn end(&self) -> usize {
        self.end
    }

    /// Returns a shared reference to the underlying buffer.
    pub fn get_ref(&self) -> &T {
        &self.buf
    }

    /// Returns a mutable reference to the underlying buffer.
    ///
    /// Changing the buffer's total size through this reference can make the
    /// slice range invalid; the runtime never does this.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.buf
    }

    /// Unwraps the slice, returning the whole underlying buffer.
    pub fn into_inner(self) -> T {
        self.buf
    }
}

impl<T: IoBuf> Slice<T> {
    /// Length of the initialized part of the range.
    fn init_len(&self) -> usize {
        self.buf
            .bytes_init()
            .clamp(self.begin, self.end)
            .saturating_sub(self.begin)
    }
}

impl<T: IoBuf> Deref for Slice<T> {
    type Target = [u8];

    /// The initialized bytes `begin..min(end, buf.bytes_init())`.
    fn deref(&self) -> &[u8] {
        let len = self.init_len();
        if len == 0 {
            return &[];
        }
        // SAFETY: `len > 0` so `begin + len <= min(end, bytes_init)` lies within
        // the buffer; by the `IoBuf` contract the pointer is valid for reads of
        // `bytes_total` bytes and the first `bytes_init` are initialized. The
        // returned borrow of `self` prevents mutation while it is alive.
        unsafe { std::slice::from_raw_parts(self.buf.stable_ptr().add(self.begin), len) }
    }
}

impl<T: IoBufMut> DerefMut for Slice<T> {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.init_len();
        if len == 0 {
            return &mut [];
        }
        // SAFETY: as in `deref`, the range is in bounds and initialized; by the
        // `IoBufMut` contract the pointer is valid for writes, and the
        // exclusive borrow of `self` guarantees no other access.
        unsafe { std::slice::from_raw_parts_mut(self.buf.stable_mut_ptr().add(self.begin), len) }
    }
}

// SAFETY: the pointer is the inner buffer's stable pointer offset by
// `begin <= bytes_total`, so it is stable and valid for `end - begin` bytes;
// `bytes_init` is clamped to `0..=end - begin`, and those bytes are
// initialized because the inner buffer's first `bytes_init` bytes are.
unsafe impl<T: IoBuf> IoBuf for Slice<T> {
    fn stable_ptr(&self) -> *const u8 {
        // `wrapping_add` keeps this safe; `begin <= bytes_total` so it is in bounds.
        self.buf.stable_ptr().wrapping_add(self.begin)
    }

    fn bytes_init(&self) -> usize {
        self.init_len()
    }

    fn bytes_total(&self) -> usize {
        self.end - self.begin
    }
}

// SAFETY: same pointer reasoning as the `IoBuf` impl, using the inner
// buffer's mutable pointer; `set_init` forwards to the inner buffer's
// `set_init`, which never shrinks.
unsafe impl<T: IoBufMut> IoBufMut for Slice<T> {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.buf.stable_mut_ptr().wrapping_add(self.begin)
    }

    /// Marks the first `pos` bytes of the slice (`begin..begin + pos` of the
    /// buffer) as initialized.
    ///
    /// If the buffer's initialized length is below `begin`, the gap
    /// `bytes_init..begin` is zero-filled first so the buffer never exposes
    /// uninitialized memory. `pos == 0` is a no-op.
    ///
    /// # Safety
    ///
    /// The caller must ensure `pos <= self.bytes_total()` and that bytes
    /// `0..pos` of the slice have been initialized.
    unsafe fn set_init(&mut self, pos: usize) {
        if pos == 0 {
            return;
        }
        let init = self.buf.bytes_init();
        if init < self.begin {
            // SAFETY: `init < begin <= bytes_total`, so `init..begin` is in
            // bounds of the buffer, which is valid for writes per `IoBufMut`.
            unsafe {
                self.buf
                    .stable_mut_ptr()
                    .add(init)
                    .write_bytes(0, self.begin - init);
            }
        }
        // SAFETY: `begin + pos <= end <= buf.bytes_total()` by the caller's
        // guarantee; `0..begin` is initialized (zero-filled above if needed)
        // and `begin..begin + pos` was initialized by the caller.
        unsafe { self.buf.set_init(self.begin + pos) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial_vec() -> Vec<u8> {
        let mut v = Vec::with_capacity(16);
        v.extend_from_slice(b"0123456789");
        v
    }

    #[test]
    fn bounds_and_accessors() {
        let v = partial_vec();
        let cap = v.capacity();
        let s = v.slice(2..5);
        assert_eq!((s.begin(), s.end()), (2, 5));
        assert_eq!(s.bytes_total(), 3);
        let s = s.into_inner().slice(..);
        assert_eq!((s.begin(), s.end()), (0, cap));
        let s = s.into_inner().slice(3..=4);
        assert_eq!((s.begin(), s.end()), (3, 5));
        let s = s.into_inner().slice(cap..);
        assert_eq!(s.bytes_total(), 0);
        assert_eq!(s.get_ref().len(), 10);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn end_past_total_panics() {
        let v = vec![0u8; 4];
        let total = v.bytes_total();
        let _ = v.slice(0..total + 1);
    }

    #[test]
    #[should_panic(expected = "greater than its end")]
    fn begin_after_end_panics() {
        #[allow(clippy::reversed_empty_ranges)]
        let _ = b"hello".as_slice().slice(3..2);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn static_str_past_end_panics() {
        let _ = "abc".slice(..=3);
    }

    #[test]
    fn bytes_init_on_partial_vec() {
        // Initialized: 0..10, total >= 16.
        assert_eq!(partial_vec().slice(2..5).bytes_init(), 3);
        assert_eq!(partial_vec().slice(8..14).bytes_init(), 2);
        assert_eq!(partial_vec().slice(10..14).bytes_init(), 0);
        assert_eq!(partial_vec().slice(12..14).bytes_init(), 0);
        assert_eq!(partial_vec().slice(12..14).bytes_total(), 2);
        assert_eq!(&partial_vec().slice(8..14)[..], b"89");
        assert!(partial_vec().slice(12..14).is_empty());
    }

    #[test]
    fn stable_ptr_offset() {
        let v = partial_vec();
        let p = v.as_ptr();
        let mut s = v.slice(4..);
        assert_eq!(s.stable_ptr(), p.wrapping_add(4));
        assert_eq!(s.stable_mut_ptr().cast_const(), p.wrapping_add(4));
    }

    #[test]
    fn set_init_through_slice_grows_vec() {
        let mut s = partial_vec().slice(8..14);
        let p = s.stable_mut_ptr();
        // SAFETY: bytes 0..4 of the slice (8..12 of the vec) are within
        // capacity and written before set_init.
        unsafe {
            p.copy_from_nonoverlapping(b"abcd".as_ptr(), 4);
            s.set_init(4);
        }
        assert_eq!(s.bytes_init(), 4);
        assert_eq!(&s[..], b"abcd");
        // A smaller pos must not shrink anything.
        // SAFETY: 1 <= bytes_total and byte 0 of the slice is initialized.
        unsafe { s.set_init(1) };
        let v = s.into_inner();
        assert_eq!(v, b"01234567abcd");
    }

    #[test]
    fn set_init_with_gap_zero_fills() {
        let mut s = partial_vec().slice(12..14);
        let p = s.stable_mut_ptr();
        // SAFETY: bytes 0..2 of the slice (12..14 of the vec) are within
        // capacity and written before set_init.
        unsafe {
            p.copy_from_nonoverlapping(b"zz".as_ptr(), 2);
            s.set_init(2);
        }
        assert_eq!(s.into_inner(), b"0123456789\0\0zz");
    }

    #[test]
    fn set_init_zero_is_noop() {
        let mut s = partial_vec().slice(12..14);
        // SAFETY: pos 0 requires nothing to be initialized.
        unsafe { s.set_init(0) };
        assert_eq!(s.into_inner().len(), 10);
    }

    #[test]
    fn into_inner_returns_same_buffer() {
        let v = partial_vec();
        let (p, len, cap) = (v.as_ptr(), v.len(), v.capacity());
        let v = v.slice(1..3).into_inner();
        assert_eq!((v.as_ptr(), v.len(), v.capacity()), (p, len, cap));
    }

    #[test]
    fn deref_content_and_mut() {
        let mut s = b"hello world".to_vec().slice(6..);
        assert_eq!(&s[..], b"world");
        s[0] = b'W';
        s.get_mut()[0] = b'H';
        assert_eq!(s.get_ref(), b"Hello World");

        let s = bytes::Bytes::from_static(b"abcdef").slice(1..4);
        assert_eq!(&*s, b"bcd");
        assert_eq!("xyz".slice(1..).to_vec(), b"yz");
    }

    #[test]
    fn nested_slice() {
        let s = b"0123456789".to_vec().slice(2..8).slice(1..3);
        assert_eq!(&s[..], b"34");
        assert_eq!(s.bytes_total(), 2);
        assert_eq!(s.into_inner().into_inner(), b"0123456789");
    }
}
