//! TCP: listener, stream and owned halves.

mod incoming;
mod listener;
#[cfg(target_os = "linux")]
mod send_file;
mod split;
mod stream;

pub use incoming::Incoming;
pub use listener::TcpListener;
pub use split::{OwnedReadHalf, OwnedWriteHalf};
pub use stream::TcpStream;

pub(crate) use listener::{busy, sock_addr};
