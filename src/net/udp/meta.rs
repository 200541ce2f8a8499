//! Typed control messages of UDP sends and receives: [`Cmsg`] to send,
//! [`RecvMeta`] received.
//!
//! How it works: a [`Cmsg`] becomes the raw message of the socket's family
//! (`IP_PKTINFO` or `IPV6_PKTINFO`, `IP_TOS` or `IPV6_TCLASS`,
//! `UDP_SEGMENT`) just before it is sent, so a message that does not fit
//! the socket is refused with `InvalidInput` instead of being ignored by the
//! kernel. A receive walks the control messages the kernel wrote and fills
//! in the fields of [`RecvMeta`] it knows; others are skipped.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use crate::op::net::cmsg::{Control, RawCmsg, SO_TIMESTAMPNS, UDP_GRO, UDP_SEGMENT, read_int};

/// A control message to send with [`UdpSocket::send_msg`](super::UdpSocket::send_msg).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cmsg {
    /// Sends from source address `src` (unspecified: the kernel picks) out
    /// of interface `ifindex` (0: the route picks): `IP_PKTINFO` on an IPv4
    /// socket, `IPV6_PKTINFO` on an IPv6 one. The address must be of the
    /// socket's family.
    PktInfo {
        /// The source address.
        src: IpAddr,
        /// The outgoing interface's index, or 0.
        ifindex: u32,
    },
    /// The TOS byte (DSCP and ECN, `dscp << 2 | ecn`): `IP_TOS` on an IPv4
    /// socket, `IPV6_TCLASS` on an IPv6 one.
    Tos(u8),
    /// Splits the payload into datagrams of this many bytes (the last may
    /// be shorter): `UDP_SEGMENT` (GSO, Linux 4.18). See
    /// [`UdpSocket::send_segments`](super::UdpSocket::send_segments).
    Segment(u16),
}

/// `IPV6_TCLASS`-style `int` of a byte.
fn int(b: u8) -> libc::c_int {
    libc::c_int::from(b)
}

fn wrong_family(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("corio: {what} does not match the socket's address family"),
    )
}

impl Cmsg {
    /// Whether the raw message depends on the socket's family.
    pub(super) fn needs_family(&self) -> bool {
        !matches!(self, Cmsg::Segment(_))
    }

    /// The raw message for a socket of family `v6` (`None`: unknown, only
    /// for messages that do not need it).
    pub(super) fn raw(&self, v6: Option<bool>) -> io::Result<RawCmsg> {
        let v6 = || v6.expect("corio: the socket's family is known for this message");
        Ok(match *self {
            Cmsg::PktInfo { src, ifindex } => match (src, v6()) {
                (IpAddr::V4(a), false) => {
                    let info = libc::in_pktinfo {
                        ipi_ifindex: ifindex as libc::c_int,
                        ipi_spec_dst: libc::in_addr {
                            s_addr: u32::from_ne_bytes(a.octets()),
                        },
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    };
                    RawCmsg::new(libc::IPPROTO_IP, libc::IP_PKTINFO, pod_bytes(&info))
                }
                (IpAddr::V6(a), true) => {
                    let info = libc::in6_pktinfo {
                        ipi6_addr: libc::in6_addr {
                            s6_addr: a.octets(),
                        },
                        ipi6_ifindex: ifindex,
                    };
                    RawCmsg::new(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, pod_bytes(&info))
                }
                (IpAddr::V4(_), true) => return Err(wrong_family("an IPv4 source (PktInfo)")),
                (IpAddr::V6(_), false) => return Err(wrong_family("an IPv6 source (PktInfo)")),
            },
            Cmsg::Tos(tos) if v6() => RawCmsg::int(libc::IPPROTO_IPV6, libc::IPV6_TCLASS, int(tos)),
            Cmsg::Tos(tos) => RawCmsg::int(libc::IPPROTO_IP, libc::IP_TOS, int(tos)),
            Cmsg::Segment(size) => RawCmsg::u16(libc::SOL_UDP, UDP_SEGMENT, size),
        })
    }
}

/// The bytes of a plain-data kernel structure.
fn pod_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: `T` is a plain-data C structure with no padding read by the
    // kernel as bytes (`in_pktinfo`, `in6_pktinfo`); the slice covers
    // exactly the value and lives as long as the borrow.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

