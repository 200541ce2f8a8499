//! TCP: listener, stream and owned halves.

mod listener;
mod split;
mod stream;

pub use listener::{Incoming, TcpListener};
pub use split::{OwnedReadHalf, OwnedWriteHalf};
pub use stream::TcpStream;

pub(crate) use listener::{busy, sock_addr};
