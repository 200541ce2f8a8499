//! Just enough HTTP/1.x for the example server: a request-head parser and fixed responses.
//!
//! How it works: [`parse`] looks at the bytes buffered so far and returns a
//! complete request head (method and target borrowed from the buffer, nothing
//! allocated), or says that more bytes are needed, or which error response
//! refuses the request. Responses are static byte strings, so answering a
//! request is a few `memcpy`s into the connection's output buffer.
//!
//! Limits, on purpose: request bodies are never read (a request that has one
//! is answered, then the connection closes); no `Date` header.

/// Largest request head (request line, header lines, blank line) accepted.
pub const MAX_HEAD: usize = 8 * 1024;

/// What the buffered bytes hold.
#[derive(Debug)]
pub enum Parse<'a> {
    /// A complete request head.
    Request(Request<'a>),
    /// The head is not complete yet: read more bytes and parse again.
    Partial,
    /// The request is refused with this response; the connection must close.
    Error(&'static Response),
}

/// A parsed request head.
#[derive(Debug)]
pub struct Request<'a> {
    /// `GET`, `HEAD`, `POST`, ...
    pub method: &'a [u8],
    /// The request target, e.g. `/index.html?x=1`.
    pub target: &'a [u8],
    /// HTTP/1.1 (else HTTP/1.0).
    pub http11: bool,
    /// Whether the client wants the connection kept open: the default for
    /// HTTP/1.1 unless it sent `Connection: close`; for HTTP/1.0 only with
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
    /// A body follows (`Content-Length` > 0 or `Transfer-Encoding`).
    pub has_body: bool,
    /// Length of the head in bytes, including its final blank line.
    pub len: usize,
}

/// Parses the request head at the start of `buf`.
// Out of line, with its helpers inlined into it: the same code wherever
// the file is built (the benchmark suite counts its instructions).
#[inline(never)]
pub fn parse(buf: &[u8]) -> Parse<'_> {
    let mut lines = Lines { buf, pos: 0 };
    // RFC 9112 §2.2: ignore empty lines before the request line.
    let first = loop {
        match lines.next() {
            None => return lines.incomplete(),
            Some(b"") => continue,
            Some(line) => break line,
        }
    };
    let (method, target, http11) = match request_line(first) {
        Ok(r) => r,
        Err(resp) => return Parse::Error(resp),
    };

    let (mut host, mut close, mut keep_alive) = (false, false, false);
    let (mut content_length, mut chunked) = (None, false);
    loop {
        if lines.pos > MAX_HEAD {
            return Parse::Error(&HEADERS_TOO_LARGE);
        }
        let Some(line) = lines.next() else {
            return lines.incomplete();
        };
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = header(line) else {
            return Parse::Error(&BAD_REQUEST);
        };
        if name.eq_ignore_ascii_case(b"host") {
            if host {
                return Parse::Error(&BAD_REQUEST); // RFC 9112 §3.2: exactly one Host
            }
            host = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(trim) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = decimal(value);
            if n.is_none() || (content_length.is_some() && content_length != n) {
                return Parse::Error(&BAD_REQUEST);
            }
            content_length = n;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = true;
        }
    }
    if lines.pos > MAX_HEAD {
        return Parse::Error(&HEADERS_TOO_LARGE);
    }
    // RFC 9112 §3.2 (Host is required in 1.1) and §6.1 (no Transfer-Encoding
    // in 1.0, never together with Content-Length: that is how requests get smuggled).
    if (http11 && !host) || (chunked && (!http11 || content_length.is_some())) {
        return Parse::Error(&BAD_REQUEST);
    }
    Parse::Request(Request {
        method,
        target,
        http11,
        keep_alive: !close && (http11 || keep_alive),
        has_body: chunked || content_length.is_some_and(|n| n > 0),
        len: lines.pos,
    })
}

/// Splits `METHOD SP TARGET SP HTTP/1.x`.
#[inline(always)]
fn request_line(line: &[u8]) -> Result<(&[u8], &[u8], bool), &'static Response> {
    let Some(sp1) = find(line, b' ') else {
        return Err(&BAD_REQUEST);
    };
    let (method, rest) = (&line[..sp1], &line[sp1 + 1..]);
    let Some(sp2) = find(rest, b' ') else {
        return Err(&BAD_REQUEST);
    };
    let (target, version) = (&rest[..sp2], &rest[sp2 + 1..]);
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(&BAD_REQUEST);
    }
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(&BAD_REQUEST);
    }
    match version {
        b"HTTP/1.1" => Ok((method, target, true)),
        b"HTTP/1.0" => Ok((method, target, false)),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(&VERSION_NOT_SUPPORTED)
        }
        _ => Err(&BAD_REQUEST),
    }
}

/// Splits `Name: value` into the name and the value without surrounding blanks.
#[inline(always)]
fn header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = find(line, b':')?;
    let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
    // A name is a token: this also refuses "Name : v" and folded lines
    // (starting with a blank), as RFC 9112 §5 asks.
    let name_ok = !name.is_empty() && name.iter().all(|&b| is_tchar(b));
    let value_ok = value.iter().all(|&b| CLASS[b as usize] & VALUE != 0);
    (name_ok && value_ok).then_some((name, value))
}

/// `1*DIGIT` as a number; `None` if empty, not digits, or too large.
pub fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

