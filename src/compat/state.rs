//! The per-stream state of a [`Compat`](super::Compat): the read side's
//! lease and receive, the write side's send.
//!
//! How it works: a read takes one lease from the runtime's receive pool
//! (through [`raw`](super::raw)) and hands out its bytes in order; whatever
//! the caller's buffer could not take stays in the lease for the next read,
//! and the lease goes back to the pool once it is used up. The write side is
//! [`WriteState`]: one owned send in flight at most.

use std::io;
use std::task::{Context, Poll, ready};

use super::raw::{self, RecvState, WriteState};
use crate::buf::PooledBuf;
use crate::fd::SharedFd;

/// What a [`Compat`](super::Compat) keeps between polls.
#[derive(Debug, Default)]
pub struct State {
    pub(crate) read: ReadSide,
    pub(crate) write: WriteState,
    /// TLS: `close_notify` was queued by a shutdown.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) closing: bool,
}

/// The bytes of one received lease, handed out in order.
#[derive(Debug, Default)]
pub(crate) struct ReadSide {
    pub(crate) recv: RecvState,
    lease: Option<PooledBuf>,
    pos: usize,
}

impl ReadSide {
    /// Bytes of the current lease not handed out yet.
    pub(crate) fn rest(&self) -> &[u8] {
        match &self.lease {
            Some(l) => &l[self.pos..],
            None => &[],
        }
    }

    /// Marks `n` bytes of [`rest`](Self::rest) as handed out; a used-up
    /// lease goes back to the pool at once.
    pub(crate) fn consume(&mut self, n: usize) {
        let len = self.lease.as_ref().map_or(0, |l| l.len());
        self.pos = (self.pos + n).min(len);
        if self.pos == len {
            self.lease = None;
            self.pos = 0;
        }
    }

    /// Holds `lease` (the previous one must be used up).
    pub(crate) fn set(&mut self, lease: PooledBuf) {
        debug_assert!(self.rest().is_empty(), "a lease replaced with bytes left");
        self.lease = (!lease.is_empty()).then_some(lease);
        self.pos = 0;
    }

    /// Waits until bytes are held: ready with them, or with an empty slice
    /// at the end of the stream.
    pub(crate) fn poll_fill(
        &mut self,
        fd: &SharedFd,
        pipe: bool,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<&[u8]>> {
        while self.rest().is_empty() {
            match ready!(raw::poll_read_pooled(&mut self.recv, fd, pipe, cx))? {
                Some(lease) => self.set(lease),
                None => return Poll::Ready(Ok(&[])),
            }
        }
        Poll::Ready(Ok(self.rest()))
    }

    /// Gives the bytes not handed out back to the socket's read queue.
    pub(crate) fn unread(&mut self, fd: &SharedFd) {
        raw::unread(fd, self.rest());
        self.lease = None;
        self.pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_handed_out_in_order_and_let_go_when_used_up() {
        let mut r = ReadSide::default();
        assert!(r.rest().is_empty());
        r.set(PooledBuf::owned(b"hello".to_vec()));
        assert_eq!(r.rest(), b"hello");
        r.consume(2);
        assert_eq!(r.rest(), b"llo");
        r.consume(10); // more than held: clamps
        assert!(r.rest().is_empty());
        assert!(r.lease.is_none(), "a used-up lease goes back at once");
    }

    #[test]
    fn an_empty_lease_is_not_held() {
        let mut r = ReadSide::default();
        r.set(PooledBuf::owned(Vec::new()));
        assert!(r.lease.is_none());
        r.consume(0);
        assert!(r.rest().is_empty());
    }
}
