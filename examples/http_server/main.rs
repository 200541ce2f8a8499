//! Small HTTP/1.1 server answering `GET /` with "Hello, world!": `cargo run --release --example http_server`.
//!
//! It is the server the benchmarks load, so it is written for speed: one
//! task per connection, one read buffer and one output buffer per connection
//! reused for every request, responses copied from static bytes. All complete
//! requests in a read (pipelining: several requests sent without waiting for
//! the answers) are answered with a single write. Try `curl -v 127.0.0.1:8080/`.
//!
//! `--tls` serves HTTPS instead (a self-signed certificate made at start, or
//! `--cert`/`--key`): the same request loop over a `corio::tls::TlsStream`.
//! Try `curl -vk https://127.0.0.1:8080/`.
//!
//! `--stats` prints each shard's runtime counters once a second (with
//! `--op-latency`, also each op kind's p50/p99 latency over that second);
//! `--stall MS` reports task polls longer than MS on stderr; the ring and
//! executor knobs (`--coop off`, `--spin 50`, ...) are listed by `--help`.
//!
//! Ctrl-C (or SIGTERM) shuts the server down gracefully: the listeners close
//! (new connections are refused), requests in flight are answered, idle
//! keep-alive connections are closed, and the process exits 0 once every
//! connection is done, or after 10 s (the rest are dropped). A second Ctrl-C
//! stops it at once.

mod app;
mod http;
#[path = "../common/knobs.rs"]
mod knobs;
#[cfg(feature = "tls")]
mod tls;

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream};
use corio::runtime::{Handle, is_shutting_down, run_until_shutdown};
use corio::signal::{Signal, SignalKind, signal};
use corio::{BufResult, IoBuf, IoBufMut};
use http::MAX_HEAD;

/// First pause after a failed accept; it doubles on each failure in a row.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause after a failed accept.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a closing connection keeps reading what the client still sends.
const LINGER: Duration = Duration::from_secs(1);
/// How long a graceful shutdown waits for connections to finish.
const DRAIN: Duration = Duration::from_secs(10);

fn main() -> io::Result<()> {
    let args = Args::parse();
    let how = Serve::new(&args)?;
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
    let scheme = how.scheme();
    let stats = args.knobs.stats;
    // Listen for Ctrl-C and SIGTERM before serving: from then on they shut
    // the server down instead of killing it.
    let (watching, signals) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || watch_signals(watching))?;
    let Ok(shutdown) = signals.recv() else {
        return Err(io::Error::other("cannot listen for signals"));
    };
    let running = args
        .knobs
        .apply(corio::Builder::new())
        .shards(args.shards)
        .start(move |shard| {
            let std_listener = listeners.lock().unwrap()[shard.index()].take();
            let how = how.clone();
            async move {
                let listener = TcpListener::from_std(std_listener.expect("one listener per shard"));
                if shard.index() == 0 {
                    // Every shard is up (with its ring) once entries run.
                    println!("listening on {scheme}://{addr} ({shards} shards)");
                }
                if stats {
                    knobs::spawn_stats(format!("shard {}: ", shard.index()));
                }
                accept_loop(listener, how).await
            }
        })?;
    let _ = shutdown.send(running.handle());
    running.join()?;
    eprintln!("http_server: stopped");
    Ok(())
}

/// Runs on a thread of its own, with a small runtime of its own: the first
/// Ctrl-C or SIGTERM starts a graceful shutdown of the shards, a second one
/// makes it end now. Tells `main` once it listens; `main` answers with the
/// handle of the shards.
fn watch_signals(watching: std::sync::mpsc::Sender<std::sync::mpsc::Sender<Handle>>) {
    corio::run(async move {
        let (mut int, mut term) = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(int), Ok(term)) => (int, term),
            (Err(e), _) | (_, Err(e)) => return eprintln!("http_server: signals: {e}"),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        if watching.send(tx).is_err() {
            return;
        }
        // `main` sends the handle once the shards are up (a signal before
        // that finds the shards stopping as soon as they start).
        let first = either(&mut int, &mut term).await;
        let Ok(handle) = rx.recv() else { return };
        eprintln!(
            "http_server: {first}: shutting down; waiting up to {DRAIN:?} for the connections (again to stop now)"
        );
        handle.shutdown(DRAIN);
        let second = either(&mut int, &mut term).await;
        eprintln!("http_server: {second}: stopping now");
        handle.shutdown(Duration::ZERO);
    });
}

/// Waits for either signal; returns its name.
async fn either(int: &mut Signal, term: &mut Signal) -> &'static str {
    std::future::poll_fn(|cx| {
        if int.poll_recv(cx).is_ready() {
            return std::task::Poll::Ready("SIGINT");
        }
        term.poll_recv(cx).map(|_| "SIGTERM")
    })
    .await
}

/// How accepted connections are served: plain HTTP, or HTTPS (`--tls`).
#[derive(Clone)]
enum Serve {
    Plain,
    #[cfg(feature = "tls")]
    Tls(corio::tls::TlsAcceptor),
}

impl Serve {
    fn new(args: &Args) -> io::Result<Serve> {
        match args.tls {
            false => Ok(Serve::Plain),
            #[cfg(feature = "tls")]
            true => tls::acceptor(args.cert.as_deref(), args.key.as_deref()).map(Serve::Tls),
            #[cfg(not(feature = "tls"))]
            true => Err(io::Error::other("--tls: built without the `tls` feature")),
        }
    }

    fn scheme(&self) -> &'static str {
        match self {
            Serve::Plain => "http",
            #[cfg(feature = "tls")]
            Serve::Tls(_) => "https",
        }
    }
}

