//! `copy` and `copy_bidirectional`: move bytes between streams until end
//! of stream.
//!
//! How it works: one owned buffer goes back and forth between the reader's
//! `read` and the writer's `write_all`, so copying allocates once.
//! `copy_bidirectional` runs the two directions in one future, polling
//! both: each direction shuts its writer down when its reader ends (the
//! peer sees the end), and the call returns when both have ended.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::task::Poll;

use super::{OwnedRead, OwnedWrite};

/// Bytes one read asks for.
const CHUNK: usize = 16 * 1024;

/// Copies everything `reader` yields into `writer`, until `reader` ends;
/// then flushes `writer` and returns the count. Does not shut `writer` down.
///
/// Not cancel-safe: bytes read but not yet written are lost when the
/// future is dropped.
///
/// ```no_run
/// use corio::net::TcpListener;
///
/// corio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:9000")?;
///     let (stream, _) = listener.accept().await?;
///     let (mut r, mut w) = stream.into_split();
///     let n = corio::io::copy(&mut r, &mut w).await?; // echo
///     println!("echoed {n} bytes");
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub async fn copy<R, W>(reader: &mut R, writer: &mut W) -> io::Result<u64>
where
    R: OwnedRead + ?Sized,
    W: OwnedWrite + ?Sized,
{
    let mut buf = Vec::with_capacity(CHUNK);
    let mut total = 0u64;
    loop {
        buf.clear();
        let (res, b) = reader.read(buf).await;
        buf = b;
        let n = match res {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let (res, b) = writer.write_all(buf).await;
        buf = b;
        res?;
        total += n as u64;
    }
    writer.flush().await?;
    Ok(total)
}

/// Copies `a` to `b` and `b` to `a` at the same time, until both ends have
/// closed their sides; returns `(bytes a → b, bytes b → a)`.
///
/// When one side's reads end, the other side's write direction is shut
/// down, so it sees the end too. The first error in either direction ends
/// the call. Works with any stream whose shared reference reads and writes
/// ([`TcpStream`](crate::net::TcpStream): pass `&a`, `&b`). Not
/// cancel-safe, as [`copy`].
///
/// ```no_run
/// use corio::net::{TcpListener, TcpStream};
///
/// // A TCP proxy.
/// corio::run(async {
///     let listener = TcpListener::bind("127.0.0.1:9000")?;
///     loop {
///         let (client, _) = listener.accept().await?;
///         // Each connection is its own task; its errors end only that task.
///         corio::spawn(async move {
///             let server = TcpStream::connect("127.0.0.1:8000").await?;
///             let (up, down) = corio::io::copy_bidirectional(&client, &server).await?;
///             println!("{up} bytes up, {down} down");
///             Ok::<_, std::io::Error>(())
///         });
///     }
///     # #[allow(unreachable_code)]
///     Ok::<(), std::io::Error>(())
/// })
/// .unwrap()
/// ```
pub async fn copy_bidirectional<A, B>(a: &A, b: &B) -> io::Result<(u64, u64)>
where
    A: ?Sized,
    B: ?Sized,
    for<'x> &'x A: OwnedRead + OwnedWrite,
    for<'x> &'x B: OwnedRead + OwnedWrite,
{
    let a_to_b = pin!(async {
        let (mut from, mut to) = (a, b);
        let n = copy(&mut from, &mut to).await?;
        to.shutdown().await?;
        Ok::<_, io::Error>(n)
    });
    let b_to_a = pin!(async {
        let (mut from, mut to) = (b, a);
        let n = copy(&mut from, &mut to).await?;
        to.shutdown().await?;
        Ok::<_, io::Error>(n)
    });
    try_join(a_to_b, b_to_a).await
}

/// Polls both futures until both are done, or one fails.
async fn try_join<X, Y>(
    mut x: std::pin::Pin<&mut impl Future<Output = io::Result<X>>>,
    mut y: std::pin::Pin<&mut impl Future<Output = io::Result<Y>>>,
) -> io::Result<(X, Y)> {
    let (mut xo, mut yo) = (None, None);
    poll_fn(|cx| {
        if xo.is_none()
            && let Poll::Ready(r) = x.as_mut().poll(cx)
        {
            xo = Some(r?);
        }
        if yo.is_none()
            && let Poll::Ready(r) = y.as_mut().poll(cx)
        {
            yo = Some(r?);
        }
        if xo.is_some() && yo.is_some() {
            return Poll::Ready(Ok::<_, io::Error>(()));
        }
        Poll::Pending
    })
    .await?;
    Ok((xo.unwrap(), yo.unwrap()))
}
