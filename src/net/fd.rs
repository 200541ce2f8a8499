//! `SharedFd`: a socket fd shared by its handles and its in-flight ops.
//!
//! How it works: every handle (stream, halves, listener) and every op on the
//! socket holds an `Rc` of the fd, so the fd is closed — by a close op on the
//! driver — only after the last op on it has completed; its number can never
//! be reused under a stale op. The fd also keeps what arrived for ops whose
//! futures were dropped: received bytes (returned by the next read, in order),
//! datagrams, and accepted connections (returned by the next accept). Reads
//! on one socket are serialised: a read waits until earlier (abandoned) reads
//! have completed, so bytes never overtake each other.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Poll, Waker};

use crate::buf::IoBufMut;
use crate::runtime::core::close_fd;

/// A socket fd shared by handles and in-flight ops.
#[derive(Clone, Debug)]
pub(crate) struct SharedFd {
    inner: Rc<Inner>,
}

#[derive(Debug)]
struct Inner {
    fd: RawFd,
    state: RefCell<State>,
}

#[derive(Debug, Default)]
struct State {
    /// A read op is in flight (owned by a future or abandoned).
    reading: bool,
    /// `into_std` took the fd back: do not close it.
    released: bool,
    /// Driver slot of the multishot receive armed on this socket (io_uring
    /// pooled receives); it outlives the futures that use it.
    multi_recv: Option<usize>,
    /// What dropped ops left behind and who waits: rare, so kept out of
    /// line (an idle connection should cost little memory).
    kept: Option<Box<Kept>>,
}

#[derive(Debug, Default)]
struct Kept {
    /// Bytes received by abandoned reads, not yet handed to a reader.
    stash: VecDeque<u8>,
    /// Datagrams received by abandoned datagram reads.
    datagrams: VecDeque<(Vec<u8>, Option<SocketAddr>)>,
    /// An error or end of stream seen by an abandoned read.
    read_end: Option<io::Result<()>>,
    /// Connections accepted by abandoned accepts.
    accepted: VecDeque<OwnedFd>,
    /// Accepts waiting in the kernel, woken when a connection is kept, so
    /// one already waiting takes it instead of waiting for another client.
    accept_waiters: Vec<Waker>,
    /// Reads waiting for the one in flight to finish.
    read_waiters: Vec<Waker>,
}

impl State {
    fn kept(&mut self) -> &mut Kept {
        self.kept.get_or_insert_with(Default::default)
    }
}

impl SharedFd {
    /// Takes ownership of `fd`.
    pub(crate) fn new(fd: OwnedFd) -> SharedFd {
        use std::os::fd::IntoRawFd;
        SharedFd {
            inner: Rc::new(Inner {
                fd: fd.into_raw_fd(),
                state: RefCell::default(),
            }),
        }
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.inner.fd
    }

