//! Networking: TCP and UDP sockets whose I/O runs as io_uring operations.
//!
//! How it works: sockets are created in blocking mode (io_uring needs no
//! `O_NONBLOCK`; one handed in with it still works, its `EAGAIN` re-armed
//! through a readiness poll). Every method that moves data takes an owned
//! buffer and gives it back with the result ([`BufResult`](crate::BufResult)).

mod socket;
mod stream_io;
mod tcp;
mod udp;

pub use tcp::{Incoming, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use udp::UdpSocket;
