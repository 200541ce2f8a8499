//! Pooled receives and multishot accepts.
//!
//! How it works: on io_uring, a socket's first pooled receive arms one
//! multishot `RECV` with buffer selection from the runtime's pool; the kernel
//! posts a completion per arrival, each naming the buffer it filled, and the
//! op stays armed for the life of the socket. Completions queue in the op's
//! driver slot, so a receive future dropped mid-wait loses nothing: the next
//! receive takes what queued up. When the kernel ends the op (end of stream,
//! an error, `ENOBUFS` because every buffer is leased out) the next receive
//! re-arms it — after `ENOBUFS` only once a lease has come back, which wakes
//! it (no timer, no spin). When the socket goes away, its op is cancelled and
//! leftover buffers return to the pool; the fd is closed after the op's last
//! completion. `Incoming` does the same with a multishot `ACCEPT`, and keeps
//! connections that arrive after it is dropped for the listener's next
//! accept. On the poll driver, a receive takes a buffer from the pool's free
//! list only when the socket is readable.

use std::future::poll_fn;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll};

use super::{Interest, Op, syscall_result};
use crate::buf::PooledBuf;
use crate::buf::pool::Pool;
use crate::net::fd::SharedFd;
use crate::op::net::{Accept, AddrBuf};
use crate::runtime::context;
use crate::runtime::coop;
use crate::runtime::core::Core;

/// Receives into a pool buffer; `Ok(None)` at the end of a stream.
pub(crate) async fn recv(fd: &SharedFd, datagram: bool) -> io::Result<Option<PooledBuf>> {
    let core = context::current("a pooled receive");
    let pool = core.pool()?;
    let _guard = fd.begin_read().await;
    coop::yield_if_spent().await;
    if datagram {
        if let Some((data, _)) = fd.take_datagram() {
            coop::charge();
            return Ok(Some(PooledBuf::owned(data)));
        }
    } else if let Some(kept) = fd.take_stash_all() {
        coop::charge();
        return kept.map(|v| (!v.is_empty()).then(|| PooledBuf::owned(v)));
    }
    #[cfg(corio_uring)]
    if core.is_uring() {
        return poll_fn(|cx| uring::poll_recv(&core, &pool, fd, datagram, cx)).await;
    }
    let out = poll_fn(|cx| poll_recv_ready(&core, &pool, fd, datagram, cx)).await;
    coop::charge();
    out
}

