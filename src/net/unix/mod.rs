//! Unix domain sockets: [`UnixListener`], [`UnixStream`] and
//! [`UnixDatagram`], on paths or Linux abstract names, with fd passing.
//!
//! How it works: these are TCP's and UDP's types with another address
//! family. They run on the same ops (accept, connect, recv, send, recvmsg,
//! sendmsg and the pooled receive take any `SockAddr`), and a stream's byte
//! I/O is the very code [`TcpStream`](crate::net::TcpStream) uses, so reads
//! are cancel-safe in the same way. Two things are Unix's own: passing fds
//! (`SCM_RIGHTS`, ops in `op/net/fds.rs`: the fds sent are duplicated for the
//! op, the fds received are owned and close-on-exec, and those received for
//! a future that was dropped are closed) and the peer's credentials
//! (`SO_PEERCRED`, [`UCred`]).
//!
//! Addresses are [`SocketAddr`]: a path (`bind`, `connect`, `send_to` take
//! one), a Linux abstract name (the `_addr` methods take either, or std's
//! `std::os::unix::net::SocketAddr`), or unnamed. A socket file outlives
//! its socket, and corio never removes one: see [`UnixListener`] on stale
//! files.

mod addr;
mod cred;
mod datagram;
mod fds;
mod listener;
mod split;
mod stream;

pub use addr::SocketAddr;
pub use cred::UCred;
pub use datagram::UnixDatagram;
pub use listener::{Incoming, UnixListener};
pub use split::{OwnedReadHalf, OwnedWriteHalf};
pub use stream::UnixStream;