/// What [`UdpSocket::recv_msg`](super::UdpSocket::recv_msg) learnt about
/// one datagram (or one coalesced run of them, with GRO).
///
/// Fields a socket option turns on are `None` until it is on:
/// [`set_recv_pktinfo`](super::UdpSocket::set_recv_pktinfo) for `dst` and
/// `ifindex`, [`set_recv_tos`](super::UdpSocket::set_recv_tos) for `tos`,
/// [`set_recv_timestamps`](super::UdpSocket::set_recv_timestamps) for
/// `timestamp`, [`set_gro`](super::UdpSocket::set_gro) for `segment_size`.
/// A datagram kept for a dropped receive comes back with none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecvMeta {
    /// The bytes received into the buffer.
    pub len: usize,
    /// The sender.
    pub from: SocketAddr,
    /// The datagram's destination address (`IP_PKTINFO`/`IPV6_PKTINFO`).
    pub dst: Option<IpAddr>,
    /// The interface it arrived on (`IP_PKTINFO`/`IPV6_PKTINFO`).
    pub ifindex: Option<u32>,
    /// The TOS byte (`IP_TOS`/`IPV6_TCLASS`); its low two bits are the ECN
    /// field ([`ecn`](Self::ecn)).
    pub tos: Option<u8>,
    /// When the kernel received it (`SO_TIMESTAMPNS`).
    pub timestamp: Option<SystemTime>,
    /// With GRO, the size of each datagram coalesced into the buffer (the
    /// last may be shorter); see [`segments`](Self::segments).
    pub segment_size: Option<usize>,
    /// The datagram was longer than the buffer and was cut (`MSG_TRUNC`).
    pub truncated: bool,
    /// Control messages did not fit and were cut (`MSG_CTRUNC`).
    pub control_truncated: bool,
}

impl RecvMeta {
    /// Metadata of `len` bytes from `from`, with what `control` says.
    pub(super) fn new(len: usize, from: SocketAddr, control: &Control) -> RecvMeta {
        Self::from_parts(len, from, control.flags, control.messages())
    }

    /// Metadata of `len` bytes from `from`, with message flags `flags` and
    /// the control messages `messages`.
    pub(super) fn from_parts<'a>(
        len: usize,
        from: SocketAddr,
        flags: libc::c_int,
        messages: impl Iterator<Item = (libc::c_int, libc::c_int, &'a [u8])>,
    ) -> RecvMeta {
        let mut meta = RecvMeta {
            len,
            from,
            dst: None,
            ifindex: None,
            tos: None,
            timestamp: None,
            segment_size: None,
            truncated: flags & libc::MSG_TRUNC != 0,
            control_truncated: flags & libc::MSG_CTRUNC != 0,
        };
        for (level, ty, data) in messages {
            meta.fill(level, ty, data);
        }
        meta
    }

