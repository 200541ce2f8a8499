//! Pooled receives: into a buffer of the driver's pool, from a multishot
//! receive the driver keeps armed on the socket.
//!
//! How it works: on io_uring, a socket's first pooled receive arms one
//! multishot `RECV` (a `RECVMSG` on datagram sockets, so each datagram keeps
//! its source) with buffer selection from the pool; the kernel posts a
//! completion per arrival, each naming the buffer it filled, and the op
//! stays armed for the life of the socket. Completions queue in the op's
//! slot, so a receive future dropped mid-wait loses nothing: the next
//! receive takes what queued up. When the kernel ends the op (end of stream,
//! an error, `ENOBUFS` because every buffer is leased out) the next receive
//! re-arms it — after `ENOBUFS` only once a lease has come back. A plain
//! read on the socket takes the armed op down first, and what it received is
//! kept on the socket for that read; when the socket goes away, the op is
//! cancelled, its buffers return to the pool and the fd is closed after its
//! last completion. On the poll driver a receive takes a buffer from the
//! pool's free list only when the socket is readable.

use std::io;
use std::rc::Rc;

use super::net::cmsg::gro_segment;
use super::net::drained_by_read;
use super::pooled_layout::{PAYLOAD_AT, owned_datagram, parse, recvmsg_into, recvmsg_template};
use crate::buf::PooledBuf;
use crate::buf::pool::Pool;
use crate::driver::armed::Armed;
use crate::driver::op::{CQE_F_MORE, cqe_buffer, syscall_result};
use crate::fd::{SharedFd, WeakFd};
use crate::op::{Interest, Kind, Op, OpCode, Role, Sqe, Wait, uring};
use crate::release::Released;
use crate::runtime::context;

/// Receives into a pool buffer; `Ok(None)` at the end of a stream. The op
/// is made at the first poll (it needs the runtime's pool).
pub(crate) fn recv(fd: &SharedFd, datagram: bool) -> PooledRecv {
    PooledRecv::Start(fd.clone(), datagram)
}

/// The future of [`recv`].
pub(crate) enum PooledRecv {
    Start(SharedFd, bool),
    Op(Op<RecvPooled>),
    Done,
}

impl std::future::Future for PooledRecv {
    type Output = io::Result<Option<PooledBuf>>;

    #[inline]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        if let PooledRecv::Start(..) = this {
            // The fd moves into the op (no second count on it).
            let PooledRecv::Start(fd, datagram) = std::mem::replace(this, PooledRecv::Done) else {
                unreachable!()
            };
            match make_op(fd, datagram) {
                // `Done`, which holds nothing: no drop glue to run.
                Ok(op) => std::mem::forget(std::mem::replace(this, PooledRecv::Op(op))),
                Err(e) => return std::task::Poll::Ready(Err(e)),
            }
        }
        match this {
            PooledRecv::Op(op) => std::pin::Pin::new(op).poll(cx),
            _ => panic!("corio: a pooled receive polled after it ended"),
        }
    }
}

/// The op of one pooled receive (an `Unpin` future that can be kept and
/// polled again, for poll-level callers).
pub(crate) fn recv_op(fd: &SharedFd, datagram: bool) -> io::Result<Op<RecvPooled>> {
    make_op(fd.clone(), datagram)
}

#[inline]
fn make_op(fd: SharedFd, datagram: bool) -> io::Result<Op<RecvPooled>> {
    let core = context::current("a pooled receive");
    let pool = core.driver.borrow_mut().pool(datagram)?;
    Ok(Op::on(
        core,
        RecvPooled {
            fd,
            pool,
            datagram,
            kept: None,
            bid: None,
            msg: None,
        },
    ))
}

/// One pooled receive.
pub(crate) struct RecvPooled {
    fd: SharedFd,
    pool: Rc<Pool>,
    datagram: bool,
    /// What `recover` took from the socket's kept data (a datagram laid
    /// out as a pooled one); boxed, as it is rare: 16 bytes less in every
    /// pooled receive's future, which an idle connection holds.
    #[allow(clippy::box_collection)]
    kept: Option<Box<Vec<u8>>>,
    /// The pool buffer the poll driver's attempt filled.
    bid: Option<u16>,
    /// The header of a multishot `RECVMSG` being armed (moves to the armed
    /// value, which keeps it for the kernel).
    msg: Option<Box<libc::msghdr>>,
}

// SAFETY: the multishot SQE names the boxed header, which moves (with its
// heap address unchanged) into the armed value the driver keeps; buffers come
// from the pool, which outlives every lease and the ring's registration.
unsafe impl OpCode for RecvPooled {
    type Output = io::Result<Option<PooledBuf>>;

