//! The plain hyper service: hello, streaming echo, streaming download and
//! a streaming upload that answers with the byte count and a checksum.

use std::convert::Infallible;
use std::error::Error;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};

/// The error type of response bodies.
pub type BoxError = Box<dyn Error + Send + Sync>;
/// A response body: a full buffer or a stream.
pub type ResBody = UnsyncBoxBody<Bytes, BoxError>;

/// Byte `i` of every generated or checked body.
pub fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// Chunks of a streamed download.
const CHUNK: u64 = 64 * 1024;
/// Largest download `/bytes/N` serves.
const MAX_DOWNLOAD: u64 = 1 << 30;

/// FNV-1a, 64 bits: the checksum `/upload` answers with.
pub fn fnv1a(mut hash: u64, data: &[u8]) -> u64 {
    for &b in data {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    hash
}

/// FNV-1a's starting value.
pub const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// Routes one request.
pub async fn handle(req: Request<Incoming>) -> Result<Response<ResBody>, Infallible> {
    let path = req.uri().path().to_string();
    let res = match (req.method(), path.as_str()) {
        (&Method::GET, "/") => full(StatusCode::OK, "Hello, world!\n"),
        // The request body streams straight back as the response body.
        (&Method::POST, "/echo") => {
            Response::new(req.into_body().map_err(BoxError::from).boxed_unsync())
        }
        (&Method::POST, "/upload") => upload(req.into_body()).await,
        (&Method::GET, p) if p.starts_with("/bytes/") => {
            match p["/bytes/".len()..].parse::<u64>() {
                Ok(n) if n <= MAX_DOWNLOAD => {
                    Response::new(PatternBody { pos: 0, len: n }.boxed_unsync())
                }
                _ => full(
                    StatusCode::BAD_REQUEST,
                    "usage: /bytes/N with N up to 1 GiB\n",
                ),
            }
        }
        _ => full(StatusCode::NOT_FOUND, "not found\n"),
    };
    Ok(res)
}

/// Reads the whole body frame by frame (never holding it all) and answers
/// `bytes=N fnv=HEX`.
async fn upload(mut body: Incoming) -> Response<ResBody> {
    let (mut n, mut hash) = (0u64, FNV_START);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    n += data.len() as u64;
                    hash = fnv1a(hash, data);
                }
            }
            Err(e) => return full(StatusCode::BAD_REQUEST, format!("body: {e}\n")),
        }
    }
    full(StatusCode::OK, format!("bytes={n} fnv={hash:016x}\n"))
}

/// A small full response.
pub fn full(status: StatusCode, text: impl Into<Bytes>) -> Response<ResBody> {
    let body = Full::new(text.into())
        .map_err(|e: Infallible| match e {})
        .boxed_unsync();
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res
}

/// `len` pattern bytes, made chunk by chunk as hyper asks for them.
struct PatternBody {
    pos: u64,
    len: u64,
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.pos == self.len {
            return Poll::Ready(None);
        }
        let end = (self.pos + CHUNK).min(self.len);
        let chunk: Vec<u8> = (self.pos..end).map(pattern).collect();
        self.pos = end;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos == self.len
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.len - self.pos)
    }
}
