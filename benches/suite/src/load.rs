//! Closed-loop load generator on epoll (mio), one thread: N connections, each
//! sending one message and waiting for the whole answer before the next.
//!
//! A message is either `size` bytes to echo or one HTTP `GET /` whose
//! response ends where its `Content-Length` says. Each round trip's latency
//! goes into a log-linear histogram. The run has a warm-up and a measured
//! window; `on_window(true)` / `on_window(false)` are called at its start and
//! end so the caller can sample the server's CPU time exactly there. Bounded
//! by time and by a maximum number of measured requests.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::http::{decimal, trim};

/// What each connection sends.
#[derive(Debug, Clone, Copy)]
pub enum Message {
    /// `size` bytes, echoed back.
    Echo { size: usize },
    /// `GET /`, answered with one HTTP response.
    Http,
}

/// One load run.
#[derive(Debug, Clone)]
pub struct Load {
    pub addr: SocketAddr,
    pub conns: usize,
    pub message: Message,
    pub warmup: Duration,
    pub duration: Duration,
    /// Stop the measured window early after this many round trips.
    pub max_requests: u64,
}

/// What a run measured (in its window only).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub requests: u64,
    pub elapsed: Duration,
    pub hist: Histogram,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

struct Conn {
    stream: TcpStream,
    /// Bytes of the current request already written.
    written: usize,
    /// Bytes of the current answer received (HTTP: kept in `input`).
    received: usize,
    input: Vec<u8>,
    sent_at: Instant,
    want_write: bool,
}

/// Runs `load`; see the module docs.
pub fn run(load: &Load, mut on_window: impl FnMut(bool)) -> io::Result<Outcome> {
    let request: Vec<u8> = match load.message {
        Message::Echo { size } => (0..size).map(|i| b'a' + (i % 26) as u8).collect(),
        Message::Http => GET.to_vec(),
    };
    let mut poll = Poll::new()?;
    let mut conns = Vec::with_capacity(load.conns);
    for i in 0..load.conns {
        let std = std::net::TcpStream::connect(load.addr)?;
        std.set_nodelay(true)?;
        std.set_nonblocking(true)?;
        let mut stream = TcpStream::from_std(std);
        poll.registry()
            .register(&mut stream, Token(i), Interest::READABLE)?;
        conns.push(Conn {
            stream,
            written: 0,
            received: 0,
            input: Vec::with_capacity(1024),
            sent_at: Instant::now(),
            want_write: false,
        });
    }

    let start = Instant::now();
    let window_start = start + load.warmup;
    let window_end = window_start + load.duration;
    let mut measuring = false;
    let mut hist = Histogram::new();
    let mut requests = 0u64;
    let mut measured_from = window_start;
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(1024);

    for (i, c) in conns.iter_mut().enumerate() {
        send(&mut poll, i, c, &request)?;
    }
    let ended_at = loop {
        let now = Instant::now();
        if !measuring && now >= window_start {
            measuring = true;
            on_window(true);
            measured_from = Instant::now();
            hist = Histogram::new();
        }
        if measuring && (now >= window_end || requests >= load.max_requests) {
            let t = Instant::now();
            on_window(false);
            break t;
        }
        let deadline = if measuring { window_end } else { window_start };
        poll.poll(
            &mut events,
            Some(deadline.saturating_duration_since(now) + Duration::from_millis(1)),
        )?;
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut conns[i];
            if ev.is_writable() && c.want_write {
                send(&mut poll, i, c, &request)?;
            }
            if !ev.is_readable() {
                continue;
            }
            loop {
                let n = match c.stream.read(&mut buf) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed a connection",
                        ));
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                let done = match load.message {
                    Message::Echo { size } => {
                        c.received += n;
                        c.received >= size
                    }
                    Message::Http => {
                        c.input.extend_from_slice(&buf[..n]);
                        response_len(&c.input).is_some()
                    }
                };
                if done {
                    let latency = c.sent_at.elapsed();
                    if measuring {
                        hist.record(latency.as_nanos() as u64);
                        requests += 1;
                    }
                    c.received = 0;
                    c.input.clear();
                    c.written = 0;
                    send(&mut poll, i, c, &request)?;
                }
                if n < buf.len() {
                    break;
                }
            }
        }
    };
    Ok(Outcome {
        requests,
        elapsed: ended_at - measured_from,
        hist,
    })
}