/// Accepts connections, one task each, until the server shuts down (the
/// listener is then dropped: new connections are refused).
async fn accept_loop(listener: TcpListener, how: Serve) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                backoff = MIN_BACKOFF;
                let _ = stream.set_nodelay(true);
                match &how {
                    Serve::Plain => corio::spawn(serve(stream)),
                    // The handshake runs in the connection's own task.
                    #[cfg(feature = "tls")]
                    Serve::Tls(acceptor) => corio::spawn(tls::serve(acceptor.clone(), stream)),
                };
            }
            Err(_) if is_shutting_down() => return,
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

/// A connection requests are read from and responses written to: a
/// `TcpStream`, or a TLS session over one (`--tls`).
trait Conn {
    async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B>;
    async fn write_all<B: IoBuf>(&mut self, buf: B) -> BufResult<(), B>;
    /// Ends the connection after its last response without losing that
    /// response; `buf` is a spare buffer to read into.
    async fn close(self, buf: Vec<u8>);
}

// The plain path calls `TcpStream`'s own futures, with no wrapper around them.
impl Conn for TcpStream {
    /// Receives into a buffer of the runtime's pool (multishot receive on
    /// io_uring: one armed op per connection, no SQE per request) and copies
    /// the bytes to `buf`.
    async fn read<B: IoBufMut>(&mut self, mut buf: B) -> BufResult<usize, B> {
        let data = match self.recv_pooled().await {
            Ok(Some(data)) => data,
            Ok(None) => return (Ok(0), buf),
            Err(e) => return (Err(e), buf),
        };
        // `serve` always leaves at least MAX_HEAD (8 KiB) of room, more than
        // a pool buffer (4 KiB by default) holds.
        if data.len() > buf.bytes_total() {
            let e = io::Error::new(
                io::ErrorKind::InvalidData,
                "pool buffer larger than the room left",
            );
            return (Err(e), buf);
        }
        // SAFETY: `data.len()` bytes fit in `buf`'s capacity (checked above)
        // and the two buffers are distinct allocations; `set_init` follows the
        // write of exactly those bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), buf.stable_mut_ptr(), data.len());
            buf.set_init(data.len());
        }
        (Ok(data.len()), buf)
    }

    fn write_all<B: IoBuf>(&mut self, buf: B) -> impl Future<Output = BufResult<(), B>> {
        TcpStream::write_all(self, buf)
    }

    fn close(self, buf: Vec<u8>) -> impl Future<Output = ()> {
        linger_close(self, buf)
    }
}

/// Serves one connection until the client closes it or a response says `Connection: close`.
async fn serve<C: Conn>(mut stream: C) {
    // Bytes read and not yet parsed are `input[..filled]`. Twice the head
    // limit: what is left after answering the complete requests is a partial
    // head of at most MAX_HEAD bytes, so a read always has room.
    let mut input = vec![0u8; 2 * MAX_HEAD];
    let mut filled = 0;
    let mut output = Vec::with_capacity(4096);
    loop {
        let read = stream.read(input.slice(filled..));
        let (res, slice) = if filled == 0 {
            // Between requests: a shutdown closes the idle connection.
            match run_until_shutdown(read).await {
                Some(got) => got,
                None => return,
            }
        } else {
            // A request has begun: it is answered, shutdown or not.
            read.await
        };
        input = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return, // closed by the client, or reset
            Ok(n) => filled += n,
        }

        // Answer every complete request read so far, in order.
        let step = app::answer(&input[..filled], &mut output);

        if !output.is_empty() {
            let (res, buf) = stream.write_all(output).await;
            output = buf;
            output.clear();
            if res.is_err() {
                return;
            }
        }
        if step.close {
            return stream.close(input).await;
        }
        // Move the start of the next request (if any) to the front.
        input.copy_within(step.parsed..filled, 0);
        filled -= step.parsed;
    }
}

/// Closes the connection after its last response without losing that response.
///
/// Closing a socket that still has unread input makes the kernel send a
/// reset, which can destroy the response before the client has read it. So
/// shut down our side (the client sees end-of-file after the response), then
/// read and drop what the client still sends, for at most [`LINGER`].
async fn linger_close(stream: TcpStream, mut buf: Vec<u8>) {
    if stream.shutdown(Shutdown::Write).await.is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    loop {
        match corio::time::timeout_at(deadline, stream.read(buf)).await {
            Ok((Ok(n), b)) if n > 0 => buf = b,
            _ => return, // end of file, error or time is up
        }
    }
}

/// Command-line options.
struct Args {
    addr: String,
    shards: usize,
    /// Serve HTTPS (`--tls`, or implied by `--cert`/`--key`).
    tls: bool,
    cert: Option<String>,
    key: Option<String>,
    /// `--stats` and the runtime knobs.
    knobs: knobs::Knobs,
}

impl Args {
    fn parse() -> Args {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut out = Args {
            addr: "127.0.0.1:8080".to_string(),
            shards: cpus,
            tls: false,
            cert: None,
            key: None,
            knobs: knobs::Knobs::default(),
        };
        let usage = || -> ! {
            eprintln!(
                "usage: http_server [--addr HOST:PORT] [--shards N] \
                 [--tls [--cert CERT.pem --key KEY.pem]]\n  {}\n\
                 (defaults: 127.0.0.1:8080, one shard per CPU: {cpus}; \
                 --tls alone: a self-signed certificate)",
                knobs::USAGE
            );
            std::process::exit(2);
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--tls" {
                out.tls = true;
                continue;
            }
            match out.knobs.parse(&arg, &mut || args.next()) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    eprintln!("http_server: {e}");
                    usage()
                }
            }
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
                "--cert" => out.cert = Some(value),
                "--key" => out.key = Some(value),
                _ => usage(),
            }
        }
        if out.cert.is_some() != out.key.is_some() {
            usage();
        }
        out.tls |= out.cert.is_some();
        out
    }
}