/// The poll driver's pooled receive: a buffer only when data is there.
fn poll_recv_ready(
    core: &Core,
    pool: &Rc<Pool>,
    fd: &SharedFd,
    datagram: bool,
    cx: &mut Context<'_>,
) -> Poll<io::Result<Option<PooledBuf>>> {
    loop {
        if !core
            .driver
            .borrow_mut()
            .poll()
            .poll_ready(fd.raw(), Interest::Readable, cx.waker())
        {
            return Poll::Pending;
        }
        let Some(bid) = pool.take() else {
            core.counters.enobufs();
            pool.wait_for_free(cx.waker());
            return Poll::Pending;
        };
        let (ptr, len) = pool.buf_mut(bid);
        // SAFETY: buffer `bid` is ours until recycled: `len` writable bytes.
        let r = unsafe { libc::recv(fd.raw(), ptr.cast(), len, libc::MSG_DONTWAIT) };
        match syscall_result(r) {
            Ok(n) if n > 0 || datagram => {
                if super::drained_by_read(datagram, n as usize, len) {
                    core.driver
                        .borrow_mut()
                        .poll()
                        .clear_ready(fd.raw(), Interest::Readable);
                }
                return Poll::Ready(Ok(Some(PooledBuf::from_pool(
                    pool.clone(),
                    bid,
                    n as usize,
                ))));
            }
            Ok(_) => {
                pool.put_back(bid);
                return Poll::Ready(Ok(None));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                core.counters.would_block();
                pool.put_back(bid);
                core.driver
                    .borrow_mut()
                    .poll()
                    .clear_ready(fd.raw(), Interest::Readable);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => pool.put_back(bid),
            Err(e) => {
                pool.put_back(bid);
                return Poll::Ready(Err(e));
            }
        }
    }
}

/// The socket's last handle is gone while its multishot receive is armed:
/// cancel it, return its buffers, and close `fd` after its last completion.
/// False when that is not possible (no io_uring runtime here): the caller
/// closes the fd itself.
pub(crate) fn orphan_socket_recv(slot: usize, fd: RawFd) -> bool {
    #[cfg(corio_uring)]
    {
        uring::orphan_socket_recv(slot, fd)
    }
    #[cfg(not(corio_uring))]
    {
        let _ = (slot, fd);
        false
    }
}

/// A multishot accept on a listener (plain accepts on the poll driver).
pub(crate) struct MultiAccept {
    #[cfg_attr(not(corio_uring), allow(dead_code))]
    core: Rc<Core>,
    fd: SharedFd,
    /// Driver slot of the armed multishot accept (io_uring).
    #[cfg_attr(not(corio_uring), allow(dead_code))]
    slot: Option<usize>,
}

impl MultiAccept {
    pub(crate) fn new(fd: SharedFd) -> MultiAccept {
        MultiAccept {
            core: context::current("TcpListener::incoming"),
            fd,
            slot: None,
        }
    }

    /// The next accepted connection.
    pub(crate) async fn next(&mut self) -> io::Result<OwnedFd> {
        coop::yield_if_spent().await;
        if let Some(fd) = self.fd.take_accepted() {
            coop::charge();
            return Ok(fd);
        }
        #[cfg(corio_uring)]
        if self.core.is_uring() {
            return poll_fn(|cx| self.poll_uring(cx)).await;
        }
        let op = Accept {
            fd: self.fd.clone(),
            addr: AddrBuf::new(),
        };
        Op::new(op).await.map(|(fd, _)| fd)
    }
}

impl Drop for MultiAccept {
    fn drop(&mut self) {
        #[cfg(corio_uring)]
        self.drop_uring();
    }
}

#[cfg(corio_uring)]
mod uring {
    use super::*;
    use std::os::fd::FromRawFd;

    use io_uring::{opcode, types};

    use crate::driver::{MultiOrphan, cqe_buffer};

    /// Wraps an accepted fd.
    fn owned(raw: i32) -> OwnedFd {
        // SAFETY: a successful accept returns a new fd that we now own.
        unsafe { OwnedFd::from_raw_fd(raw) }
    }

    pub(super) fn poll_recv(
        core: &Core,
        pool: &Rc<Pool>,
        fd: &SharedFd,
        datagram: bool,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Option<PooledBuf>>> {
        loop {
            let slot = match fd.multi_recv() {
                Some(slot) => slot,
                None => {
                    if !pool.has_free() {
                        pool.wait_for_free(cx.waker());
                        return Poll::Pending;
                    }
                    let sqe = opcode::RecvMulti::new(types::Fd(fd.raw()), 0).build();
                    let Some(slot) = core.driver.borrow_mut().uring().submit_multi(sqe) else {
                        return Poll::Ready(Err(io::Error::other(
                            "corio: the runtime has shut down",
                        )));
                    };
                    fd.set_multi_recv(Some(slot));
                    slot
                }
            };
            let mut guard = core.driver.borrow_mut();
            let driver = guard.uring();
            let m = driver.multi(slot);
            let Some((res, flags)) = m.cqes.pop_front() else {
                if m.ended {
                    driver.remove(slot);
                    fd.set_multi_recv(None);
                    continue;
                }
                m.waker = Some(cx.waker().clone());
                return Poll::Pending;
            };
            if m.ended && m.cqes.is_empty() {
                driver.remove(slot);
                fd.set_multi_recv(None);
            }
            drop(guard);
            let buf = cqe_buffer(flags)
                .map(|bid| PooledBuf::from_pool(pool.clone(), bid, res.max(0) as usize));
            if res > 0 || (res == 0 && datagram) {
                let buf = buf.unwrap_or_else(|| PooledBuf::owned(Vec::new()));
                return Poll::Ready(Ok(Some(buf)));
            }
            // A completion without data gives its buffer (if any) back.
            drop(buf);
            match -res {
                0 => return Poll::Ready(Ok(None)),
                // Every buffer is leased out: re-armed once one comes back.
                libc::ENOBUFS => core.counters.enobufs(),
                // A socket in O_NONBLOCK mode: make it blocking (io_uring
                // waits for data itself) and re-arm.
                libc::EAGAIN => set_blocking(fd.raw()),
                e => return Poll::Ready(Err(io::Error::from_raw_os_error(e))),
            }
        }
    }

    fn set_blocking(fd: RawFd) {
        // SAFETY: fcntl on an fd the caller's handle keeps open.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
    }

    /// Returns buffers of a socket's orphaned multishot receive; closes the
    /// fd after its last completion.
    struct SocketRecvOrphan {
        pool: Option<Rc<Pool>>,
        fd: RawFd,
    }

    impl MultiOrphan for SocketRecvOrphan {
        fn cqe(&mut self, _res: i32, flags: u32) {
            if let (Some(bid), Some(pool)) = (cqe_buffer(flags), &self.pool) {
                pool.recycle(bid);
            }
        }

        fn end(self: Box<Self>) {
            crate::runtime::core::close_fd(self.fd);
        }
    }

    pub(super) fn orphan_socket_recv(slot: usize, fd: RawFd) -> bool {
        context::with_core(|core| {
            let Some(core) = core.filter(|c| c.is_uring()) else {
                return false;
            };
            let orphan = Box::new(SocketRecvOrphan {
                pool: core.pool.borrow().clone(),
                fd,
            });
            match core.driver.try_borrow_mut() {
                Ok(mut d) => d.uring().orphan_multi(slot, orphan),
                // Inside the driver (an abandoned op let go of the socket):
                // finish at its next submit.
                Err(_) => core.pending_orphans.borrow_mut().push((slot, orphan)),
            }
            true
        })
    }

    /// Keeps connections accepted for a dropped `Incoming` on the listener.
    struct AcceptOrphan {
        listener: SharedFd,
    }

    impl MultiOrphan for AcceptOrphan {
        fn cqe(&mut self, res: i32, _flags: u32) {
            if res >= 0 {
                self.listener.stash_accepted(owned(res));
            }
        }

        fn end(self: Box<Self>) {}
    }

    impl MultiAccept {
        pub(super) fn poll_uring(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<OwnedFd>> {
            loop {
                let slot = match self.slot {
                    Some(slot) => slot,
                    None => {
                        let sqe = opcode::AcceptMulti::new(types::Fd(self.fd.raw()))
                            .flags(libc::SOCK_CLOEXEC)
                            .build();
                        let submitted = self.core.driver.borrow_mut().uring().submit_multi(sqe);
                        let Some(slot) = submitted else {
                            return Poll::Ready(Err(io::Error::other(
                                "corio: the runtime has shut down",
                            )));
                        };
                        self.slot = Some(slot);
                        slot
                    }
                };
                let mut guard = self.core.driver.borrow_mut();
                let driver = guard.uring();
                let m = driver.multi(slot);
                let Some((res, _flags)) = m.cqes.pop_front() else {
                    if m.ended {
                        driver.remove(slot);
                        self.slot = None;
                        continue;
                    }
                    m.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                };
                if m.ended && m.cqes.is_empty() {
                    driver.remove(slot);
                    self.slot = None;
                }
                drop(guard);
                if res >= 0 {
                    return Poll::Ready(Ok(owned(res)));
                }
                // An error (EMFILE, say) ends the multishot op: report it;
                // the next call re-arms.
                return Poll::Ready(Err(io::Error::from_raw_os_error(-res)));
            }
        }

        pub(super) fn drop_uring(&mut self) {
            let Some(slot) = self.slot.take() else { return };
            let orphan = Box::new(AcceptOrphan {
                listener: self.fd.clone(),
            });
            match self.core.driver.try_borrow_mut() {
                Ok(mut d) => d.uring().orphan_multi(slot, orphan),
                Err(_) => self.core.pending_orphans.borrow_mut().push((slot, orphan)),
            }
        }
    }
}
