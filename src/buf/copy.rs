//! Byte views of owned buffers, for code that copies in and out of them
//! (TLS, buffered streams): the unsafe pointer work in one place.
//!
//! How it works: [`init_bytes`] borrows a buffer's initialised bytes as a
//! slice; [`put`] copies a slice into a buffer at an offset and extends its
//! initialised length. Both rely on the [`IoBuf`]/[`IoBufMut`] contracts.

use super::{IoBuf, IoBufMut};

/// The initialised bytes of `buf`.
pub(crate) fn init_bytes<B: IoBuf>(buf: &B) -> &[u8] {
    let len = buf.bytes_init();
    if len == 0 {
        return &[];
    }
    // SAFETY: by the `IoBuf` contract the pointer is valid for reads of
    // `bytes_total() >= bytes_init()` bytes, the first `bytes_init()` of
    // which are initialised; the shared borrow of `buf` keeps it alive and
    // unchanged.
    unsafe { std::slice::from_raw_parts(buf.stable_ptr(), len) }
}

/// Copies `src` into `buf` at offset `at` and marks `..at + src.len()`
/// initialised. The caller fills `buf` from its start, so `..at` already is.
///
/// # Panics
///
/// Panics if `at + src.len()` exceeds `buf.bytes_total()`.
pub(crate) fn put<B: IoBufMut>(buf: &mut B, at: usize, src: &[u8]) {
    assert!(at + src.len() <= buf.bytes_total());
    // SAFETY: the range `at..at + src.len()` is within `bytes_total()`, for
    // which the pointer is valid for writes (`IoBufMut` contract); `src` is
    // another allocation (a `&[u8]` cannot alias the `&mut B`'s memory).
    unsafe {
        buf.stable_mut_ptr()
            .add(at)
            .copy_from_nonoverlapping(src.as_ptr(), src.len());
    }
    // SAFETY: `at + src.len() <= bytes_total()`; bytes `..at` were
    // initialised by earlier copies (or were already), the rest just now.
    unsafe { buf.set_init(at + src.len()) };
}

#[cfg(test)]
mod tests {
    use super::{init_bytes, put};

    #[test]
    fn put_and_view() {
        let mut v = Vec::with_capacity(8);
        put(&mut v, 0, b"ab");
        put(&mut v, 2, b"cd");
        assert_eq!(init_bytes(&v), b"abcd");
        assert_eq!(init_bytes(&Vec::new()), b"");
    }

    #[test]
    #[should_panic]
    fn put_past_the_capacity_panics() {
        let mut b: Box<[u8]> = vec![0; 2].into_boxed_slice();
        put(&mut b, 1, b"xy");
    }
}
