//! Splitting a completion into pieces, one per buffer it filled: bundles
//! (several ring entries per completion) and incremental buffers (several
//! completions per buffer). See the parent module for the two ring modes.

use super::{Free, Pool, RingEntry};

impl Pool {
    /// The buffer id in the ring entry at position `pos`.
    fn entry_bid(&self, pos: u16) -> u16 {
        let Free::Ring { entries, mask, .. } = &self.free else {
            unreachable!("bundles need a ring pool")
        };
        // SAFETY: the index is masked into the ring's `count` entries; the
        // kernel never writes an entry's `bid` (incremental mode moves only
        // `addr` and `len`), and we rewrite it only when publishing at
        // `pos + count`, which cannot happen before the completion naming
        // the buffer at `pos` is split (see `split`).
        unsafe {
            let slot = entries.ptr.cast::<RingEntry>().add((pos & mask) as usize);
            std::ptr::addr_of!((*slot).bid).read_volatile()
        }
        .wrapping_sub(self.ring_bid(0))
    }

    /// Splits a completion that names buffer `first` (its id in this pool:
    /// less [`GROUP1_BASE`] for group 1) and carries `res`
    /// bytes into one piece per buffer, in order: `each(bid, res, last)`,
    /// where `res` encodes the piece's place in its buffer (decode it with
    /// [`piece`](Self::piece)) and `last` marks the final piece. `buf_more`
    /// is the completion's `IORING_CQE_F_BUF_MORE`: the kernel keeps
    /// writing the last buffer.
    ///
    /// A bundle's buffers are the ring entries after the one `first` was
    /// published at: the kernel took them in ring order. Those entries are
    /// intact here: completions are split in the order the kernel posts
    /// them, so every buffer published after `first` and before this split
    /// was out of the ring when the kernel took `first`, and at most
    /// `count` publications separate `first`'s entry from its rewrite.
    #[allow(dead_code)] // Ring pools: io_uring builds only.
    pub(crate) fn split(
        &self,
        first: u16,
        res: i32,
        buf_more: bool,
        mut each: impl FnMut(u16, i32, bool),
    ) {
        debug_assert!(res >= 0, "a completion with a buffer and an error");
        let mode = self.mode.get();
        let mut left = res.max(0) as usize;
        let mut bid = first;
        let mut pos = self.state[first as usize].pos.get();
        loop {
            let st = &self.state[bid as usize];
            let off = st.used.get() as usize;
            let len = left.min(self.size - off);
            left -= len;
            let last = left == 0 || !mode.bundle;
            debug_assert!(last || mode.bundle, "a completion longer than its buffer");
            st.refs.set(st.refs.get() + 1);
            // Incremental: the kernel keeps the last buffer when it says so.
            if mode.inc && last && buf_more {
                st.used.set((off + len) as u32);
            } else {
                st.kernel.set(false);
                self.out.set(self.out.get() + 1);
            }
            let res = if mode.inc {
                ((off << 16) | len) as i32
            } else {
                len as i32
            };
            each(bid, res, last);
            if last {
                break;
            }
            pos = pos.wrapping_add(1);
            bid = self.entry_bid(pos);
            // Checked in release builds too (one compare per extra buffer
            // of a bundle): if the kernel ever posted completions out of
            // buffer-take order, the entry at `pos` would name a buffer
            // published later, and its bytes would be handed out as this
            // receive's. Stopping is the only safe answer; bundles can be
            // turned off with `disable_opcodes(["RECV_BUNDLE"])`.
            assert_eq!(
                self.state[bid as usize].pos.get(),
                pos,
                "corio: a receive bundle's ring entries were rewritten before its completion \
                 was split (the kernel posted completions out of order); disable bundles with \
                 Builder::disable_opcodes([\"RECV_BUNDLE\"])"
            );
        }
    }

