//! `Lines`: the lines of a [`BufReader`], by `next_line()` or as a
//! [`Stream`].
//!
//! How it works: [`Lines::next_line`] awaits the reader directly. The
//! [`Stream`] impl first takes a line already whole in the buffer without
//! waiting; only when it must read does it move the reader into a boxed
//! future that gives it back with the line (one allocation per wait). A
//! future left pending by `poll_next` is finished by the next call of
//! either kind, so nothing is lost by mixing them or dropping one.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::{BufReader, OwnedRead};

type Waiting<R> = Pin<Box<dyn Future<Output = (BufReader<R>, io::Result<Option<String>>)>>>;

enum State<R> {
    Idle(BufReader<R>),
    /// `poll_next` waits for a line; the reader is inside.
    Waiting(Waiting<R>),
    /// Only while moving between the two.
    Moving,
}

/// The lines of a [`BufReader`] (from [`BufReader::lines`]), without their
/// `\n` or `\r\n`.
///
/// Await [`next_line`](Self::next_line), or use it as a
/// [`Stream`](crate::stream::Stream) of `io::Result<String>` (the `Stream`
/// impl needs a `'static` reader). Over-long lines and lines that are not
/// UTF-8 give `InvalidData` (see [`BufReader::read_line`]); the stream goes
/// on after them. Both ways are cancel-safe.
///
/// ```no_run
/// use corio::io::BufReader;
/// use corio::net::TcpStream;
/// use corio::stream::StreamExt;
///
/// corio::run(async {
///     let stream = TcpStream::connect("127.0.0.1:9000").await?;
///     let mut lines = BufReader::new(stream).lines();
///     while let Some(line) = lines.next().await {
///         println!("{}", line?);
///     }
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub struct Lines<R> {
    state: State<R>,
}

impl<R> Lines<R> {
    pub(super) fn new(reader: BufReader<R>) -> Self {
        Lines {
            state: State::Idle(reader),
        }
    }

    /// The reader back; `None` if a `poll_next` is pending (the reader is
    /// inside its future, dropped with it).
    pub fn into_inner(self) -> Option<BufReader<R>> {
        match self.state {
            State::Idle(r) => Some(r),
            _ => None,
        }
    }
}

impl<R: OwnedRead> Lines<R> {
    /// The next line, `None` at end of stream. Cancel-safe.
    pub async fn next_line(&mut self) -> io::Result<Option<String>> {
        match &mut self.state {
            State::Idle(reader) => next_line(reader).await,
            State::Waiting(fut) => {
                let (reader, res) = fut.await;
                self.state = State::Idle(reader);
                res
            }
            State::Moving => unreachable!("Lines left between states"),
        }
    }
}

/// Takes the line of `len` bytes at the front of the buffer.
fn take_line<R>(reader: &mut BufReader<R>, len: usize) -> io::Result<Option<String>> {
    if len == 0 {
        return Ok(None);
    }
    let raw = &reader.buffer()[..len];
    let line = raw.strip_suffix(b"\n").unwrap_or(raw);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let res = match std::str::from_utf8(line) {
        Ok(s) => Ok(Some(s.to_owned())),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )),
    };
    reader.consume(len);
    res
}

async fn next_line<R: OwnedRead>(reader: &mut BufReader<R>) -> io::Result<Option<String>> {
    let len = reader.line_len(b'\n').await?;
    take_line(reader, len)
}

impl<R: OwnedRead + 'static> Stream for Lines<R> {
    type Item = io::Result<String>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let State::Idle(reader) = &mut this.state {
            // A line already whole in the buffer: no wait, no allocation.
            if let Some(len) = reader.find(b'\n', 0)
                && len <= reader.max_line_length()
            {
                return Poll::Ready(take_line(reader, len).transpose());
            }
            let State::Idle(mut reader) = std::mem::replace(&mut this.state, State::Moving) else {
                unreachable!()
            };
            this.state = State::Waiting(Box::pin(async move {
                let res = next_line(&mut reader).await;
                (reader, res)
            }));
        }
        let State::Waiting(fut) = &mut this.state else {
            unreachable!("Lines left between states")
        };
        let (reader, res) = std::task::ready!(fut.as_mut().poll(cx));
        this.state = State::Idle(reader);
        Poll::Ready(res.transpose())
    }
}

// The reader is never pinned: it is moved in and out of the boxed future.
impl<R> Unpin for Lines<R> {}

impl<R: fmt::Debug> fmt::Debug for Lines<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Idle(r) => f.debug_tuple("Lines").field(r).finish(),
            _ => f.debug_tuple("Lines").field(&"<reading>").finish(),
        }
    }
}
