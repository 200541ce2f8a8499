//! `UdpSocket` with control messages: `send_msg`/`recv_msg`, the options
//! that turn received metadata on, and GSO/GRO (`send_segments`, `set_gro`).
//!
//! How it works: both are sendmsg(2)/recvmsg(2) ops (`SENDMSG`/`RECVMSG`
//! on io_uring) that own their buffer and their control area, as every
//! other op. `send_segments` puts a `UDP_SEGMENT` message on one sendmsg, so
//! the kernel cuts the payload into datagrams; where the kernel refuses
//! (`EIO` or `EINVAL` from devices without checksum offload, or a kernel
//! older than 4.18) the socket remembers it and sends one datagram per
//! segment from then on.

use std::io;
use std::net::SocketAddr;

use super::meta::{Cmsg, RecvMeta};
use super::{Gso, UdpSocket};
use crate::buf::{BufResult, IoBuf, IoBufMut, PooledBuf};
use crate::net::tcp::sock_addr;
use crate::op::Op;
use crate::op::net::cmsg::{RawCmsg, SO_TIMESTAMPNS, UDP_GRO, UDP_SEGMENT, encode, messages};
use crate::op::net::{RecvMsg, SendMsg};
use crate::op::pooled_layout::parse;

/// Room for every control message a receive reports: IPv6 pktinfo, TOS,
/// a timestamp and the GRO segment size, with room to spare.
const RECV_CONTROL: usize = 256;

/// The most datagrams one GSO send may carry (the kernel's
/// `UDP_MAX_SEGMENTS` before Linux 6.9 raised it to 128).
pub const MAX_SEGMENTS: usize = 64;