/// Writes what is left of the request; waits for writability if the socket is full.
fn send(poll: &mut Poll, i: usize, c: &mut Conn, request: &[u8]) -> io::Result<()> {
    if c.written == 0 {
        c.sent_at = Instant::now();
    }
    while c.written < request.len() {
        match c.stream.write(&request[c.written..]) {
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !c.want_write {
                    c.want_write = true;
                    poll.registry().reregister(
                        &mut c.stream,
                        Token(i),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                }
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if c.want_write {
        c.want_write = false;
        poll.registry()
            .reregister(&mut c.stream, Token(i), Interest::READABLE)?;
    }
    Ok(())
}

/// Log-linear histogram of nanoseconds: 32 buckets per power of two (about 3% wide).
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

const SUB: u32 = 5; // log2 of the buckets per power of two

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; 64 << SUB],
            total: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < (1 << SUB) {
            return v as usize;
        }
        let e = 63 - v.leading_zeros(); // >= SUB
        let m = (v >> (e - SUB)) & ((1 << SUB) - 1);
        (((e - SUB + 1) << SUB) as u64 + m) as usize
    }

    /// The smallest value of bucket `i`.
    fn low(i: usize) -> u64 {
        let (e, m) = ((i >> SUB) as u32, (i & ((1 << SUB) - 1)) as u64);
        if e == 0 {
            m
        } else {
            ((1 << SUB) | m) << (e - 1)
        }
    }

    pub fn record(&mut self, ns: u64) {
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
    }

    /// The value below which a fraction `q` of the samples fall (bucket midpoint), in ns.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return (Self::low(i) + Self::low(i + 1)) / 2;
            }
        }
        Self::low(self.counts.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn buckets_are_ordered_and_tight() {
        for v in [0u64, 1, 31, 32, 33, 63, 64, 1000, 123_456, 9_876_543_210] {
            let i = Histogram::index(v);
            assert!(Histogram::low(i) <= v && v < Histogram::low(i + 1), "{v}");
            assert!(
                Histogram::low(i + 1) - Histogram::low(i) <= v / 16 + 1,
                "{v}"
            );
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for v in 1..=1000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        let p99 = h.quantile(0.99) as f64;
        assert!((p50 - 500_000.0).abs() < 20_000.0, "{p50}");
        assert!((p99 - 990_000.0).abs() < 40_000.0, "{p99}");
    }
}

/// The request the built-in load generator sends.
pub const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// If `buf` starts with a complete response, its length.
pub fn response_len(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let body = buf[..head]
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let (name, value) = line.split_at(line.iter().position(|&b| b == b':')?);
            name.eq_ignore_ascii_case(b"content-length")
                .then(|| decimal(trim(value[1..].strip_suffix(b"\r").unwrap_or(&value[1..]))))
                .flatten()
        })
        .next()
        .unwrap_or(0) as usize;
    (buf.len() >= head + body).then_some(head + body)
}

#[cfg(test)]
mod http_tests {
    use super::*;

    #[test]
    fn response_len_finds_whole_responses_only() {
        let mut out = Vec::new();
        let step = crate::app::answer(&[GET, GET].concat(), &mut out);
        assert_eq!(step.parsed, 2 * GET.len());
        let one = response_len(&out).expect("a complete response");
        assert_eq!(one * 2, out.len());
        assert_eq!(response_len(&out[..one - 1]), None);
    }
}
