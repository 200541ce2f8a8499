//! Small HTTP/1.1 server answering `GET /` with "Hello, world!": `cargo run --release --example http_server`.
//!
//! It is the server the benchmarks load, so it is written for speed: one
//! task per connection, one read buffer and one output buffer per connection
//! reused for every request, responses copied from static bytes. All complete
//! requests in a read (pipelining: several requests sent without waiting for
//! the answers) are answered with a single write. Try `curl -v 127.0.0.1:8080/`.

mod http;

use std::io;
use std::net::Shutdown;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream};
use http::{Connection, Parse, Request};

/// First pause after a failed accept; it doubles on each failure in a row.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause after a failed accept.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a closing connection keeps reading what the client still sends.
const LINGER: Duration = Duration::from_secs(1);

fn main() -> io::Result<()> {
    let args = Args::parse();
    // One listener per shard, all on one port (SO_REUSEPORT): the first
    // picks the port when given port 0, the others join it. std listeners
    // are `Send`, so each moves to its shard's thread.
    let first = TcpListener::bind_reuseport(&args.addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![Some(first.into_std()?)];
    for _ in 1..args.shards {
        listeners.push(Some(TcpListener::bind_reuseport(addr)?.into_std()?));
    }
    let listeners = Mutex::new(listeners);
    let shards = args.shards;
    corio::Builder::new()
        .shards(args.shards)
        .run(move |shard| {
            let std_listener = listeners.lock().unwrap()[shard.index()].take();
            async move {
                let listener = TcpListener::from_std(std_listener.expect("one listener per shard"));
                if shard.index() == 0 {
                    // Every shard is up (with its ring) once entries run.
                    println!("listening on http://{addr} ({shards} shards)");
                }
                accept_loop(listener).await
            }
        })?;
    Ok(())
}

/// Accepts connections forever, one task each.
async fn accept_loop(listener: TcpListener) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                backoff = MIN_BACKOFF;
                corio::spawn(serve(stream));
            }
            // Out of fds or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or any
            // other error: retrying at once would spin, so wait a little.
            Err(e) => {
                eprintln!("accept failed: {e}; retrying in {backoff:?}");
                corio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Serves one connection until the client closes it or a response says `Connection: close`.
async fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Requests arrive in buffers of the runtime's pool, taken only when data
    // arrives (an idle connection holds none). A request cut across two
    // receives waits in `pending` (at most a head's worth of bytes).
    let mut pending: Vec<u8> = Vec::new();
    let mut output = Vec::new();
    loop {
        let lease = match stream.recv_pooled().await {
            Ok(Some(lease)) => lease,
            Ok(None) | Err(_) => return, // closed by the client, or reset
        };
        if !pending.is_empty() {
            pending.extend_from_slice(&lease);
        }
        let input: &[u8] = if pending.is_empty() { &lease } else { &pending };

        // Answer every complete request received so far, in order.
        let mut parsed = 0;
        let mut keep_alive = true;
        while keep_alive {
            match http::parse(&input[parsed..]) {
                Parse::Partial => break,
                Parse::Request(req) => {
                    keep_alive = respond(&req, &mut output);
                    parsed += req.len;
                }
                Parse::Error(response) => {
                    response.write_to(&mut output, Connection::Close, false);
                    keep_alive = false;
                }
            }
        }
        // Keep the start of the next request (if any) for the next receive.
        if pending.is_empty() {
            pending.extend_from_slice(&lease[parsed..]);
        } else {
            pending.drain(..parsed);
        }
        drop(lease);

        if !output.is_empty() {
            let (res, buf) = stream.write_all(output).await;
            output = buf;
            output.clear();
            if res.is_err() {
                return;
            }
        }
        if !keep_alive {
            return linger_close(stream).await;
        }
    }
}

/// The application: appends the response to `req` to `out`; returns whether
/// the connection stays open.
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

/// Closes the connection after its last response without losing that response.
///
/// Closing a socket that still has unread input makes the kernel send a
/// reset, which can destroy the response before the client has read it. So
/// shut down our side (the client sees end-of-file after the response), then
/// read and drop what the client still sends, for at most [`LINGER`].
async fn linger_close(stream: TcpStream) {
    if stream.shutdown(Shutdown::Write).await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    loop {
        match corio::time::timeout_at(deadline, stream.recv_pooled()).await {
            Ok(Ok(Some(_discarded))) => {}
            _ => return, // end of file, error or time is up
        }
    }
}

/// The value of `--addr HOST:PORT` (or `--addr=HOST:PORT`), else `default`.
/// Command-line options.
struct Args {
    addr: String,
    shards: usize,
}

impl Args {
    fn parse() -> Args {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut out = Args {
            addr: "127.0.0.1:8080".to_string(),
            shards: cpus,
        };
        let usage = || -> ! {
            eprintln!(
                "usage: http_server [--addr HOST:PORT] [--shards N]   \
                 (defaults: 127.0.0.1:8080, one shard per CPU: {cpus})"
            );
            std::process::exit(2);
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let (key, inline) = match arg.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (arg, None),
            };
            let Some(value) = inline.or_else(|| args.next()) else {
                usage()
            };
            match key.as_str() {
                "--addr" => out.addr = value,
                "--shards" => match value.parse() {
                    Ok(n) if n > 0 => out.shards = n,
                    _ => usage(),
                },
                _ => usage(),
            }
        }
        out
    }
}
