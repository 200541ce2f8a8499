//! How a datagram lies in a pool buffer: the layout of a multishot
//! `RECVMSG` (`struct io_uring_recvmsg_out`, the source address, the control
//! messages, then the payload), used by both drivers.
//!
//! How it works: io_uring writes this layout itself, sized by the `msghdr`
//! the multishot op is armed with ([`recvmsg_template`]). The poll driver
//! receives with recvmsg(2) into the same places and writes the header as
//! io_uring would ([`recvmsg_into`]); a datagram kept for a dropped receive
//! is laid out the same way in an owned buffer ([`owned_datagram`]). So one
//! parser ([`parse`]) reads every pooled datagram, and the lease's bytes
//! before the payload ([`PooledBuf::header`](crate::buf::PooledBuf)) hold
//! its source and metadata.

use std::io;
use std::ops::Range;

use socket2::SockAddr;

use crate::driver::op::syscall_result;
use crate::op::net::sock_addr_from;

/// Address room in each datagram's buffer (`msg_namelen`): a whole
/// `sockaddr_storage`.
const NAME_LEN: usize = std::mem::size_of::<libc::sockaddr_storage>();
/// Control message room in each datagram's buffer (`msg_controllen`):
/// IPv6 pktinfo, TOS, a timestamp and the GRO segment size.
const CONTROL_LEN: usize = 128;
/// `struct io_uring_recvmsg_out`, at the start of each buffer.
const OUT_LEN: usize = 16;
/// Where the control messages start.
const CONTROL_AT: usize = OUT_LEN + NAME_LEN;
/// Where a datagram's payload starts in its buffer.
pub(crate) const PAYLOAD_AT: usize = CONTROL_AT + CONTROL_LEN;

/// One pooled datagram, parsed.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    /// The payload's range in the buffer.
    pub(crate) payload: Range<usize>,
    /// The source, if the kernel gave one.
    pub(crate) from: Option<SockAddr>,
    /// The control messages' bytes.
    pub(crate) control: &'a [u8],
    /// The message flags (`MSG_TRUNC`, `MSG_CTRUNC`).
    pub(crate) flags: libc::c_int,
}

fn word(data: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes(data[i * 4..i * 4 + 4].try_into().expect("4 bytes"))
}

/// Reads a buffer laid out as above (`data`: the bytes in use).
pub(crate) fn parse(data: &[u8]) -> Option<Parsed<'_>> {
    if data.len() < PAYLOAD_AT {
        return None;
    }
    let (namelen, controllen) = (word(data, 0) as usize, word(data, 1) as usize);
    let (payloadlen, flags) = (word(data, 2) as usize, word(data, 3) as libc::c_int);
    let end = PAYLOAD_AT + payloadlen.min(data.len() - PAYLOAD_AT);
    let from = (namelen > 0).then(|| {
        // SAFETY: sockaddr_storage is plain data; all-zero is valid.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let n = namelen.min(NAME_LEN);
        // SAFETY: `n` bytes of the name area fit in the storage.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data[OUT_LEN..].as_ptr(),
                (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
                n,
            )
        };
        sock_addr_from(&storage, n as libc::socklen_t)
    });
    let control = &data[CONTROL_AT..CONTROL_AT + controllen.min(CONTROL_LEN)];
    Some(Parsed {
        payload: PAYLOAD_AT..end,
        from,
        control,
        flags,
    })
}

/// The `msghdr` a multishot `RECVMSG` is armed with (its `msg_namelen` and
/// `msg_controllen` lay out each buffer).
pub(crate) fn recvmsg_template() -> Box<libc::msghdr> {
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
    msg.msg_namelen = NAME_LEN as libc::socklen_t;
    msg.msg_controllen = CONTROL_LEN as _;
    msg
}

/// Writes `io_uring_recvmsg_out` at the start of `buf`.
fn write_header(buf: &mut [u8], namelen: usize, controllen: usize, payloadlen: usize, flags: i32) {
    let words = [
        namelen as u32,
        controllen as u32,
        payloadlen as u32,
        flags as u32,
    ];
    for (i, w) in words.iter().enumerate() {
        buf[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
}

/// The poll driver's receive: one non-blocking recvmsg(2) into `buf` laid
/// out as io_uring would; returns the bytes used, as its completion would.
pub(crate) fn recvmsg_into(fd: libc::c_int, buf: &mut [u8]) -> io::Result<u32> {
    if buf.len() <= PAYLOAD_AT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "corio: pool buffers are too small for a datagram's header (272 bytes)",
        ));
    }
    let base = buf.as_mut_ptr();
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        // SAFETY: PAYLOAD_AT is inside `buf` (asserted above).
        iov_base: unsafe { base.add(PAYLOAD_AT) }.cast(),
        iov_len: buf.len() - PAYLOAD_AT,
    };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: both areas lie inside `buf`, before the payload.
    msg.msg_name = unsafe { base.add(OUT_LEN) }.cast();
    msg.msg_namelen = NAME_LEN as libc::socklen_t;
    // SAFETY: as above.
    msg.msg_control = unsafe { base.add(CONTROL_AT) }.cast();
    msg.msg_controllen = CONTROL_LEN as _;
    // SAFETY: the header, the iovec and every area they name are valid for
    // the call (all in `buf` or on this stack frame).
    let res = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    let n = syscall_result(res)? as usize;
    #[allow(clippy::unnecessary_cast)] // socklen_t and size_t differ by target
    let controllen = msg.msg_controllen as usize;
    let namelen = msg.msg_namelen as usize;
    write_header(buf, namelen, controllen, n, msg.msg_flags);
    Ok((PAYLOAD_AT + n) as u32)
}

/// A kept datagram laid out as a pooled one (no control messages).
pub(crate) fn owned_datagram(data: &[u8], from: Option<&SockAddr>) -> Vec<u8> {
    let mut buf = vec![0u8; PAYLOAD_AT + data.len()];
    let namelen = match from {
        Some(a) => {
            let n = (a.len() as usize).min(NAME_LEN);
            // SAFETY: a SockAddr holds at least `len` initialised bytes.
            let src = unsafe { std::slice::from_raw_parts(a.as_ptr().cast::<u8>(), n) };
            buf[OUT_LEN..OUT_LEN + n].copy_from_slice(src);
            n
        }
        None => 0,
    };
    write_header(&mut buf, namelen, 0, data.len(), 0);
    buf[PAYLOAD_AT..].copy_from_slice(data);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_datagram_parses_like_a_received_one() {
        let from = SockAddr::from(std::net::SocketAddr::from(([127, 0, 0, 1], 4242)));
        let buf = owned_datagram(b"hello", Some(&from));
        let p = parse(&buf).unwrap();
        assert_eq!(&buf[p.payload.clone()], b"hello");
        assert_eq!(p.from.unwrap().as_socket(), from.as_socket());
        assert!(p.control.is_empty());
        assert_eq!(p.flags, 0);
        let empty = owned_datagram(b"", None);
        let p = parse(&empty).unwrap();
        assert!(p.payload.is_empty() && p.from.is_none());
    }

    #[test]
    fn a_short_buffer_does_not_parse() {
        assert!(parse(&[0u8; PAYLOAD_AT - 1]).is_none());
    }
}