    fn wait(&self) -> Wait<'_> {
        Wait::Ready(&self.fd, Interest::Readable)
    }

    fn role(&self) -> Option<Role<'_>> {
        Some(Role {
            fd: &self.fd,
            kind: Kind::Read,
            multishot: true,
        })
    }

    fn recover(&mut self) -> Option<io::Result<u32>> {
        let mut kept = self.fd.kept();
        if self.datagram {
            let (data, from) = kept.take_datagram()?;
            let n = data.len() as u32;
            self.kept = Some(Box::new(owned_datagram(&data, from.as_ref())));
            return Some(Ok(n));
        }
        match kept.take_all_bytes()? {
            Ok(data) => {
                let n = data.len() as u32;
                self.kept = Some(Box::new(data));
                Some(Ok(n))
            }
            Err(e) => Some(Err(e)),
        }
    }

    fn arm(&mut self) -> Option<Box<Armed>> {
        // `sqe` made the datagram header before the driver arms the op.
        debug_assert_eq!(self.msg.is_some(), self.datagram);
        Some(Armed::boxed(ArmedRecv {
            fd: self.fd.downgrade(),
            pool: self.pool.clone(),
            msg: self.msg.take(),
        }))
    }

    fn sqe(&mut self) -> Sqe {
        if self.datagram {
            self.msg = Some(recvmsg_template());
        }
        uring!(match &self.msg {
            Some(msg) => {
                opcode::RecvMsgMulti::new(types::Fd(self.fd.raw()), &**msg, self.pool.group())
                    .build()
            }
            // One completion may fill several buffers (`Pool::split` hands
            // them out one by one).
            None if self.pool.mode().bundle => {
                opcode::RecvMultiBundle::new(types::Fd(self.fd.raw()), self.pool.group()).build()
            }
            None => opcode::RecvMulti::new(types::Fd(self.fd.raw()), self.pool.group()).build(),
        })
    }

    fn attempt(&mut self) -> io::Result<u32> {
        // The driver saw a free buffer before this attempt.
        let bid = self
            .pool
            .take()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOBUFS))?;
        let (ptr, len) = self.pool.buf_mut(bid);
        let res = if self.datagram {
            // SAFETY: buffer `bid` is ours until recycled: `len` writable
            // bytes, and nothing else refers to them meanwhile.
            recvmsg_into(self.fd.raw(), unsafe {
                std::slice::from_raw_parts_mut(ptr, len)
            })
        } else {
            // SAFETY: buffer `bid` is ours until recycled: `len` writable bytes.
            let r = unsafe { libc::recv(self.fd.raw(), ptr.cast(), len, libc::MSG_DONTWAIT) };
            syscall_result(r)
        };
        match res {
            Ok(n) if n > 0 || self.datagram => {
                self.bid = Some(bid);
                Ok(n)
            }
            res => {
                self.pool.put_back(bid);
                res
            }
        }
    }

    fn drained(&self, n: u32) -> bool {
        drained_by_read(&self.fd, self.datagram, n as usize, self.pool.buf_size())
    }

    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output {
        if let Some(data) = self.kept {
            let data = *data;
            if self.datagram {
                return Ok(Some(PooledBuf::owned_at(data, PAYLOAD_AT)));
            }
            return Ok((!data.is_empty()).then(|| PooledBuf::owned(data)));
        }
        let res = res?;
        let Some(bid) = self.bid.or_else(|| cqe_buffer(flags)) else {
            // No buffer: the end of a stream (or an empty datagram).
            return Ok(self.datagram.then(|| PooledBuf::owned(Vec::new())));
        };
        // The poll driver's attempt filled the buffer from its start.
        let (start, n) = match self.bid {
            Some(_) => (0, res as usize),
            None => self.pool.piece(res),
        };
        if !self.datagram {
            return Ok(Some(PooledBuf::from_pool(self.pool, bid, start, start, n)));
        }
        let range = parse(self.pool.bytes(bid, start, n)).map(|p| p.payload);
        let range = range.unwrap_or(0..0);
        Ok(Some(PooledBuf::from_pool(
            self.pool,
            bid,
            start,
            start + range.start,
            range.len(),
        )))
    }
}

/// The multishot receive the driver keeps armed on a socket. Once taken
/// down, each completion that still comes is kept on the socket for the
/// read that took it down (or dropped, if the socket is gone), and its
/// buffer goes back to the pool; the read may go once the last has come.
struct ArmedRecv {
    fd: WeakFd,
    pool: Rc<Pool>,
    /// The header the kernel reads for each datagram (`None` on a stream
    /// socket, so it also tells which kind this is: no separate flag, the
    /// value stays at 24 bytes for an idle connection).
    msg: Option<Box<libc::msghdr>>,
}

impl ArmedRecv {
    fn datagram(&self) -> bool {
        self.msg.is_some()
    }
}

impl Released for ArmedRecv {
    fn completion(&mut self, res: i32, flags: u32) -> bool {
        let last = flags & CQE_F_MORE == 0;
        let lease = cqe_buffer(flags).map(|bid| {
            let (start, n) = self.pool.piece(res.max(0) as u32);
            PooledBuf::from_pool(self.pool.clone(), bid, start, start, n)
        });
        if let Some(fd) = self.fd.upgrade() {
            let mut kept = fd.kept();
            match (&lease, res) {
                (Some(data), _) if self.datagram() => {
                    if let Some(p) = parse(data) {
                        // A coalesced (GRO) run is kept as its datagrams.
                        let segment = gro_segment(p.control);
                        kept.stash_datagrams(&data[p.payload], p.from, segment);
                    }
                }
                (Some(data), _) => kept.stash_bytes(data),
                (None, 0) if !self.datagram() => kept.stash_end(Ok(())),
                // Cancelled, out of buffers, O_NONBLOCK: not the socket's end.
                (None, e)
                    if e < 0
                        && !self.datagram()
                        && ![libc::ECANCELED, libc::ENOBUFS, libc::EAGAIN].contains(&-e) =>
                {
                    kept.stash_end(Err(io::Error::from_raw_os_error(-e)));
                }
                _ => {}
            }
            drop(kept);
            if last {
                fd.end_read();
            }
        }
        last
    }
}
