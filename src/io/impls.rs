//! [`OwnedRead`] and [`OwnedWrite`] for corio's streams: each method is the
//! stream's inherent method of the same name.

use std::future::Future;
use std::io;
use std::net::Shutdown;

use super::{OwnedRead, OwnedWrite};
use crate::buf::{BufResult, IoBuf, IoBufMut};
use crate::net::{OwnedReadHalf, OwnedWriteHalf, TcpStream};

/// `OwnedRead` through a type's inherent `read(&self, ..)`.
macro_rules! read_via {
    ($t:ty, $inherent:path) => {
        impl OwnedRead for $t {
            fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
                $inherent(self, buf)
            }
        }
    };
}

/// `OwnedWrite` through a type's inherent `write`, `write_all` and
/// `shutdown(&self, Shutdown::Write)`.
macro_rules! write_via {
    ($t:ty, $ty:ident) => {
        impl OwnedWrite for $t {
            fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
                $ty::write(self, buf)
            }

            fn write_all<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<(), B>> {
                $ty::write_all(self, buf)
            }

            fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
                $ty::shutdown(self, Shutdown::Write)
            }
        }
    };
}

read_via!(TcpStream, TcpStream::read);
read_via!(&TcpStream, TcpStream::read);
read_via!(OwnedReadHalf, OwnedReadHalf::read);
write_via!(TcpStream, TcpStream);
write_via!(&TcpStream, TcpStream);
write_via!(OwnedWriteHalf, OwnedWriteHalf);

#[cfg(target_os = "linux")]
mod unix_and_pipes {
    use super::*;
    use crate::net::UnixStream;
    use crate::net::unix::{OwnedReadHalf as UnixReadHalf, OwnedWriteHalf as UnixWriteHalf};
    use crate::process::{ChildStderr, ChildStdin, ChildStdout};

    read_via!(UnixStream, UnixStream::read);
    read_via!(&UnixStream, UnixStream::read);
    read_via!(UnixReadHalf, UnixReadHalf::read);
    write_via!(UnixStream, UnixStream);
    write_via!(&UnixStream, UnixStream);
    write_via!(UnixWriteHalf, UnixWriteHalf);
    read_via!(ChildStdout, ChildStdout::read);
    read_via!(ChildStderr, ChildStderr::read);

    impl OwnedWrite for ChildStdin {
        fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
            ChildStdin::write(self, buf)
        }

        fn write_all<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<(), B>> {
            ChildStdin::write_all(self, buf)
        }

        /// Closes the pipe: the child reads end of file.
        fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
            ChildStdin::shutdown(self)
        }
    }
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use crate::tls::{TlsStream, Transport};

    impl<S: Transport> OwnedRead for TlsStream<S> {
        fn read<B: IoBufMut>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
            TlsStream::read(self, buf)
        }
    }

    impl<S: Transport> OwnedWrite for TlsStream<S> {
        fn write<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<usize, B>> {
            TlsStream::write(self, buf)
        }

        fn write_all<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<(), B>> {
            TlsStream::write_all(self, buf)
        }

        /// Sends `close_notify`, then FIN.
        fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
            TlsStream::shutdown(self)
        }
    }
}
