//! The tokio ecosystem on corio against tokio itself: `corio-compat` serves
//! through `corio::compat::Compat` (echo with the `tokio::io` traits, HTTP
//! with hyper 1.x), `tokio-hyper` serves the same hyper service on tokio's
//! current-thread runtime. Both answer `GET /` with the hand-written
//! servers' "Hello, world!" response, so every load generator works.

use std::convert::Infallible;
use std::io;
use std::net::TcpListener as StdListener;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use corio::compat::Compat;
use corio::compat::hyper::CorioTimer;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{App, ECHO_BUF};

/// The hello-world service, the same on both runtimes.
async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut res = Response::new(Full::new(Bytes::from_static(b"Hello, world!")));
    res.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(res)
}

/// corio on io_uring through `Compat`; several listeners run as pinned shards.
pub fn serve_corio(app: App, listeners: Vec<StdListener>) -> io::Result<()> {
    let n = listeners.len();
    let listeners = Mutex::new(listeners.into_iter().map(Some).collect::<Vec<_>>());
    let results = corio::Builder::new()
        .driver(corio::DriverKind::Uring)
        .shards(n)
        .pin_cpus(n > 1)
        .run(move |shard| {
            let l = listeners.lock().unwrap()[shard.index()].take();
            async move {
                let listener = corio::net::TcpListener::from_std(l.expect("one per shard"));
                loop {
                    let (stream, _) = listener.accept().await?;
                    let _ = stream.set_nodelay(true);
                    let io = Compat::new(stream);
                    match app {
                        App::Echo => corio::spawn(echo(io)),
                        App::Http => corio::spawn(async move {
                            let _ = http1::Builder::new()
                                .timer(CorioTimer)
                                .serve_connection(io, service_fn(hello))
                                .await;
                        }),
                    };
                }
            }
        })?;
    results.into_iter().collect()
}

/// The echo loop on the `tokio::io` traits (what tokio-based code does).
async fn echo<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut io: S) {
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        let n = match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if io.write_all(&buf[..n]).await.is_err() || io.flush().await.is_err() {
            return;
        }
    }
}

/// hyper on tokio's current-thread runtime (one per listener's thread).
pub fn serve_tokio(app: App, listener: StdListener) -> io::Result<()> {
    if app == App::Echo {
        return Err(io::Error::other(
            "tokio-hyper serves HTTP only (echo: use tokio)",
        ));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .timer(TokioTimer)
                    .serve_connection(TokioIo(stream), service_fn(hello))
                    .await;
            });
        }
    })
}

/// hyper's I/O traits over a tokio stream (hyper-util's `TokioIo`, in short).
struct TokioIo(tokio::net::TcpStream);

impl hyper::rt::Read for TokioIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: `ReadBuf` only writes initialised bytes into the cursor's
        // memory and reports how many; the cursor is advanced by that count.
        let n = unsafe {
            let mut tbuf = tokio::io::ReadBuf::uninit(buf.as_mut());
            match tokio::io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, &mut tbuf) {
                Poll::Ready(Ok(())) => tbuf.filled().len(),
                other => return other,
            }
        };
        // SAFETY: `n` bytes were just filled.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for TokioIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write_vectored(Pin::new(&mut self.0), cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut self.0), cx)
    }
}

/// hyper's timer on tokio's (hyper-util's `TokioTimer`, in short).
#[derive(Clone, Copy)]
struct TokioTimer;

struct TokioSleep(Pin<Box<tokio::time::Sleep>>);

impl std::future::Future for TokioSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for TokioSleep {}

impl hyper::rt::Timer for TokioTimer {
    fn sleep(&self, d: std::time::Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep(d))))
    }

    fn sleep_until(&self, at: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep_until(at.into()))))
    }
}
