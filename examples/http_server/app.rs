//! The application behind `http_server`: what each read of a connection does.
//!
//! How it works: [`answer`] parses every complete request head buffered so
//! far and appends each response to the connection's output buffer, so
//! pipelined requests get one write; [`respond`] is the application itself
//! (`GET /` says hello, other paths are 404, other methods 405). The
//! benchmark suite (`benches/suite`) includes this file, so every runtime it
//! loads answers with exactly this code. Its unit tests run with the
//! suite's (`cargo test -p corio-bench`); `tests/examples_http.rs` tests the
//! same behaviour through the running server.

use crate::http::{self, Connection, Parse, Request};

/// What one call of [`answer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Bytes of `input` consumed by complete requests.
    pub parsed: usize,
    /// The connection must close once `out` is written.
    pub close: bool,
}

/// Answers every complete request at the start of `input`, in order,
/// appending the responses to `out` (pipelined requests: one write for all).
// Out of line with the application inlined into it, like `http::parse`:
// the same code wherever the file is built.
#[inline(never)]
pub fn answer(input: &[u8], out: &mut Vec<u8>) -> Step {
    let mut parsed = 0;
    let mut keep_alive = true;
    while keep_alive {
        match http::parse(&input[parsed..]) {
            Parse::Partial => break,
            Parse::Request(req) => {
                keep_alive = respond(&req, out);
                parsed += req.len;
            }
            Parse::Error(response) => {
                response.write_to(out, Connection::Close, false);
                keep_alive = false;
            }
        }
    }
    Step {
        parsed,
        close: !keep_alive,
    }
}

/// The application: appends the response to `req` to `out`; returns whether
/// the connection stays open.
#[inline(always)]
fn respond(req: &Request<'_>, out: &mut Vec<u8>) -> bool {
    // Bodies are never read, so a request with one closes the connection.
    let keep_alive = req.keep_alive && !req.has_body;
    let conn = match (keep_alive, req.http11) {
        (false, _) => Connection::Close,
        (true, true) => Connection::Implied,
        (true, false) => Connection::KeepAlive,
    };
    let head_only = req.method == b"HEAD";
    let path = req.target.split(|&b| b == b'?').next().unwrap_or_default();
    let response = match (req.method, path) {
        (b"GET" | b"HEAD", b"/") => &http::HELLO,
        (b"GET" | b"HEAD", _) => &http::NOT_FOUND,
        _ => &http::METHOD_NOT_ALLOWED,
    };
    response.write_to(out, conn, head_only);
    keep_alive
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn answers_pipelined_requests_and_keeps_the_tail() {
        let input = [GET, GET, b"GET / HT".as_slice()].concat();
        let mut out = Vec::new();
        let step = answer(&input, &mut out);
        let want = Step {
            parsed: 2 * GET.len(),
            close: false,
        };
        assert_eq!(step, want);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
        assert!(text.ends_with("Hello, world!\n"), "{text}");
    }

    #[test]
    fn a_bad_request_closes() {
        let mut out = Vec::new();
        let step = answer(b"BROKEN\r\n\r\n", &mut out);
        assert!(step.close);
        assert!(out.starts_with(b"HTTP/1.1 400"));
    }
}
