//! hyper 1.x on corio: HTTP/1.1 and HTTP/2 (prior knowledge, or ALPN over
//! TLS), one shard per CPU: `cargo run --release --example hyper_server --features hyper`.
//!
//! Each shard accepts on the same port (`SO_REUSEPORT`) and serves each
//! connection in its own task through `corio::compat::Compat`, with
//! `CorioExecutor` for HTTP/2's streams and `CorioTimer` for hyper's
//! timeouts. Routes: `GET /` (hello), `POST /echo` (the request body
//! streamed back), `GET /bytes/N` (N bytes streamed), `POST /upload` (the
//! body streamed in; answers its size and FNV-1a checksum). `--axum` serves
//! an axum `Router` instead (`GET /`, `POST /greet` with JSON, `GET /hits`).
//!
//! A client whose request head does not arrive within `--header-timeout`
//! seconds (default 10) is disconnected. Try:
//!
//! ```text
//! curl -v 127.0.0.1:8080/                        # HTTP/1.1
//! curl --http2-prior-knowledge 127.0.0.1:8080/   # HTTP/2 without TLS
//! curl -k --http2 https://127.0.0.1:8080/        # with --tls: HTTP/2 by ALPN
//! ```

mod app;
mod axum_app;
mod rewind;
#[cfg(feature = "tls")]
mod tls;

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use corio::compat::Compat;
use corio::compat::hyper::{CorioExecutor, CorioTimer};
use corio::net::{TcpListener, TcpStream};
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;

/// First pause after a failed accept; it doubles on each failure in a row.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause after a failed accept.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

fn main() -> io::Result<()> {
    let args = Args::parse();
    let how = Serve::new(&args)?;
    // One listener per shard, all on one port (SO_REUSEPORT).
    let first = TcpListener::bind_reuseport(&args.addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![Some(first.into_std()?)];
    for _ in 1..args.shards {
        listeners.push(Some(TcpListener::bind_reuseport(addr)?.into_std()?));
    }
    let listeners = Mutex::new(listeners);
    let (shards, scheme) = (args.shards, how.scheme());
    let what = if args.axum { "axum" } else { "hyper" };
    let conf = Conf {
        axum: args.axum,
        header_timeout: args.header_timeout,
    };
    corio::Builder::new()
        .shards(args.shards)
        .run(move |shard| {
            let std_listener = listeners.lock().unwrap()[shard.index()].take();
            let how = how.clone();
            async move {
                let listener = TcpListener::from_std(std_listener.expect("one listener per shard"));
                if shard.index() == 0 {
                    println!("listening on {scheme}://{addr} ({shards} shards, {what})");
                }
                let app = match conf.axum {
                    true => App::Axum(axum_app::router()),
                    false => App::Hyper,
                };
                accept_loop(listener, how, app, conf).await
            }
        })?;
    Ok(())
}

/// What every connection is served with.
#[derive(Clone, Copy)]
struct Conf {
    axum: bool,
    header_timeout: Duration,
}

/// The service: the plain hyper routes, or the shard's axum router (its
/// state shared by the shard's connections).
#[derive(Clone)]
enum App {
    Hyper,
    Axum(axum::Router),
}

/// Plain HTTP (HTTP/2 told by its preface) or HTTPS (`--tls`, ALPN).
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

/// Accepts connections forever, one task each.
async fn accept_loop(listener: TcpListener, how: Serve, app: App, conf: Conf) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                backoff = MIN_BACKOFF;
                let _ = stream.set_nodelay(true);
                let (how, app) = (how.clone(), app.clone());
                corio::spawn(async move {
                    if let Err(e) = serve(stream, how, app, conf).await {
                        // Resets and timeouts are a client's business.
                        if !quiet(&*e) {
                            eprintln!("connection: {e}");
                        }
                    }
                });
            }
            // Out of fds (EMFILE) or memory: retrying at once would spin.
            Err(e) => {
                eprintln!("accept failed: {e}; retrying in {backoff:?}");
                corio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Errors not worth a line: the client went away or was too slow.
fn quiet(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(e) = e.downcast_ref::<hyper::Error>() {
        return e.is_incomplete_message() || e.is_timeout() || e.is_canceled() || e.is_closed();
    }
    if let Some(e) = e.downcast_ref::<io::Error>() {
        return matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        );
    }
    false
}

type Error = Box<dyn std::error::Error>;

/// Serves one connection: picks HTTP/1.1 or HTTP/2, then runs hyper.
async fn serve(stream: TcpStream, how: Serve, app: App, conf: Conf) -> Result<(), Error> {
    let io = Compat::new(stream);
    match how {
        Serve::Plain => {
            let (h2, io) = rewind::sniff(io).await?;
            run_http(io, h2, app, conf).await
        }
        #[cfg(feature = "tls")]
        Serve::Tls(acceptor) => {
            let tls = acceptor.accept(io.into_inner()).await?;
            let h2 = tls.alpn_protocol() == Some(b"h2");
            run_http(Compat::new(tls), h2, app, conf).await
        }
    }
}

/// Runs hyper's HTTP/1.1 or HTTP/2 server connection over `io`, with the
/// plain service or the axum router.
async fn run_http<I>(io: I, h2: bool, app: App, conf: Conf) -> Result<(), Error>
where
    I: Read + Write + Unpin + 'static,
{
    match app {
        App::Hyper => connection(io, h2, conf, service_fn(app::handle)).await,
        App::Axum(router) => {
            let svc = service_fn(move |req| axum_app::handle(router.clone(), req));
            connection(io, h2, conf, svc).await
        }
    }
}

async fn connection<I, S, B>(io: I, h2: bool, conf: Conf, svc: S) -> Result<(), Error>
where
    I: Read + Write + Unpin + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if h2 {
        http2::Builder::new(CorioExecutor)
            .timer(CorioTimer)
            .serve_connection(io, svc)
            .await?;
    } else {
        http1::Builder::new()
            .timer(CorioTimer)
            .header_read_timeout(conf.header_timeout)
            .serve_connection(io, svc)
            .await?;
    }
    Ok(())
}

struct Args {
    addr: String,
    shards: usize,
    /// Serve HTTPS (`--tls`, or implied by `--cert`/`--key`).
    tls: bool,
    cert: Option<String>,
    key: Option<String>,
    axum: bool,
    header_timeout: Duration,
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
            axum: false,
            header_timeout: Duration::from_secs(10),
        };
        let usage = || -> ! {
            eprintln!(
                "usage: hyper_server [--addr HOST:PORT] [--shards N] [--axum] \
                 [--header-timeout SECS] [--tls [--cert CERT.pem --key KEY.pem]]\n\
                 (defaults: 127.0.0.1:8080, one shard per CPU: {cpus}, 10 s; \
                 --tls alone: a self-signed certificate)"
            );
            std::process::exit(2);
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--tls" => out.tls = true,
                "--axum" => out.axum = true,
                "-h" | "--help" => usage(),
                _ => {
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
                        "--header-timeout" => match value.parse::<f64>() {
                            Ok(s) if s > 0.0 => out.header_timeout = Duration::from_secs_f64(s),
                            _ => usage(),
                        },
                        "--cert" => out.cert = Some(value),
                        "--key" => out.key = Some(value),
                        _ => usage(),
                    }
                }
            }
        }
        if out.cert.is_some() != out.key.is_some() {
            usage();
        }
        out.tls |= out.cert.is_some();
        out
    }
}
