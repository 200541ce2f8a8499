//! What arrived for ops whose futures were dropped: the cancel-recovery
//! state of one fd.
//!
//! How it works: a read whose future is gone keeps its bytes (in order, as
//! one stash), its end of stream or error, or its datagram with the source;
//! an accept keeps its connection. Read and accept ops take from here before
//! they ask the kernel (the driver's op path sees to it), so dropping a
//! future on a timeout loses nothing.

use std::collections::VecDeque;
use std::io;
use std::os::fd::OwnedFd;
use std::task::Waker;

use socket2::SockAddr;

use crate::buf::IoBufMut;

/// What dropped ops left on one fd, and who waits for it.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// Bytes received by dropped reads, not yet handed to a reader.
    stash: VecDeque<u8>,
    /// An error or the end of stream seen by a dropped read.
    read_end: Option<io::Result<()>>,
    /// Datagrams received by dropped receives, with their sources.
    datagrams: VecDeque<(Vec<u8>, Option<SockAddr>)>,
    /// Connections accepted by dropped accepts.
    pub(super) accepted: VecDeque<OwnedFd>,
    /// Accepts waiting in the kernel, woken when a connection is kept, so
    /// one already waiting takes it instead of waiting for another client.
    pub(super) accept_waiters: Vec<Waker>,
    /// A dropped accept was cancelled, and may have taken with it the
    /// wake-up of a connection now queued on the listener: the kernel wakes
    /// one waiting accept per connection, and a cancel that lands after the
    /// wake but before the accept ran (deferred task work) completes it with
    /// `ECANCELED`, leaving the connection queued and the other accepts
    /// asleep. Accepts waiting in the kernel then start over, and the first
    /// to start clears it.
    accept_restart: bool,
    /// Reads waiting for the one in flight to end.
    pub(super) read_waiters: Vec<Waker>,
}

/// Adds `waker` to `list` unless it is there already.
pub(super) fn push_waker(list: &mut Vec<Waker>, waker: &Waker) {
    if !list.iter().any(|w| w.will_wake(waker)) {
        list.push(waker.clone());
    }
}

impl Kept {
    /// True when a read or accept would find something here.
    pub(crate) fn has_any(&self) -> bool {
        !self.stash.is_empty()
            || self.read_end.is_some()
            || !self.datagrams.is_empty()
            || !self.accepted.is_empty()
            || self.accept_restart
    }

    /// Fills `buf` (from its start) with kept bytes, or reports the error
    /// or end of stream a dropped read saw; `None` when there is nothing.
    /// The end of stream stays visible to later reads; an error is reported
    /// once.
    pub(crate) fn take_bytes<B: IoBufMut>(&mut self, buf: &mut B) -> Option<io::Result<usize>> {
        if self.stash.is_empty() {
            return self.take_end().map(|r| r.map(|()| 0));
        }
        let n = copy_into(self.stash.make_contiguous(), buf);
        self.stash.drain(..n);
        Some(Ok(n))
    }

    /// Takes every kept byte, or the end of stream (`Ok(empty)`) or error a
    /// dropped read saw.
    pub(crate) fn take_all_bytes(&mut self) -> Option<io::Result<Vec<u8>>> {
        if self.stash.is_empty() {
            return self.take_end().map(|r| r.map(|()| Vec::new()));
        }
        Some(Ok(self.stash.drain(..).collect()))
    }