pub fn trim(s: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !blank(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !blank(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// RFC 9110 §5.6.2 token characters.
#[inline(always)]
fn is_tchar(b: u8) -> bool {
    CLASS[b as usize] & TCHAR != 0
}

/// [`CLASS`] bits: a token character; a byte a header value may hold
/// (visible characters, space, tab and obs-text: all but other controls and DEL).
const TCHAR: u8 = 1;
const VALUE: u8 = 2;

/// Each byte's [`TCHAR`] and [`VALUE`] bits (a table: one load per byte
/// instead of a chain of range tests).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            t[b] |= TCHAR;
        }
        if c == b'\t' || (c >= b' ' && c != 0x7f) {
            t[b] |= VALUE;
        }
        b += 1;
    }
    let mut i = 0;
    let extra = b"!#$%&'*+-.^_`|~";
    while i < extra.len() {
        t[extra[i] as usize] |= TCHAR;
        i += 1;
    }
    t
};

/// The index of the first `byte` in `hay`: eight bytes per step (a word
/// whose bytes equal `byte` become zero, and the lowest zero byte of a word
/// is found exactly), then the tail one by one.
#[inline]
fn find(hay: &[u8], byte: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(byte);
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ pattern;
        // The lowest set bit is that of the first zero byte (a borrow only
        // ever marks bytes above a zero one).
        let zero = word.wrapping_sub(LO) & !word & HI;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|i| at + i)
}

/// The lines of a buffer; each ends with `\n` (a `\r` before it is removed).
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    /// The next complete line, or `None` if its end has not arrived yet.
    #[inline(always)]
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        let end = find(rest, b'\n')?;
        self.pos += end + 1;
        let line = &rest[..end];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }

    /// What to do when the head is not complete: wait, unless it is already too large.
    fn incomplete(&self) -> Parse<'a> {
        if self.buf.len() > MAX_HEAD {
            Parse::Error(&HEADERS_TOO_LARGE)
        } else {
            Parse::Partial
        }
    }
}

/// A fixed response: status line and headers (without `Connection` and the
/// blank line), and a body.
#[derive(Debug)]
pub struct Response {
    head: &'static [u8],
    body: &'static [u8],
}

/// How the response tells the client about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Stays open, and the client knows it (HTTP/1.1): no header needed.
    Implied,
    /// Stays open: `Connection: keep-alive` (an HTTP/1.0 client asked for it).
    KeepAlive,
    /// Closes after this response: `Connection: close`.
    Close,
}

impl Response {
    /// Appends the response to `out`, without the body if `head_only` (a `HEAD` request).
    #[inline(always)]
    pub fn write_to(&self, out: &mut Vec<u8>, conn: Connection, head_only: bool) {
        out.extend_from_slice(self.head);
        out.extend_from_slice(match conn {
            Connection::Implied => b"\r\n",
            Connection::KeepAlive => b"Connection: keep-alive\r\n\r\n",
            Connection::Close => b"Connection: close\r\n\r\n",
        });
        if !head_only {
            out.extend_from_slice(self.body);
        }
    }
}

// The responses. Each Content-Length is the length of its body (the tests
// in tests/examples_http.rs check every one of them).

/// `200 OK` with the greeting.
pub static HELLO: Response = Response {
    head: b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n",
    body: b"Hello, world!\n",
};

/// `404 Not Found`.
pub static NOT_FOUND: Response = Response {
    head: b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n",
    body: b"Not Found\n",
};

/// `405 Method Not Allowed`, with the methods that are.
pub static METHOD_NOT_ALLOWED: Response = Response {
    head: b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n\
            Content-Type: text/plain\r\nContent-Length: 19\r\n",
    body: b"Method Not Allowed\n",
};

/// `400 Bad Request`: the request does not parse.
pub static BAD_REQUEST: Response = Response {
    head: b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n",
    body: b"Bad Request\n",
};

/// `431 Request Header Fields Too Large`: the head is over [`MAX_HEAD`].
pub static HEADERS_TOO_LARGE: Response = Response {
    head: b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
            Content-Type: text/plain\r\nContent-Length: 32\r\n",
    body: b"Request Header Fields Too Large\n",
};

/// `505 HTTP Version Not Supported`: `HTTP/2.0` and the like.
pub static VERSION_NOT_SUPPORTED: Response = Response {
    head: b"HTTP/1.1 505 HTTP Version Not Supported\r\n\
            Content-Type: text/plain\r\nContent-Length: 27\r\n",
    body: b"HTTP Version Not Supported\n",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_agrees_with_a_plain_search_at_every_position() {
        for len in 0..40 {
            for at in 0..=len {
                let mut hay = vec![b'a'; len];
                // The byte searched for, and bytes just below and above it
                // (a borrow must not make them match).
                for (i, b) in hay.iter_mut().enumerate() {
                    *b = [b'\t', b'\x0b', b'a', 0x80, 0xff][i % 5];
                }
                if at < len {
                    hay[at] = b'\n';
                }
                let want = hay.iter().position(|&b| b == b'\n');
                assert_eq!(find(&hay, b'\n'), want, "len {len}, at {at}");
                if at < len {
                    hay[at] = 0;
                }
                let want = hay.iter().position(|&b| b == 0);
                assert_eq!(find(&hay, 0), want, "len {len}, at {at}, zero");
            }
        }
    }

    #[test]
    fn the_byte_classes_are_rfc_9110s() {
        for b in 0..=255u8 {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), tchar, "tchar {b:#x}");
            let value = b == b'\t' || (b >= b' ' && b != 0x7f);
            assert_eq!(CLASS[b as usize] & VALUE != 0, value, "value {b:#x}");
        }
    }

    #[test]
    fn the_request_line_splits_at_its_first_two_spaces() {
        let Parse::Request(r) = parse(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n") else {
            panic!("a plain GET")
        };
        assert_eq!(
            (r.method, r.target, r.http11),
            (&b"GET"[..], &b"/a"[..], true)
        );
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET /\r\n\r\n",
            b"GET / HTTP/1.1 x\r\n\r\n",
            b" / HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad), Parse::Error(r) if std::ptr::eq(r, &BAD_REQUEST)),
                "{bad:?}"
            );
        }
    }
}
