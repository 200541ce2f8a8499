//! `UdpSocket::send_to_zc`: a datagram sent without copying its payload
//! into the kernel (`IORING_OP_SEND_ZC` with a destination address).
//!
//! How it works: where the ring has SEND_ZC the datagram goes out as one
//! zero-copy send (the future ends with the kernel's notification, as
//! `TcpStream::send_zc`'s does); elsewhere (the poll driver, older kernels,
//! `Builder::disable_opcodes(["SEND_ZC"])`) it is the plain `send_to`.

use super::UdpSocket;
use crate::buf::{BufResult, IoBuf};
use crate::net::ToSocketAddrs;
use crate::net::lookup::resolve;
use crate::op::Op;
use crate::op::net::{SendZc, send_zc_opcode};
use crate::runtime::context;

impl UdpSocket {
    /// Sends `buf` as one datagram to `addr` without copying it into the
    /// kernel, like sendto(2) with `MSG_ZEROCOPY` (`IORING_OP_SEND_ZC`,
    /// Linux 6.0); the buffer comes back once the kernel is done with it.
    ///
    /// Worth it for large datagrams (GSO-sized) to a real network device;
    /// on loopback or for small datagrams a plain [`send_to`](Self::send_to)
    /// costs less. Where SEND_ZC is missing, turned off, or on the poll
    /// driver it is `send_to`.
    ///
    /// ```no_run
    /// # corio::run(async {
    /// let socket = corio::net::UdpSocket::bind("127.0.0.1:0")?;
    /// let (res, _buf) = socket.send_to_zc(vec![0u8; 1200], "127.0.0.1:9001").await;
    /// res?;
    /// # Ok::<_, std::io::Error>(()) }).unwrap();
    /// ```
    ///
    /// Not cancel-safe, as [`send_to`](Self::send_to); the buffer is freed
    /// only once the kernel is done with it.
    pub async fn send_to_zc<B: IoBuf>(
        &self,
        buf: B,
        addr: impl ToSocketAddrs,
    ) -> BufResult<usize, B> {
        let core = context::current("UdpSocket::send_to_zc");
        if !core.driver.borrow().supports(send_zc_opcode()) {
            return self.send_to(buf, addr).await;
        }
        let addr = match resolve(&addr).await {
            Ok(a) => a[0],
            Err(e) => return (Err(e), buf),
        };
        Op::on(core, SendZc::to(&self.fd, buf, addr.into())).await
    }
}
