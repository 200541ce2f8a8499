//! [`Transport`]: the owned-buffer byte stream a TLS session runs over.

use std::future::Future;
use std::io;

use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::net::TcpStream;

/// A reliable, ordered byte stream with owned-buffer I/O, such as a
/// [`TcpStream`]: what a [`TlsStream`](super::TlsStream) runs over.
///
/// The methods have the semantics of `TcpStream`'s methods of the same
/// names. A `read` whose future is dropped must not lose bytes (corio's
/// sockets keep them for the next read): the TLS layer relies on that to make
/// its own reads cancel-safe.
pub trait Transport {
    /// Reads into `buf` from its start, up to its capacity; `Ok(0)` at end of stream.
    fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>>;

    /// Writes the initialised bytes of `buf`; may write fewer.
    fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>>;

    /// Ends the write direction (for TCP, sends FIN).
    fn shutdown_write(&self) -> impl Future<Output = io::Result<()>>;
}

impl Transport for TcpStream {
    fn read<B: IoBufMut>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        TcpStream::read(self, buf)
    }

    fn write<B: IoBuf>(&self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
        TcpStream::write(self, buf)
    }

    fn shutdown_write(&self) -> impl Future<Output = io::Result<()>> {
        TcpStream::shutdown(self, std::net::Shutdown::Write)
    }
}
