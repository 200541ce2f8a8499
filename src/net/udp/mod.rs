//! UDP: [`UdpSocket`], datagrams with owned buffers, and the typed control
//! messages of [`send_msg`](UdpSocket::send_msg) and
//! [`recv_msg`](UdpSocket::recv_msg) ([`Cmsg`], [`RecvMeta`]).
//!
//! How it works: `send`/`recv` map to io_uring send/recv ops, `send_to` and
//! `recv_from` to sendmsg/recvmsg with a boxed address, `send_msg`,
//! `recv_msg` and `send_segments` (GSO) to sendmsg/recvmsg with a control
//! area too (`msg.rs`, `meta.rs`). A datagram that arrives for a receive
//! whose future was dropped is kept on the socket and returned by the next
//! receive.

#[cfg(target_os = "linux")]
mod meta;
#[cfg(target_os = "linux")]
mod msg;
/// `send_to_zc`.
mod zc;

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use socket2::{SockRef, Type};

use super::ToSocketAddrs;
use super::lookup::resolve;
use super::socket::{each_addr, new_socket};
use super::tcp::sock_addr;
use crate::buf::{BufResult, IoBuf, IoBufMut, PooledBuf};
use crate::fd::SharedFd;
use crate::op::Op;
use crate::op::net::{Connect, Recv, RecvMsg, Send, SendMsg};

#[cfg(target_os = "linux")]
pub use meta::{Cmsg, RecvMeta};
#[cfg(target_os = "linux")]
pub use msg::{MAX_GSO_PAYLOAD, MAX_SEGMENTS};

/// Whether `send_segments` uses GSO on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gso {
    /// Not asked yet whether the kernel knows `UDP_SEGMENT`.
    Unknown,
    On,
    /// Turned off, or refused by the kernel: one send per segment.
    Off,
}

/// A UDP socket.
///
/// ```
/// use corio::IoBuf;
/// use corio::net::UdpSocket;
///
/// corio::run(async {
///     let server = UdpSocket::bind("127.0.0.1:0")?;
///     let client = UdpSocket::bind("127.0.0.1:0")?;
///     client.send_to(b"ping".as_slice(), server.local_addr()?).await.0?;
///
///     // An echo: the datagram goes back where it came from.
///     let (res, buf) = server.recv_from(vec![0u8; 1500]).await;
///     let (n, peer) = res?;
///     server.send_to(buf.slice(..n), peer).await.0?;
///
///     let (res, buf) = client.recv_from(vec![0u8; 1500]).await;
///     let (n, from) = res?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], server.local_addr()?));
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Debug)]
pub struct UdpSocket {
    fd: SharedFd,
    gso: Cell<Gso>,
}

impl UdpSocket {
    fn new(fd: OwnedFd) -> UdpSocket {
        UdpSocket {
            fd: SharedFd::new(fd),
            gso: Cell::new(Gso::Unknown),
        }
    }

    /// Binds a socket to `addr` (port 0 picks a free port). A host name is
    /// resolved by std's resolver, which blocks.
    pub fn bind(addr: impl std::net::ToSocketAddrs) -> io::Result<UdpSocket> {
        Self::bind_with(addr, false)
    }

    /// Like [`bind`](Self::bind), with `SO_REUSEPORT`: sockets of several
    /// shards share the port and the kernel spreads datagrams over them.
    pub fn bind_reuseport(addr: impl std::net::ToSocketAddrs) -> io::Result<UdpSocket> {
        Self::bind_with(addr, true)
    }

    fn bind_with(addr: impl std::net::ToSocketAddrs, reuse_port: bool) -> io::Result<UdpSocket> {
        let addrs = super::socket::resolve(addr)?;
        each_addr(&addrs, |a| {
            let s = new_socket(a, Type::DGRAM)?;
            if reuse_port {
                s.set_reuse_port(true)?;
            }
            s.bind(&(*a).into())?;
            Ok(UdpSocket::new(OwnedFd::from(s)))
        })
    }

