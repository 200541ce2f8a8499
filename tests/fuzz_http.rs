//! Fuzzing the HTTP/1.x request-head parser of the `http_server` example
//! (`examples/http_server/http.rs`): mutated requests never make it panic,
//! and what it accepts is consistent — a request's head lies within the
//! buffer, its method and target are inside it, the head parses alone to
//! the same request, every shorter prefix is still `Partial`, and bytes
//! after the head do not change it.
//!
//! `CORIO_FUZZ_SECS=600 cargo test --test fuzz_http` for a long run.

mod fuzz_support;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/http_server/http.rs"]
mod http;

use std::time::Duration;

use http::{MAX_HEAD, Parse};

fn corpus() -> Vec<Vec<u8>> {
    [
        &b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        b"GET /index.html?x=1&y=%20 HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n",
        b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"\r\n\r\nGET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n X-Folded: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
    ]
    .iter()
    .map(|c| c.to_vec())
    .collect()
}

/// The parser's properties on one input.
fn check(buf: &[u8]) {
    match http::parse(buf) {
        Parse::Request(r) => {
            assert!(r.len <= buf.len(), "head longer than the buffer");
            assert!(r.len <= MAX_HEAD + 2, "a head over MAX_HEAD was accepted");
            let head = &buf[..r.len];
            let inside = |s: &[u8]| {
                let (p, h) = (s.as_ptr() as usize, head.as_ptr() as usize);
                p >= h && p + s.len() <= h + head.len()
            };
            assert!(
                inside(r.method) && inside(r.target),
                "method or target outside the head"
            );
            assert!(!r.method.is_empty() && !r.target.is_empty());
            let (method, target, len) = (r.method.to_vec(), r.target.to_vec(), r.len);
            let (http11, keep_alive, has_body) = (r.http11, r.keep_alive, r.has_body);
            // The head alone parses to the same request.
            match http::parse(head) {
                Parse::Request(again) => {
                    assert_eq!(
                        (again.method, again.target, again.len),
                        (&method[..], &target[..], len)
                    );
                    assert_eq!(
                        (again.http11, again.keep_alive, again.has_body),
                        (http11, keep_alive, has_body)
                    );
                }
                other => panic!("the head alone gave {other:?}"),
            }
            // Every shorter prefix still waits for more.
            for cut in [0, len / 3, len / 2, len - 1] {
                if cut < len {
                    assert!(
                        matches!(http::parse(&buf[..cut]), Parse::Partial),
                        "a prefix of {cut} of a {len}-byte head was not Partial"
                    );
                }
            }
        }
        Parse::Partial => {
            // Not refused, not complete: never more than MAX_HEAD buffered.
            assert!(buf.len() <= MAX_HEAD, "{} bytes still Partial", buf.len());
        }
        Parse::Error(_) => {}
    }
    // `decimal` accepts digits only, and only what fits in a u64.
    if let Some(n) = http::decimal(buf) {
        assert!(buf.iter().all(u8::is_ascii_digit));
        assert_eq!(
            n.to_string().trim_start_matches('0'),
            std::str::from_utf8(buf).unwrap().trim_start_matches('0')
        );
    }
}

/// Inputs that once failed (none so far), run first.
const REGRESSIONS: &[&str] = &[];

#[test]
fn the_http_parser_survives_mutated_requests() {
    for r in REGRESSIONS {
        check(&fuzz_support::unhex(r));
    }
    for c in corpus() {
        check(&c);
    }
    let n = fuzz_support::run(
        "http",
        &corpus(),
        3 * MAX_HEAD,
        Duration::from_secs(2),
        check,
    );
    assert!(n > 1_000, "only {n} inputs ran");
}
