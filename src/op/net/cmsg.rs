//! Control messages (ancillary data) of sendmsg(2) and recvmsg(2): the one
//! place that lays out and walks `cmsghdr`s.
//!
//! How it works: a control area is a boxed slice of `usize` words, so it is
//! aligned for `cmsghdr` and its heap address is stable while its op moves.
//! [`encode`] lays out the messages to send one after the other, each at a
//! `CMSG_SPACE` step; [`Control`] holds what a receive got and
//! [`Control::messages`] walks it, checking every length against the bytes
//! the kernel wrote, so a malformed area ends the walk instead of reading
//! past it.

use std::mem::size_of;

/// The largest control area a send may carry (bytes): far more than any
/// combination of the messages corio sends.
pub(crate) const MAX_CONTROL: usize = 1024;

/// The most data bytes one message to send carries (`in6_pktinfo`).
const MAX_DATA: usize = 20;

const HEADER: usize = size_of::<libc::cmsghdr>();

/// The bytes a message with `len` data bytes takes, padding included
/// (`CMSG_SPACE`).
pub(crate) fn space(len: usize) -> usize {
    // SAFETY: CMSG_SPACE only computes a size.
    unsafe { libc::CMSG_SPACE(len as u32) as usize }
}

/// The bytes from a message's start to its data (`CMSG_LEN(0)`).
fn data_offset() -> usize {
    // SAFETY: CMSG_LEN only computes a size.
    unsafe { libc::CMSG_LEN(0) as usize }
}

/// A zeroed control area of at least `bytes` bytes, aligned for `cmsghdr`
/// (empty, and not allocated, for 0).
pub(crate) fn control_buf(bytes: usize) -> Box<[usize]> {
    if bytes == 0 {
        return Box::default();
    }
    vec![0usize; bytes.div_ceil(size_of::<usize>())].into_boxed_slice()
}

/// Points `msg` at `control` (or at nothing when it is empty).
pub(crate) fn attach(msg: &mut libc::msghdr, control: &mut [usize]) {
    if control.is_empty() {
        msg.msg_control = std::ptr::null_mut();
        msg.msg_controllen = 0;
    } else {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(control) as _;
    }
}

/// One control message to send: its level, its type and its data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawCmsg {
    level: libc::c_int,
    ty: libc::c_int,
    len: usize,
    data: [u8; MAX_DATA],
}

impl RawCmsg {
    /// A message carrying `data` (at most 20 bytes: the largest structure
    /// corio sends).
    pub(crate) fn new(level: libc::c_int, ty: libc::c_int, data: &[u8]) -> RawCmsg {
        assert!(
            data.len() <= MAX_DATA,
            "corio: control message data too long"
        );
        let mut buf = [0u8; MAX_DATA];
        buf[..data.len()].copy_from_slice(data);
        RawCmsg {
            level,
            ty,
            len: data.len(),
            data: buf,
        }
    }

    /// A message carrying one `int`.
    pub(crate) fn int(level: libc::c_int, ty: libc::c_int, value: libc::c_int) -> RawCmsg {
        RawCmsg::new(level, ty, &value.to_ne_bytes())
    }

    /// A message carrying one `u16`.
    pub(crate) fn u16(level: libc::c_int, ty: libc::c_int, value: u16) -> RawCmsg {
        RawCmsg::new(level, ty, &value.to_ne_bytes())
    }

    fn space(&self) -> usize {
        space(self.len)
    }
}

/// Lays out `items` in a new control area; `None` when they need more than
/// [`MAX_CONTROL`] bytes.
pub(crate) fn encode(items: &[RawCmsg]) -> Option<Box<[usize]>> {
    let total: usize = items.iter().map(RawCmsg::space).sum();
    if total > MAX_CONTROL {
        return None;
    }
    let mut control = control_buf(total);
    let base = control.as_mut_ptr().cast::<u8>();
    let mut off = 0;
    for item in items {
        // SAFETY: `off + item.space()` is at most `total`, the area's size,
        // and every offset is a sum of CMSG_SPACE steps from the aligned
        // start, so the header is aligned and header and data fit.
        unsafe {
            let cmsg = base.add(off).cast::<libc::cmsghdr>();
            (*cmsg).cmsg_level = item.level;
            (*cmsg).cmsg_type = item.ty;
            (*cmsg).cmsg_len = libc::CMSG_LEN(item.len as u32) as _;
            let data = libc::CMSG_DATA(cmsg);
            std::ptr::copy_nonoverlapping(item.data.as_ptr(), data, item.len);
        }
        off += item.space();
    }
    Some(control)
}

/// The control area a receive got: what the kernel wrote, and the message
/// flags (`MSG_TRUNC`, `MSG_CTRUNC`) it reported.
#[derive(Debug, Default)]
pub(crate) struct Control {
    buf: Box<[usize]>,
    len: usize,
    /// `msg_flags` of the receive.
    pub(crate) flags: libc::c_int,
}

impl Control {
    /// `len` bytes of `buf` written by the kernel, with `flags`.
    pub(crate) fn new(buf: Box<[usize]>, len: usize, flags: libc::c_int) -> Control {
        let len = len.min(std::mem::size_of_val(&*buf));
        Control { buf, len, flags }
    }

    /// The bytes the kernel wrote.
    fn bytes(&self) -> &[u8] {
        // SAFETY: any initialised `usize` memory may be read as bytes, and
        // `len` is at most the area's size (checked in `new`).
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.len) }
    }

    /// Each message as (level, type, data); see [`messages`].
    pub(crate) fn messages(&self) -> impl Iterator<Item = (libc::c_int, libc::c_int, &[u8])> {
        messages(self.bytes())
    }

    /// The segment size of a coalesced (GRO) receive (`UDP_GRO`).
    pub(crate) fn gro_segment(&self) -> Option<usize> {
        gro_segment(self.bytes())
    }
}

