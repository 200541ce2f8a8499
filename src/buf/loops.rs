//! `read_exact` and `write_all` once for every stream: loops of one read or
//! write over sub-slices of the same owned buffer.

use std::future::Future;
use std::io;

use super::{BufResult, IoBuf, IoBufMut, Slice};

/// Reads with `read` until `buf` is full to its capacity; `UnexpectedEof`
/// if the stream ends first.
pub(crate) async fn read_exact<B, F, Fut>(mut buf: B, mut read: F) -> BufResult<(), B>
where
    B: IoBufMut,
    F: FnMut(Slice<B>) -> Fut,
    Fut: Future<Output = BufResult<usize, Slice<B>>>,
{
    let total = buf.bytes_total();
    let mut done = 0;
    while done < total {
        let (res, slice) = read(buf.slice(done..total)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "failed to fill whole buffer");
                return (Err(e), buf);
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}

/// Writes every initialised byte of `buf` with `write`, looping over short
/// writes; `WriteZero` if a write takes nothing.
pub(crate) async fn write_all<B, F, Fut>(mut buf: B, mut write: F) -> BufResult<(), B>
where
    B: IoBuf,
    F: FnMut(Slice<B>) -> Fut,
    Fut: Future<Output = BufResult<usize, Slice<B>>>,
{
    let total = buf.bytes_init();
    let mut done = 0;
    while done < total {
        let (res, slice) = write(buf.slice(done..total)).await;
        buf = slice.into_inner();
        match res {
            Ok(0) => {
                let e = io::Error::new(io::ErrorKind::WriteZero, "failed to write whole buffer");
                return (Err(e), buf);
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (Err(e), buf),
        }
    }
    (Ok(()), buf)
}