/// The largest payload of one GSO send (that of one IPv4 UDP datagram).
pub const MAX_GSO_PAYLOAD: usize = 65_507;

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl UdpSocket {
    /// Sends the initialised bytes of `buf` as one datagram to `addr` (the
    /// connected peer for `None`) with control messages, like sendmsg(2).
    ///
    /// A message of the other address family than the socket's (an IPv6
    /// source on an IPv4 socket), or more control data than 1 KiB, is
    /// refused with `InvalidInput` before anything is sent.
    ///
    /// Not cancel-safe, as [`send_to`](Self::send_to).
    ///
    /// ```
    /// use corio::net::UdpSocket;
    /// use corio::net::udp::Cmsg;
    ///
    /// corio::run(async {
    ///     let rx = UdpSocket::bind("127.0.0.1:0")?;
    ///     rx.set_recv_tos(true)?;
    ///     let tx = UdpSocket::bind("127.0.0.1:0")?;
    ///     let to = Some(rx.local_addr()?);
    ///     tx.send_msg(b"hi".as_slice(), to, &[Cmsg::Tos(0b10)]).await.0?;
    ///     let (meta, _buf) = rx.recv_msg(vec![0u8; 1500]).await;
    ///     assert_eq!(meta?.ecn(), Some(0b10));
    ///     Ok::<_, std::io::Error>(())
    /// })
    /// .unwrap();
    /// ```
    pub async fn send_msg<B: IoBuf>(
        &self,
        buf: B,
        addr: Option<SocketAddr>,
        cmsgs: &[Cmsg],
    ) -> BufResult<usize, B> {
        let control = match self.control(cmsgs) {
            Ok(c) => c,
            Err(e) => return (Err(e), buf),
        };
        self.send_with(buf, addr, control).await
    }

    /// Lays out `cmsgs` for this socket's family.
    fn control(&self, cmsgs: &[Cmsg]) -> io::Result<Box<[usize]>> {
        let v6 = match cmsgs.iter().any(Cmsg::needs_family) {
            true => Some(self.local_addr()?.is_ipv6()),
            false => None,
        };
        let raw = cmsgs
            .iter()
            .map(|c| c.raw(v6))
            .collect::<io::Result<Vec<_>>>()?;
        encode(&raw).ok_or_else(|| invalid("corio: control data too large (more than 1 KiB)"))
    }

    async fn send_with<B: IoBuf>(
        &self,
        buf: B,
        addr: Option<SocketAddr>,
        control: Box<[usize]>,
    ) -> BufResult<usize, B> {
        let op = SendMsg::with_control(&self.fd, vec![buf], addr.map(Into::into), control);
        let (res, mut bufs) = Op::new(op).await;
        (res, bufs.pop().expect("one buffer in, one out"))
    }

    /// Receives one datagram into `buf` (from its start) with what the
    /// kernel reports about it, like recvmsg(2): its source, and the
    /// metadata the `set_recv_*` options and [`set_gro`](Self::set_gro)
    /// turned on (see [`RecvMeta`]).
    ///
    /// Cancel-safe, as [`recv_from`](Self::recv_from); a datagram kept for
    /// a dropped receive comes back without metadata, and a coalesced (GRO)
    /// one as the datagrams it coalesced.
    pub async fn recv_msg<B: IoBufMut>(&self, buf: B) -> BufResult<RecvMeta, B> {
        let (res, buf) = Op::new(RecvMsg::with_control(&self.fd, buf, RECV_CONTROL)).await;
        let res = res.and_then(|(n, from, control)| {
            let from = match from {
                Some(from) => sock_addr(from)?,
                None => self.peer_addr()?,
            };
            Ok(RecvMeta::new(n, from, &control))
        });
        (res, buf)
    }

    /// Receives one datagram into a buffer of the runtime's pool, with its
    /// metadata: [`recv_msg`](Self::recv_msg) without a buffer of your own.
    /// On io_uring it takes its datagram from the multishot `RECVMSG` armed
    /// on the socket (as [`recv_pooled`](Self::recv_pooled)), whose
    /// completions carry the source and control messages in the pool
    /// buffer, before the payload; the lease derefs to the payload. Room
    /// for the payload is the pool's buffer size less 272 bytes; a longer
    /// datagram (or GRO run) is cut and reported
    /// [`truncated`](RecvMeta::truncated).
    ///
    /// Cancel-safe, as [`recv_from`](Self::recv_from).
    pub async fn recv_pooled_msg(&self) -> io::Result<(PooledBuf, RecvMeta)> {
        let got = crate::op::pooled::recv(&self.fd, true).await?;
        let buf = got.unwrap_or_else(|| PooledBuf::owned(Vec::new()));
        let meta = match parse(buf.header()) {
            Some(p) => {
                let from = match p.from {
                    Some(from) => sock_addr(from)?,
                    None => self.peer_addr()?,
                };
                RecvMeta::from_parts(buf.len(), from, p.flags, messages(p.control))
            }
            None => RecvMeta::from_parts(buf.len(), self.peer_addr()?, 0, messages(&[])),
        };
        Ok((buf, meta))
    }

    /// Reports each datagram's destination address and interface in
    /// [`RecvMeta`] (`IP_PKTINFO`, or `IPV6_RECVPKTINFO` on an IPv6 socket).
    pub fn set_recv_pktinfo(&self, on: bool) -> io::Result<()> {
        match self.local_addr()?.is_ipv6() {
            true => self.set_opt(libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, on),
            false => self.set_opt(libc::IPPROTO_IP, libc::IP_PKTINFO, on),
        }
    }

    /// Reports each datagram's TOS byte, ECN included, in [`RecvMeta`]
    /// (`IP_RECVTOS`, or `IPV6_RECVTCLASS` on an IPv6 socket).
    pub fn set_recv_tos(&self, on: bool) -> io::Result<()> {
        match self.local_addr()?.is_ipv6() {
            true => self.set_opt(libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, on),
            false => self.set_opt(libc::IPPROTO_IP, libc::IP_RECVTOS, on),
        }
    }

    /// Reports when the kernel received each datagram in [`RecvMeta`]
    /// (`SO_TIMESTAMPNS`).
    pub fn set_recv_timestamps(&self, on: bool) -> io::Result<()> {
        self.set_opt(libc::SOL_SOCKET, SO_TIMESTAMPNS, on)
    }

    /// Lets the kernel coalesce datagrams of one flow into one receive
    /// (`UDP_GRO`, Linux 5.0): [`recv_msg`](Self::recv_msg) then reports the
    /// size of each in [`RecvMeta::segment_size`], and
    /// [`RecvMeta::segments`] splits the buffer. Receives without metadata
    /// (`recv`, `recv_from`) should not be used with it: they cannot tell
    /// where one datagram ends. Give receives room for 64 KiB.
    pub fn set_gro(&self, on: bool) -> io::Result<()> {
        self.set_opt(libc::SOL_UDP, UDP_GRO, on)
    }

    /// Whether [`send_segments`](Self::send_segments) may use GSO (on by
    /// default; turned off for good on this socket when the kernel refuses
    /// it). Off, it sends one datagram per segment.
    pub fn set_gso(&self, on: bool) {
        self.gso.set(if on { Gso::Unknown } else { Gso::Off });
    }

    /// Whether [`send_segments`](Self::send_segments) uses GSO: false once
    /// turned off or refused by the kernel.
    pub fn gso(&self) -> bool {
        self.gso.get() != Gso::Off
    }

    fn set_opt(&self, level: libc::c_int, name: libc::c_int, on: bool) -> io::Result<()> {
        let v = libc::c_int::from(on);
        let len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: passes a valid pointer to an int and its size.
        let res =
            unsafe { libc::setsockopt(self.fd.raw(), level, name, (&v as *const i32).cast(), len) };
        if res < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends the initialised bytes of `buf` to `addr` as datagrams of
    /// `segment_size` bytes each (the last may be shorter), with one
    /// sendmsg(2) and a `UDP_SEGMENT` message (GSO, Linux 4.18) where the
    /// kernel allows it, else one send per datagram (see
    /// [`set_gso`](Self::set_gso)). Returns the bytes sent.
    ///
    /// `InvalidInput` for a zero `segment_size`, more than
    /// [`MAX_SEGMENTS`] datagrams, or more than [`MAX_GSO_PAYLOAD`] bytes.
    /// Not cancel-safe: a dropped send may have sent some of the datagrams.
    pub async fn send_segments<B: IoBuf>(
        &self,
        buf: B,
        segment_size: usize,
        addr: SocketAddr,
    ) -> BufResult<usize, B> {
        let len = buf.bytes_init();
        if segment_size == 0 {
            return (Err(invalid("corio: segment size 0")), buf);
        }
        if len > MAX_GSO_PAYLOAD || len.div_ceil(segment_size) > MAX_SEGMENTS {
            return (
                Err(invalid("corio: too many segments for one GSO send")),
                buf,
            );
        }
        if len <= segment_size {
            return self.send_with(buf, Some(addr), Box::default()).await;
        }
        if self.gso_allowed() {
            let raw = RawCmsg::u16(libc::SOL_UDP, UDP_SEGMENT, segment_size as u16);
            let control = encode(&[raw]).expect("one message fits");
            let (res, buf) = self.send_with(buf, Some(addr), control).await;
            match res {
                Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) => {
                    self.gso.set(Gso::Off);
                    return self.send_each(buf, segment_size, addr).await;
                }
                res => return (res, buf),
            }
        }
        self.send_each(buf, segment_size, addr).await
    }

    /// Whether to try GSO: not turned off, and the kernel knows
    /// `UDP_SEGMENT` (asked once per socket).
    fn gso_allowed(&self) -> bool {
        match self.gso.get() {
            Gso::On => true,
            Gso::Off => false,
            Gso::Unknown => {
                let mut v: libc::c_int = 0;
                let mut len = size_of::<libc::c_int>() as libc::socklen_t;
                // SAFETY: passes a valid pointer to an int and its size.
                let res = unsafe {
                    libc::getsockopt(
                        self.fd.raw(),
                        libc::SOL_UDP,
                        UDP_SEGMENT,
                        (&mut v as *mut i32).cast(),
                        &mut len,
                    )
                };
                let on = res == 0;
                self.gso.set(if on { Gso::On } else { Gso::Off });
                on
            }
        }
    }

    /// The GSO fallback: one datagram per segment.
    async fn send_each<B: IoBuf>(
        &self,
        mut buf: B,
        segment_size: usize,
        addr: SocketAddr,
    ) -> BufResult<usize, B> {
        let len = buf.bytes_init();
        let mut sent = 0;
        while sent < len {
            let end = (sent + segment_size).min(len);
            let (res, slice) = self
                .send_with(buf.slice(sent..end), Some(addr), Box::default())
                .await;
            buf = slice.into_inner();
            match res {
                Ok(_) => sent = end,
                Err(e) if sent == 0 => return (Err(e), buf),
                Err(_) => break,
            }
        }
        (Ok(sent), buf)
    }
}
