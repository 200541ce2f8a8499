//! Socket operations: accept, connect, recv, send, sendmsg, recvmsg,
//! shutdown — for every socket family (addresses are `socket2::SockAddr`) —
//! and passing fds over Unix sockets.
//!
//! How it works: each op owns its socket (`SharedFd`, so the fd outlives the
//! op), its buffers, and any kernel-visible structure (`msghdr`, iovecs,
//! socket addresses) in a `Box`, so those addresses are stable while the op
//! value moves between its future and the driver. Reads and accepts name
//! their fd in their `Role`: the driver hands them what dropped ops kept,
//! and their `release` keeps what they get after their future is gone.

mod accept;
mod addr;
pub(crate) mod cmsg;
mod connect;
#[cfg(target_os = "linux")]
mod fds;
mod recv;
mod recv_timeout;
mod send;
mod send_zc;
#[cfg(target_os = "linux")]
mod splice;

pub(crate) use accept::Accept;
pub(crate) use addr::{AddrBuf, MsgParts, sock_addr_from};
pub(crate) use connect::{Connect, Shutdown};
#[cfg(target_os = "linux")]
pub(crate) use fds::{MAX_FDS, RecvFds, SendFds};
pub(crate) use recv::{Recv, RecvMsg, drained_by_read};
pub(crate) use recv_timeout::{RecvTimeout, link_timeout_opcode, timed_out};
pub(crate) use send::{Send, SendMsg};
pub(crate) use send_zc::{SendZc, send_zc_opcode};
#[cfg(target_os = "linux")]
pub(crate) use splice::{MAX_MOVE, SendFile, Splice, new_pipe, pipe_capacity, splice_opcode};

fn would_block() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::WouldBlock)
}
