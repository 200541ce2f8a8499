//! Networking: TCP, UDP and Unix sockets whose I/O runs as io_uring
//! operations, and name resolution ([`lookup_host`]) that never blocks the
//! runtime.
//!
//! How it works: sockets are created in blocking mode (io_uring needs no
//! `O_NONBLOCK`; one handed in with it still works, its `EAGAIN` re-armed
//! through a readiness poll). Every method that moves data takes an owned
//! buffer and gives it back with the result ([`BufResult`](crate::BufResult)).
//! `connect` and `send_to` take a [`ToSocketAddrs`]: literal addresses are
//! used at once, host names are resolved on the blocking pool.

mod backoff;
mod lookup;
mod socket;
mod stream_io;
mod tcp;
mod udp;
mod udp_zc;
#[cfg(target_os = "linux")]
pub mod unix;

pub use lookup::{ToSocketAddrs, lookup_host};
pub use tcp::{Incoming, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;
#[cfg(target_os = "linux")]
pub use unix::{UnixDatagram, UnixListener, UnixStream};
