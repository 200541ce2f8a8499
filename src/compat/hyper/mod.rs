//! hyper 1.x on corio (feature `hyper`): `hyper::rt::{Read, Write}` for
//! [`Compat`], an executor that spawns on the current shard, and a timer on
//! corio's timers.
//!
//! How it works: `Read` and `Write` forward to `Compat`'s `poll_*` methods
//! (a read copies once, from the receive's pool buffer into hyper's read
//! buffer; writes are vectored, so hyper's head and body go out in one send
//! without hyper flattening them first). [`CorioExecutor`] runs the tasks
//! hyper spawns (HTTP/2 streams, the client's connection task) with
//! [`corio::spawn`](crate::spawn): they need not be `Send`, and stay on the
//! shard of the connection. [`CorioTimer`] gives hyper `corio::time` sleeps,
//! for `header_read_timeout` and HTTP/2 keep-alive.
//!
//! Serve each connection in its own task, on the shard that accepted it:
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use corio::compat::Compat;
//! use corio::compat::hyper::{CorioExecutor, CorioTimer};
//! use corio::net::TcpListener;
//! use hyper::body::Incoming;
//! use hyper::{Request, Response};
//!
//! corio::run(async {
//!     let listener = TcpListener::bind("127.0.0.1:8080")?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         corio::spawn(async move {
//!             let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
//!                 Ok::<_, Infallible>(Response::new(String::from("Hello, world!")))
//!             });
//!             let _ = hyper::server::conn::http1::Builder::new()
//!                 .timer(CorioTimer)
//!                 .serve_connection(Compat::new(stream), service)
//!                 .await;
//!         });
//!     }
//!     #[allow(unreachable_code)]
//!     Ok::<_, std::io::Error>(())
//! })
//! .unwrap();
//! # let _ = CorioExecutor;
//! ```
//!
//! HTTP/2 takes the executor: `hyper::server::conn::http2::Builder::new(CorioExecutor)`.

mod executor;
mod timer;

pub use executor::CorioExecutor;
pub use timer::{CorioSleep, CorioTimer};

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use ::hyper::rt::{Read, ReadBufCursor, Write};

use super::{Compat, CompatRead, CompatWrite};

impl<S: CompatRead> Read for Compat<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let room = buf.remaining();
        self.get_mut()
            .poll_copy_out(cx, room, |src| buf.put_slice(src))
            .map_ok(drop)
    }
}

impl<S: CompatWrite> Write for Compat<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Compat::poll_write(self.get_mut(), cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Compat::poll_write_vectored(self.get_mut(), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Compat::poll_flush(self.get_mut(), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Compat::poll_shutdown(self.get_mut(), cx)
    }
}