    /// Where a piece's bytes lie in its buffer: (offset, length), from the
    /// `res` that [`split`](Self::split) gave it.
    pub(crate) fn piece(&self, res: u32) -> (usize, usize) {
        if self.mode.get().inc {
            ((res >> 16) as usize, (res & 0xffff) as usize)
        } else {
            (0, res as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    /// The pieces `split` makes of one completion: (bid, offset, length, last).
    fn pieces(pool: &Pool, first: u16, res: i32, buf_more: bool) -> Vec<(u16, usize, usize, bool)> {
        let mut v = Vec::new();
        pool.split(first, res, buf_more, |bid, r, last| {
            let (off, len) = pool.piece(r as u32);
            v.push((bid, off, len, last));
        });
        v
    }

    fn shared_tail(pool: &Pool) -> u16 {
        let Free::Ring { entries, .. } = &pool.free else {
            panic!("not a ring pool")
        };
        // SAFETY: reading the shared tail of a ring we own.
        unsafe { &*entries.ptr.add(14).cast::<AtomicU16>() }.load(Ordering::Acquire)
    }

    #[test]
    fn ring_pool_publishes_every_buffer_and_recycles_to_the_tail() {
        let pool = Pool::new(8, 32, true).unwrap();
        let Free::Ring { entries, tail, .. } = &pool.free else {
            panic!("not a ring pool")
        };
        assert_eq!(tail.get(), 8);
        assert_eq!(shared_tail(&pool), 8);
        assert_eq!(pieces(&pool, 5, 10, false), [(5, 0, 10, true)]);
        assert_eq!(pool.held(), 1);
        pool.recycle(5);
        assert_eq!(shared_tail(&pool), 9);
        assert_eq!(pool.held(), 0);
        // Entry 8 & 7 = slot 0 was rewritten with buffer 5.
        // SAFETY: slot 0 lies inside the entries mapping.
        let e0 = unsafe { &*entries.ptr.cast::<RingEntry>() };
        assert_eq!(e0.bid, 5);
        assert_eq!(e0.addr, pool.buf_ptr(5) as u64);
    }

    #[test]
    fn a_bundle_spans_the_ring_entries_after_its_first_buffer() {
        let pool = Pool::new(4, 32, true).unwrap();
        pool.set_mode(RingMode {
            bundle: true,
            inc: false,
        });
        // The kernel takes entries 0 and 1 (buffers 0, 1); 1 comes back and
        // is published at position 4 (slot 0), after buffers 2 and 3.
        assert_eq!(
            pieces(&pool, 0, 40, false),
            [(0, 0, 32, false), (1, 0, 8, true)]
        );
        pool.recycle(1);
        pool.recycle(0);
        // Ring order is now 2, 3, 1, 0: a bundle from 3 takes 3, 1, 0.
        assert_eq!(
            pieces(&pool, 3, 70, false),
            [(3, 0, 32, false), (1, 0, 32, false), (0, 0, 6, true)]
        );
        assert!(pool.has_free());
        assert_eq!(pool.held(), 3);
        for bid in [0, 1, 3] {
            pool.recycle(bid);
        }
        assert_eq!(pool.held(), 0);
        assert_eq!(shared_tail(&pool), 9);
    }

    #[test]
    fn incremental_pieces_share_a_buffer_until_the_kernel_moves_past_it() {
        let pool = Pool::new(4, 32, true).unwrap();
        pool.set_mode(RingMode {
            bundle: true,
            inc: true,
        });
        assert_eq!(pieces(&pool, 0, 5, true), [(0, 0, 5, true)]);
        assert_eq!(pieces(&pool, 0, 7, true), [(0, 5, 7, true)]);
        // The first lease goes: the kernel still writes buffer 0.
        pool.recycle(0);
        assert_eq!(shared_tail(&pool), 4);
        // A bundle fills the rest of 0 and part of 1.
        assert_eq!(
            pieces(&pool, 0, 30, true),
            [(0, 12, 20, false), (1, 0, 10, true)]
        );
        assert_eq!(pool.held(), 2);
        pool.recycle(0);
        assert_eq!(shared_tail(&pool), 4, "one piece of buffer 0 is still out");
        pool.recycle(0);
        assert_eq!(
            shared_tail(&pool),
            5,
            "buffer 0 is back once its last piece is"
        );
        // The kernel leaves buffer 1 (no BUF_MORE): it comes back with its piece.
        assert_eq!(pieces(&pool, 1, 3, false), [(1, 10, 3, true)]);
        pool.recycle(1);
        pool.recycle(1);
        assert_eq!(shared_tail(&pool), 6);
        assert_eq!(pool.held(), 0);
    }

    #[test]
    #[should_panic(expected = "ring entries were rewritten")]
    fn a_bundle_over_rewritten_entries_stops_in_every_build() {
        let pool = Pool::new(4, 32, true).unwrap();
        pool.set_mode(RingMode {
            bundle: true,
            inc: false,
        });
        // Buffer 1 is taken, completed and published again (at position 4)
        // before a bundle starting at buffer 0 is split: the entry after 0's
        // now names a buffer whose position is not 1.
        assert_eq!(pieces(&pool, 1, 8, false), [(1, 0, 8, true)]);
        pool.recycle(1);
        pieces(&pool, 0, 40, false);
    }
}