    fn fill(&mut self, level: libc::c_int, ty: libc::c_int, data: &[u8]) {
        match (level, ty) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO) if data.len() >= 12 => {
                // in_pktinfo: ifindex (int), spec_dst, addr (the header's
                // destination).
                self.ifindex = Some(read_int(&data[..4]) as u32);
                let a: [u8; 4] = data[8..12].try_into().expect("4 bytes");
                self.dst = Some(IpAddr::V4(Ipv4Addr::from(a)));
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) if data.len() >= 20 => {
                let a: [u8; 16] = data[..16].try_into().expect("16 bytes");
                self.dst = Some(IpAddr::V6(Ipv6Addr::from(a)));
                self.ifindex = Some(read_int(&data[16..20]) as u32);
            }
            (libc::IPPROTO_IP, libc::IP_TOS) | (libc::IPPROTO_IPV6, libc::IPV6_TCLASS) => {
                self.tos = Some(read_int(data) as u8);
            }
            (libc::SOL_SOCKET, SO_TIMESTAMPNS) if data.len() >= 8 => {
                // A timespec: two longs (64 or 32 bits).
                let half = data.len() / 2;
                let (secs, nanos) = if half >= 8 {
                    let s = i64::from_ne_bytes(data[..8].try_into().expect("8 bytes"));
                    (
                        s,
                        i64::from_ne_bytes(data[8..16].try_into().expect("8 bytes")),
                    )
                } else {
                    (read_int(&data[..4]), read_int(&data[4..8]))
                };
                let since = Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32);
                self.timestamp = SystemTime::UNIX_EPOCH.checked_add(since);
            }
            (libc::SOL_UDP, UDP_GRO) => {
                self.segment_size = Some(read_int(data) as usize).filter(|&s| s > 0);
            }
            _ => {}
        }
    }

    /// The ECN field of the TOS byte (0: not ECN-capable, 1 and 2: ECT, 3:
    /// congestion experienced).
    pub fn ecn(&self) -> Option<u8> {
        self.tos.map(|t| t & 0b11)
    }

    /// The datagrams in `data` (the buffer the receive filled): with GRO,
    /// one slice per coalesced datagram; otherwise the whole datagram.
    ///
    /// ```
    /// use corio::net::UdpSocket;
    ///
    /// corio::run(async {
    ///     let rx = UdpSocket::bind("127.0.0.1:0")?;
    ///     rx.set_gro(true)?;
    ///     let tx = UdpSocket::bind("127.0.0.1:0")?;
    ///     let to = rx.local_addr()?;
    ///     tx.send_segments(vec![7u8; 3000], 1200, to).await.0?;
    ///     let mut sizes = Vec::new();
    ///     while sizes.iter().sum::<usize>() < 3000 {
    ///         let (meta, buf) = rx.recv_msg(vec![0u8; 65536]).await;
    ///         sizes.extend(meta?.segments(&buf).map(|s| s.len()));
    ///     }
    ///     assert_eq!(sizes, [1200, 1200, 600]);
    ///     Ok::<_, std::io::Error>(())
    /// })
    /// .unwrap();
    /// ```
    pub fn segments<'a>(&self, data: &'a [u8]) -> std::slice::Chunks<'a, u8> {
        let data = &data[..self.len.min(data.len())];
        let size = self.segment_size.unwrap_or(data.len()).max(1);
        data.chunks(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::net::cmsg::encode;

    fn meta_of(items: &[RawCmsg], flags: libc::c_int) -> RecvMeta {
        let buf = encode(items).unwrap();
        let len = std::mem::size_of_val(&*buf);
        let from = SocketAddr::from(([127, 0, 0, 1], 9));
        RecvMeta::new(3600, from, &Control::new(buf, len, flags))
    }

    #[test]
    fn sent_messages_read_back_as_metadata() {
        let v4 = Cmsg::PktInfo {
            src: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            ifindex: 1,
        };
        let tos = Cmsg::Tos(0x2e << 2 | 1);
        let gro = RawCmsg::int(libc::SOL_UDP, UDP_GRO, 1200);
        let meta = meta_of(&[tos.raw(Some(false)).unwrap(), gro], libc::MSG_CTRUNC);
        assert_eq!(meta.tos, Some(0x2e << 2 | 1));
        assert_eq!(meta.ecn(), Some(1));
        assert_eq!(meta.segment_size, Some(1200));
        assert!(meta.control_truncated && !meta.truncated);
        assert_eq!(meta.segments(&[0u8; 3600]).count(), 3);
        // Our pktinfo puts the source in `spec_dst`; a received one has the
        // destination in `addr`.
        let raw = v4.raw(Some(false)).unwrap();
        assert_eq!(meta_of(&[raw], 0).ifindex, Some(1));
    }

    #[test]
    fn a_source_of_the_other_family_is_refused() {
        let v6 = Cmsg::PktInfo {
            src: IpAddr::V6(Ipv6Addr::LOCALHOST),
            ifindex: 0,
        };
        let err = v6.raw(Some(false)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let v4 = Cmsg::PktInfo {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ifindex: 0,
        };
        assert!(v4.raw(Some(true)).is_err());
        assert!(v6.raw(Some(true)).is_ok());
    }

    #[test]
    fn segments_without_gro_are_the_whole_datagram() {
        let meta = meta_of(&[], 0);
        let data = vec![1u8; 5000];
        let segs: Vec<_> = meta.segments(&data).collect();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].len(), 3600);
    }
}