/// Each control message in `bytes` (as the kernel wrote them; no alignment
/// needed) as (level, type, data); a malformed length ends the walk.
pub(crate) fn messages(bytes: &[u8]) -> impl Iterator<Item = (libc::c_int, libc::c_int, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        if off + HEADER > bytes.len() {
            return None;
        }
        // SAFETY: `HEADER` bytes from `off` are in `bytes`; the read needs
        // no alignment.
        let header =
            unsafe { std::ptr::read_unaligned(bytes[off..].as_ptr().cast::<libc::cmsghdr>()) };
        let len = header.cmsg_len as usize;
        if len < data_offset() || off + len > bytes.len() {
            return None;
        }
        let data = &bytes[off + data_offset()..off + len];
        off += space(len - data_offset());
        Some((header.cmsg_level, header.cmsg_type, data))
    })
}

/// The segment size of a coalesced (GRO) receive in control bytes
/// (`UDP_GRO`).
pub(crate) fn gro_segment(bytes: &[u8]) -> Option<usize> {
    messages(bytes).find_map(|(level, ty, data)| {
        (level == libc::SOL_UDP && ty == UDP_GRO).then(|| read_int(data) as usize)
    })
}

/// `UDP_SEGMENT` (Linux 4.18): the GSO segment size of a send.
pub(crate) const UDP_SEGMENT: libc::c_int = 103;
/// `UDP_GRO` (Linux 5.0): coalesce received datagrams; also the control
/// message that reports the segment size.
pub(crate) const UDP_GRO: libc::c_int = 104;

/// `SO_TIMESTAMPNS` (`SO_TIMESTAMPNS_OLD`, also the type of its control
/// message `SCM_TIMESTAMPNS`): the kernel's receive time as a `timespec`.
/// The asm-generic value (x86, arm, riscv, loongarch); libc lacks it for
/// glibc and musl.
pub(crate) const SO_TIMESTAMPNS: libc::c_int = 35;

/// An `int` (or a shorter value: a `u16`, a byte) in native byte order, as
/// kernels write them in control messages.
pub(crate) fn read_int(data: &[u8]) -> i64 {
    match data.len() {
        0 => 0,
        1 => data[0] as i64,
        2 | 3 => u16::from_ne_bytes([data[0], data[1]]) as i64,
        _ => i32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(items: &[RawCmsg]) -> Vec<(i32, i32, Vec<u8>)> {
        let buf = encode(items).unwrap();
        let len = std::mem::size_of_val(&*buf);
        let control = Control::new(buf, len, 0);
        control
            .messages()
            .map(|(l, t, d)| (l, t, d.to_vec()))
            .collect()
    }

    #[test]
    fn messages_come_back_as_laid_out() {
        let items = [
            RawCmsg::int(libc::IPPROTO_IP, libc::IP_TOS, 0x2e),
            RawCmsg::new(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &[7u8; 20]),
            RawCmsg::u16(libc::SOL_UDP, UDP_SEGMENT, 1200),
        ];
        let got = round_trip(&items);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0],
            (
                libc::IPPROTO_IP,
                libc::IP_TOS,
                0x2e_i32.to_ne_bytes().to_vec()
            )
        );
        assert_eq!(
            got[1],
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, vec![7u8; 20])
        );
        assert_eq!(read_int(&got[2].2), 1200);
    }

    #[test]
    fn an_empty_list_takes_no_area() {
        assert!(encode(&[]).unwrap().is_empty());
        assert_eq!(Control::default().messages().count(), 0);
    }

    #[test]
    fn too_much_control_data_is_refused() {
        let items = vec![RawCmsg::int(libc::IPPROTO_IP, libc::IP_TOS, 0); 100];
        assert!(encode(&items).is_none());
    }

    #[test]
    fn a_malformed_length_ends_the_walk() {
        let mut buf = encode(&[RawCmsg::int(libc::SOL_UDP, UDP_GRO, 1200)]).unwrap();
        let len = std::mem::size_of_val(&*buf);
        // A length running past what the kernel wrote.
        let header = buf.as_mut_ptr().cast::<libc::cmsghdr>();
        // SAFETY: the area starts with an aligned header.
        unsafe { (*header).cmsg_len = 4096 };
        assert_eq!(Control::new(buf, len, 0).messages().count(), 0);
        // A length shorter than the header.
        let mut buf = encode(&[RawCmsg::int(libc::SOL_UDP, UDP_GRO, 1200)]).unwrap();
        let header = buf.as_mut_ptr().cast::<libc::cmsghdr>();
        // SAFETY: as above.
        unsafe { (*header).cmsg_len = 2 };
        assert_eq!(Control::new(buf, len, 0).messages().count(), 0);
    }

    #[test]
    fn the_gro_segment_is_found() {
        let buf = encode(&[
            RawCmsg::int(libc::IPPROTO_IP, libc::IP_TOS, 1),
            RawCmsg::u16(libc::SOL_UDP, UDP_GRO, 1200),
        ])
        .unwrap();
        let len = std::mem::size_of_val(&*buf);
        assert_eq!(Control::new(buf, len, 0).gro_segment(), Some(1200));
    }

    #[test]
    fn short_values_read_as_ints() {
        assert_eq!(read_int(&[5]), 5);
        assert_eq!(read_int(&300u16.to_ne_bytes()), 300);
        assert_eq!(read_int(&70000i32.to_ne_bytes()), 70000);
    }
}