    /// Sets the default destination and filters incoming datagrams to it,
    /// like connect(2), trying each resolved address in turn. A host name is
    /// resolved on the blocking pool (see [`lookup_host`](super::lookup_host)).
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addrs = resolve(&addr).await?;
        let mut last = None;
        for a in addrs {
            let op = Connect::new(&self.fd, a.into());
            match Op::new(op).await {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Sends the initialised bytes of `buf` as one datagram to `addr`, like
    /// sendmsg(2). A host name is resolved (on the blocking pool) for every
    /// call and the first address is used; resolve once with
    /// [`lookup_host`](super::lookup_host) to send many.
    ///
    /// Not cancel-safe: a dropped send may or may not have sent the datagram.
    pub async fn send_to<B: IoBuf>(&self, buf: B, addr: impl ToSocketAddrs) -> BufResult<usize, B> {
        let addr = match resolve(&addr).await {
            Ok(a) => a[0],
            Err(e) => return (Err(e), buf),
        };
        let (res, mut bufs) = Op::new(SendMsg::new(&self.fd, vec![buf], Some(addr.into()))).await;
        (res, bufs.pop().expect("one buffer in, one out"))
    }

    /// Receives one datagram into `buf` (from its start) and its source,
    /// like recvmsg(2). A datagram longer than the buffer is truncated.
    ///
    /// Cancel-safe: a datagram that arrives for a dropped receive is
    /// returned by the next one.
    pub async fn recv_from<B: IoBufMut>(&self, buf: B) -> BufResult<(usize, SocketAddr), B> {
        let (res, buf) = Op::new(RecvMsg::new(&self.fd, buf)).await;
        let res = res.and_then(|(n, from, _)| match from {
            Some(from) => sock_addr(from).map(|a| (n, a)),
            // Kept by a dropped `recv` of a connected socket: its peer.
            None => self.peer_addr().map(|p| (n, p)),
        });
        (res, buf)
    }

    /// Sends `buf` to the connected peer, like send(2).
    ///
    /// Not cancel-safe, as [`send_to`](Self::send_to).
    pub fn send<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        Op::new(Send::new(&self.fd, buf))
    }

    /// Receives one datagram from the connected peer into `buf`, like recv(2).
    ///
    /// Cancel-safe, as [`recv_from`](Self::recv_from).
    pub fn recv<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        Op::new(Recv::new(&self.fd, buf, true))
    }

    /// Receives one datagram from the connected peer into a buffer of the
    /// runtime's pool (see [`TcpStream::recv_pooled`](crate::net::TcpStream::recv_pooled));
    /// a datagram longer than the pool's buffer size less 272 bytes (its
    /// source and control messages go first) is truncated.
    pub async fn recv_pooled(&self) -> io::Result<PooledBuf> {
        let got = crate::op::pooled::recv(&self.fd, true).await?;
        Ok(got.unwrap_or_else(|| PooledBuf::owned(Vec::new())))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(self).local_addr()?)
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sock_addr(SockRef::from(self).peer_addr()?)
    }

    /// Allows sending to broadcast addresses (`SO_BROADCAST`).
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        SockRef::from(self).set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    pub fn broadcast(&self) -> io::Result<bool> {
        SockRef::from(self).broadcast()
    }

    /// Joins an IPv4 multicast group on the interface with address `interface`.
    pub fn join_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        SockRef::from(self).join_multicast_v4(&group, &interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, group: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        SockRef::from(self).leave_multicast_v4(&group, &interface)
    }

    /// Joins an IPv6 multicast group on interface index `interface` (0: any).
    pub fn join_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        SockRef::from(self).join_multicast_v6(&group, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, group: Ipv6Addr, interface: u32) -> io::Result<()> {
        SockRef::from(self).leave_multicast_v6(&group, interface)
    }

    /// Whether IPv4 multicast sent by this socket loops back to local listeners.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        SockRef::from(self).set_multicast_loop_v4(on)
    }

    /// Whether IPv6 multicast sent by this socket loops back to local listeners.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        SockRef::from(self).set_multicast_loop_v6(on)
    }

    /// Time-to-live of outgoing IPv4 multicast datagrams.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        SockRef::from(self).set_multicast_ttl_v4(ttl)
    }

    /// Time-to-live of outgoing unicast IPv4 datagrams.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        SockRef::from(self).set_ttl_v4(ttl)
    }

    /// Wraps a std socket (blocking or not).
    pub fn from_std(socket: std::net::UdpSocket) -> UdpSocket {
        UdpSocket::new(OwnedFd::from(socket))
    }

    /// Returns the std socket; `ResourceBusy` if an op still uses it.
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        self.fd
            .try_release()
            .map(std::net::UdpSocket::from)
            .map_err(|_| super::tcp::busy())
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.raw()
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd stays open at least as long as `self`.
        unsafe { BorrowedFd::borrow_raw(self.fd.raw()) }
    }
}