    fn take_end(&mut self) -> Option<io::Result<()>> {
        match self.read_end.take()? {
            Ok(()) => {
                self.read_end = Some(Ok(()));
                Some(Ok(()))
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// Puts bytes back in front of the kept ones, for the next read to take
    /// first (what `corio::compat` took from a receive and did not hand out).
    pub(crate) fn unread_front(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().rev() {
            self.stash.push_front(b);
        }
    }

    /// Keeps bytes a dropped read received.
    pub(crate) fn stash_bytes(&mut self, bytes: &[u8]) {
        self.stash.extend(bytes);
    }

    /// Keeps the end of stream or error a dropped read saw (the first one).
    pub(crate) fn stash_end(&mut self, end: io::Result<()>) {
        if self.read_end.is_none() {
            self.read_end = Some(end);
        }
    }

    /// Keeps a datagram a dropped receive got.
    pub(crate) fn stash_datagram(&mut self, data: Vec<u8>, from: Option<SockAddr>) {
        self.datagrams.push_back((data, from));
    }

    /// Keeps what a dropped receive got: one datagram, or with `segment`
    /// (the size GRO reported) the datagrams a coalesced run holds.
    pub(crate) fn stash_datagrams(
        &mut self,
        data: &[u8],
        from: Option<SockAddr>,
        segment: Option<usize>,
    ) {
        match segment {
            Some(size) if size > 0 && size < data.len() => {
                for d in data.chunks(size) {
                    self.stash_datagram(d.to_vec(), from.clone());
                }
            }
            _ => self.stash_datagram(data.to_vec(), from),
        }
    }

    /// The oldest datagram a dropped receive got.
    pub(crate) fn take_datagram(&mut self) -> Option<(Vec<u8>, Option<SockAddr>)> {
        self.datagrams.pop_front()
    }

    /// True when an accept waiting in the kernel should start over: a
    /// connection is kept for it to take, or a cancelled accept may have
    /// taken the wake-up of a queued one.
    pub(crate) fn has_accepted(&self) -> bool {
        !self.accepted.is_empty() || self.accept_restart
    }

    /// The oldest connection a dropped accept got. An accept starting (over)
    /// calls it, so it also ends a restart [`restart_accepts`] asked for:
    /// this accept goes to the kernel afresh and finds what is queued.
    ///
    /// [`restart_accepts`]: Self::restart_accepts
    pub(crate) fn take_accepted(&mut self) -> Option<OwnedFd> {
        self.accept_restart = false;
        self.accepted.pop_front()
    }

    /// A dropped accept came back cancelled: the accepts waiting in the
    /// kernel start over (see `accept_restart`). Returns them to wake.
    pub(crate) fn restart_accepts(&mut self) -> Vec<Waker> {
        self.accept_restart = true;
        std::mem::take(&mut self.accept_waiters)
    }

    /// Wakes `waker` when a dropped accept keeps a connection.
    pub(crate) fn wait_accepted(&mut self, waker: &Waker) {
        push_waker(&mut self.accept_waiters, waker);
    }
}

/// Copies `data` into `buf` (up to its capacity, from its start); returns
/// the count.
pub(crate) fn copy_into<B: IoBufMut>(data: &[u8], buf: &mut B) -> usize {
    let n = data.len().min(buf.bytes_total());
    // SAFETY: `n` bytes fit in the buffer's capacity and the regions are
    // distinct allocations.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf.stable_mut_ptr(), n) };
    // SAFETY: the first `n` bytes were just written.
    unsafe { buf.set_init(n) };
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_back_in_order_and_the_end_stays() {
        let mut k = Kept::default();
        assert!(k.take_bytes(&mut vec![0u8; 4]).is_none());
        k.stash_bytes(b"hello");
        k.stash_end(Ok(()));
        let mut buf = Vec::with_capacity(3);
        assert_eq!(k.take_bytes(&mut buf).unwrap().unwrap(), 3);
        assert_eq!(buf, b"hel");
        assert_eq!(k.take_all_bytes().unwrap().unwrap(), b"lo");
        for _ in 0..2 {
            assert_eq!(k.take_bytes(&mut buf).unwrap().unwrap(), 0, "end stays");
        }
    }

    #[test]
    fn an_error_is_reported_once() {
        let mut k = Kept::default();
        k.stash_end(Err(io::Error::from_raw_os_error(libc::ECONNRESET)));
        k.stash_end(Ok(()));
        let e = k.take_bytes(&mut vec![0u8; 4]).unwrap().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET));
        assert!(!k.has_any());
    }

    #[test]
    fn a_cancelled_accept_restarts_the_waiting_ones_once() {
        let mut k = Kept::default();
        k.wait_accepted(std::task::Waker::noop());
        assert_eq!(k.restart_accepts().len(), 1);
        assert!(k.has_any() && k.has_accepted());
        assert!(k.take_accepted().is_none());
        assert!(!k.has_any() && !k.has_accepted(), "the first start ends it");
    }
}
