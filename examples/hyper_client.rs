//! A hyper 1.x client on corio: `cargo run --example hyper_client --features hyper -- URL`.
//!
//! GET (or POST with `--data TEXT` or `--data-file PATH`) over plain TCP or
//! TLS (`https://`, through `corio::tls`; `--ca FILE` names the PEM
//! certificate(s) to trust, for example the one `hyper_server --tls`
//! prints). HTTP/2 comes by ALPN over TLS, or with `--http2` (prior
//! knowledge) over plain TCP. Prints the status line, then the body as it
//! streams in (`-i` also prints the response headers). `--repeat N` sends
//! the request N times on the one connection.
//!
//! ```text
//! cargo run --example hyper_client --features hyper -- http://127.0.0.1:8080/
//! cargo run --example hyper_client --features hyper -- --data hello http://127.0.0.1:8080/echo
//! cargo run --example hyper_client --features hyper -- --ca /tmp/corio-hyper-1234.pem https://localhost:8080/
//! ```

use std::error::Error;
use std::io::{self, Write as _};

use corio::compat::Compat;
use corio::compat::hyper::{CorioExecutor, CorioTimer};
use corio::net::TcpStream;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::{http1, http2};
use hyper::rt::{Read, Write};
use hyper::{Method, Request, Uri};

type BoxError = Box<dyn Error>;

fn main() {
    let args = Args::parse();
    if let Err(e) = corio::run(run(args)) {
        eprintln!("hyper_client: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let uri: Uri = args.url.parse()?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err("the URL must start with http:// or https://".into()),
    };
    let host = uri.host().ok_or("the URL has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    let _ = tcp.set_nodelay(true);
    if !https {
        return exchange(Compat::new(tcp), args.http2, &uri, &host, &args).await;
    }
    #[cfg(feature = "tls")]
    {
        let tls = tls_connect(&host, tcp, args.ca.as_deref(), args.http2).await?;
        let h2 = tls.alpn_protocol() == Some(b"h2");
        exchange(Compat::new(tls), h2, &uri, &host, &args).await
    }
    #[cfg(not(feature = "tls"))]
    Err("https: built without the `tls` feature".into())
}

#[cfg(feature = "tls")]
async fn tls_connect(
    host: &str,
    tcp: TcpStream,
    ca: Option<&str>,
    only_h2: bool,
) -> Result<corio::tls::TlsStream<TcpStream>, BoxError> {
    use std::sync::Arc;

    use corio::tls::{self, TlsConnector, rustls};

    let ca = ca.ok_or("https needs --ca FILE (the PEM certificate or CA to trust)")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in tls::load_certs(ca)? {
        roots.add(cert)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = match only_h2 {
        true => vec![b"h2".to_vec()],
        false => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
    };
    let connector = TlsConnector::from(Arc::new(config));
    Ok(connector.connect(host, tcp).await?)
}

/// Sends the request (`--repeat` times) over one HTTP/1.1 or HTTP/2
/// connection and prints each response.
async fn exchange<I>(io: I, h2: bool, uri: &Uri, host: &str, args: &Args) -> Result<(), BoxError>
where
    I: Read + Write + Unpin + 'static,
{
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let body = match (&args.data, &args.data_file) {
        (Some(text), _) => Some(Bytes::from(text.clone())),
        (None, Some(path)) => Some(Bytes::from(std::fs::read(path)?)),
        (None, None) => None,
    };
    let method = if body.is_some() {
        Method::POST
    } else {
        Method::GET
    };
    let request = || {
        let mut req = Request::builder().method(method.clone());
        req = if h2 {
            req.uri(uri.clone()) // HTTP/2 wants the full URI (:authority, :scheme)
        } else {
            req.uri(path).header(hyper::header::HOST, host)
        };
        req.body(Full::new(body.clone().unwrap_or_default()))
    };
    if h2 {
        let (mut sender, conn) = http2::Builder::new(CorioExecutor)
            .timer(CorioTimer)
            .handshake(io)
            .await?;
        corio::spawn(conn);
        for _ in 0..args.repeat {
            let res = sender.send_request(request()?).await?;
            print_response(res, args.include).await?;
        }
    } else {
        let (mut sender, conn) = http1::handshake(io).await?;
        corio::spawn(conn);
        for _ in 0..args.repeat {
            sender.ready().await?;
            let res = sender.send_request(request()?).await?;
            print_response(res, args.include).await?;
        }
    }
    Ok(())
}

async fn print_response(
    res: hyper::Response<hyper::body::Incoming>,
    headers: bool,
) -> Result<(), BoxError> {
    let mut out = io::stdout().lock();
    writeln!(out, "{:?} {}", res.version(), res.status())?;
    if headers {
        for (name, value) in res.headers() {
            writeln!(out, "{name}: {}", value.to_str().unwrap_or("<binary>"))?;
        }
        writeln!(out)?;
    }
    let mut body = res.into_body();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            out.write_all(data)?;
        }
    }
    out.flush()?;
    Ok(())
}

struct Args {
    url: String,
    data: Option<String>,
    data_file: Option<String>,
    ca: Option<String>,
    http2: bool,
    include: bool,
    repeat: usize,
}

impl Args {
    fn parse() -> Args {
        let usage = || -> ! {
            eprintln!(
                "usage: hyper_client [--data TEXT | --data-file PATH] [--ca FILE] [--http2] [-i] \
                 [--repeat N] URL"
            );
            std::process::exit(2);
        };
        let mut out = Args {
            url: String::new(),
            data: None,
            data_file: None,
            ca: None,
            http2: false,
            include: false,
            repeat: 1,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| usage());
            match arg.as_str() {
                "--data" | "-d" => out.data = Some(value()),
                "--data-file" => out.data_file = Some(value()),
                "--ca" => out.ca = Some(value()),
                "--repeat" => out.repeat = value().parse().unwrap_or_else(|_| usage()),
                "--http2" => out.http2 = true,
                "-i" => out.include = true,
                a if a.starts_with('-') => usage(),
                _ => out.url = arg,
            }
        }
        if out.url.is_empty() {
            usage();
        }
        out
    }
}
