//! `Region`: a fixed span of always-initialised memory and how much of it a
//! buffer holds; the shared core of [`AlignedBuf`](super::AlignedBuf) and
//! [`FixedBuf`](super::FixedBuf).
//!
//! How it works: the owner hands in a pointer to `capacity` initialised
//! bytes it keeps alive and unaliased; the region tracks the length (what a
//! write sends, what a read filled) and does the bounds checks and the raw
//! copies, so the buffer types only own and free the memory.

/// `capacity` initialised bytes at `ptr`, of which the first `len` are the
/// buffer's contents.
pub(super) struct Region {
    ptr: *mut u8,
    len: usize,
    capacity: usize,
}

impl Region {
    /// An empty region over `capacity` bytes at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads and writes of `capacity` bytes, all
    /// initialised, used through this region only, for as long as the region
    /// is used; the memory must not move.
    pub(super) unsafe fn new(ptr: *mut u8, capacity: usize) -> Region {
        Region {
            ptr,
            len: 0,
            capacity,
        }
    }

    pub(super) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Sets the length; `what` names the buffer type in the panic message.
    ///
    /// # Panics
    ///
    /// Panics if `len > capacity`.
    pub(super) fn set_len(&mut self, len: usize, what: &str) {
        assert!(
            len <= self.capacity,
            "corio: {what} length {len} beyond its capacity {}",
            self.capacity
        );
        self.len = len;
    }

    /// Appends `data` after the length; `what` names the buffer type in the
    /// panic message.
    ///
    /// # Panics
    ///
    /// Panics if it does not fit in the capacity.
    pub(super) fn extend_from_slice(&mut self, data: &[u8], what: &str) {
        let end = self.len + data.len();
        assert!(
            end <= self.capacity,
            "corio: {what} of capacity {} cannot take {end} bytes",
            self.capacity
        );
        // SAFETY: `len..end` lies inside the region (per `new`), and `data`
        // cannot overlap it: the region's memory is used through it alone
        // and we hold `&mut self`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(self.len), data.len()) };
        self.len = end;
    }

    /// `IoBufMut::set_init`: the kernel filled up to `pos`; only grows.
    pub(super) fn grow_len(&mut self, pos: usize) {
        if pos > self.len {
            self.len = pos;
        }
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len <= capacity` bytes are initialised and
        // used through this region only (per `new`).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, borrowed exclusively.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(mem: &mut [u8]) -> Region {
        // SAFETY: `mem` is initialised, outlives the region in each test and
        // is used through it alone.
        unsafe { Region::new(mem.as_mut_ptr(), mem.len()) }
    }

    #[test]
    fn extend_set_len_and_grow() {
        let mut mem = [0u8; 8];
        let mut r = region(&mut mem);
        r.extend_from_slice(b"abc", "T");
        r.extend_from_slice(b"de", "T");
        assert_eq!(r.as_slice(), b"abcde");
        r.as_mut_slice()[0] = b'A';
        r.grow_len(2); // never shrinks
        assert_eq!(r.len(), 5);
        r.grow_len(8);
        assert_eq!(r.as_slice(), b"Abcde\0\0\0");
        r.set_len(1, "T");
        assert_eq!((r.as_slice(), r.capacity()), (&b"A"[..], 8));
    }

    #[test]
    #[should_panic(expected = "corio: T length 9 beyond its capacity 8")]
    fn set_len_past_capacity_panics() {
        let mut mem = [0u8; 8];
        region(&mut mem).set_len(9, "T");
    }

    #[test]
    #[should_panic(expected = "corio: T of capacity 8 cannot take 9 bytes")]
    fn extend_past_capacity_panics() {
        let mut mem = [0u8; 8];
        let mut r = region(&mut mem);
        r.extend_from_slice(b"12345", "T");
        r.extend_from_slice(b"6789", "T");
    }
}