    /// True when both handles share one socket.
    pub(crate) fn same(&self, other: &SharedFd) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Gives the fd back to the caller if nothing else (no other handle, no
    /// op still in the kernel) uses it.
    pub(crate) fn try_release(self) -> Result<OwnedFd, SharedFd> {
        if Rc::strong_count(&self.inner) != 1 {
            return Err(self);
        }
        self.inner.state.borrow_mut().released = true;
        use std::os::fd::FromRawFd;
        // SAFETY: this is the last reference to the fd and `released` stops
        // `Inner::drop` from closing it, so ownership moves to the `OwnedFd`.
        Ok(unsafe { OwnedFd::from_raw_fd(self.inner.fd) })
    }

    /// Waits until no read op is in flight on this fd, then marks one as
    /// started; the returned guard ends it.
    pub(crate) async fn begin_read(&self) -> ReadGuard {
        poll_fn(|cx| {
            let mut st = self.inner.state.borrow_mut();
            if !st.reading {
                st.reading = true;
                Poll::Ready(())
            } else {
                st.kept().read_waiters.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        ReadGuard { fd: self.clone() }
    }

    /// Fills `buf` from bytes kept by abandoned reads, or reports the error
    /// or end of stream one of them saw. `None` when there is nothing.
    pub(crate) fn take_stashed<B: IoBufMut>(&self, buf: &mut B) -> Option<io::Result<usize>> {
        let mut st = self.inner.state.borrow_mut();
        let k = st.kept.as_deref_mut()?;
        if k.stash.is_empty() {
            return match k.read_end.take()? {
                Ok(()) => {
                    // End of stream stays visible to later reads.
                    k.read_end = Some(Ok(()));
                    Some(Ok(0))
                }
                Err(e) => Some(Err(e)),
            };
        }
        let n = copy_into(k.stash.make_contiguous(), buf);
        k.stash.drain(..n);
        Some(Ok(n))
    }

    /// The multishot receive armed on this socket, if any.
    pub(crate) fn multi_recv(&self) -> Option<usize> {
        self.inner.state.borrow().multi_recv
    }

    /// Records (or clears) the socket's multishot receive.
    #[cfg_attr(not(corio_uring), allow(dead_code))] // io_uring's multishot receive only
    pub(crate) fn set_multi_recv(&self, slot: Option<usize>) {
        self.inner.state.borrow_mut().multi_recv = slot;
    }

    /// Takes every byte kept by abandoned reads, or the end of stream or
    /// error one of them saw (`Ok(empty)` means end of stream).
    pub(crate) fn take_stash_all(&self) -> Option<io::Result<Vec<u8>>> {
        let mut st = self.inner.state.borrow_mut();
        let k = st.kept.as_deref_mut()?;
        if k.stash.is_empty() {
            return match k.read_end.take()? {
                Ok(()) => {
                    k.read_end = Some(Ok(()));
                    Some(Ok(Vec::new()))
                }
                Err(e) => Some(Err(e)),
            };
        }
        Some(Ok(k.stash.drain(..).collect()))
    }

    /// Puts bytes back at the front of the stash (what a reader could not take).
    pub(crate) fn unstash_front(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut st = self.inner.state.borrow_mut();
        let k = st.kept();
        for &b in bytes.iter().rev() {
            k.stash.push_front(b);
        }
    }

    /// Keeps bytes an abandoned read received.
    #[cfg_attr(not(corio_uring), allow(dead_code))] // only completion drivers abandon results
    pub(crate) fn stash_bytes(&self, bytes: &[u8]) {
        self.inner.state.borrow_mut().kept().stash.extend(bytes);
    }

    /// Keeps the end-of-stream or error an abandoned read saw.
    #[cfg_attr(not(corio_uring), allow(dead_code))] // only completion drivers abandon results
    pub(crate) fn stash_read_end(&self, end: io::Result<()>) {
        let mut st = self.inner.state.borrow_mut();
        let k = st.kept();
        if k.read_end.is_none() {
            k.read_end = Some(end);
        }
    }

    /// Keeps a datagram an abandoned receive got.
    #[cfg_attr(not(corio_uring), allow(dead_code))] // only completion drivers abandon results
    pub(crate) fn stash_datagram(&self, data: Vec<u8>, from: Option<SocketAddr>) {
        self.inner
            .state
            .borrow_mut()
            .kept()
            .datagrams
            .push_back((data, from));
    }

    /// The oldest datagram kept by an abandoned receive.
    pub(crate) fn take_datagram(&self) -> Option<(Vec<u8>, Option<SocketAddr>)> {
        let mut st = self.inner.state.borrow_mut();
        st.kept.as_deref_mut()?.datagrams.pop_front()
    }

    /// Keeps a connection an abandoned accept got.
    #[cfg_attr(not(corio_uring), allow(dead_code))] // only completion drivers abandon results
    pub(crate) fn stash_accepted(&self, fd: OwnedFd) {
        let waiters = {
            let mut st = self.inner.state.borrow_mut();
            let k = st.kept();
            k.accepted.push_back(fd);
            std::mem::take(&mut k.accept_waiters)
        };
        for w in waiters {
            w.wake();
        }
    }

    /// Wakes `waker` when an abandoned accept keeps a connection.
    pub(crate) fn wait_accepted(&self, waker: &Waker) {
        let mut st = self.inner.state.borrow_mut();
        let k = st.kept();
        if !k.accept_waiters.iter().any(|w| w.will_wake(waker)) {
            k.accept_waiters.push(waker.clone());
        }
    }

    /// The oldest connection kept by an abandoned accept.
    pub(crate) fn take_accepted(&self) -> Option<OwnedFd> {
        let mut st = self.inner.state.borrow_mut();
        st.kept.as_deref_mut()?.accepted.pop_front()
    }
}

impl std::os::fd::AsFd for SharedFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the fd stays open as long as any `SharedFd` clone lives.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.inner.fd) }
    }
}

/// Marks a read op in flight on a socket; dropping it lets the next read go.
#[derive(Debug)]
pub(crate) struct ReadGuard {
    fd: SharedFd,
}

impl ReadGuard {
    pub(crate) fn fd(&self) -> &SharedFd {
        &self.fd
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        let waiters = {
            let mut st = self.fd.inner.state.borrow_mut();
            st.reading = false;
            match st.kept.as_deref_mut() {
                Some(k) => std::mem::take(&mut k.read_waiters),
                None => Vec::new(),
            }
        };
        for w in waiters {
            w.wake();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if let Some(slot) = st.multi_recv.take()
            && crate::op::pooled::orphan_socket_recv(slot, self.fd)
        {
            // The multishot receive's end closes the fd.
            return;
        }
        if !st.released {
            close_fd(self.fd);
        }
    }
}

/// Copies `data` into `buf` (up to its capacity); returns the count.
pub(crate) fn copy_into<B: IoBufMut>(data: &[u8], buf: &mut B) -> usize {
    let n = data.len().min(buf.bytes_total());
    // SAFETY: `n` bytes fit in the buffer's capacity and the regions are
    // distinct allocations.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), buf.stable_mut_ptr(), n) };
    // SAFETY: the first `n` bytes were just written.
    unsafe { buf.set_init(n) };
    n
}
