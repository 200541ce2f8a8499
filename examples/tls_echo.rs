//! TLS echo server: `cargo run --example tls_echo -- [--addr 127.0.0.1:9443] [--cert C --key K]`.
//!
//! Without `--cert`/`--key` it makes a self-signed certificate for `localhost`
//! and 127.0.0.1 at start (and writes it to a temp file it names, for
//! clients that want to verify it). Try it with
//! `openssl s_client -connect 127.0.0.1:9443 -quiet`: every line comes back.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use corio::IoBuf;
use corio::net::{TcpListener, TcpStream};
use corio::tls::{self, TlsAcceptor, rustls};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// First pause after a failed accept; it doubles on each failure in a row.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause after a failed accept.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

fn main() -> io::Result<()> {
    let args = Args::parse();
    let (certs, key) = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => (tls::load_certs(cert)?, tls::load_private_key(key)?),
        _ => self_signed()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(io::Error::other)?;
    let acceptor = TlsAcceptor::from(Arc::new(config));

    corio::run(async move {
        let listener = TcpListener::bind(&args.addr)?;
        println!("listening on {} (TLS)", listener.local_addr()?);
        let mut backoff = MIN_BACKOFF;
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    backoff = MIN_BACKOFF;
                    // The handshake runs in the connection's own task, so a
                    // client that stalls in it delays no one else.
                    let acceptor = acceptor.clone();
                    corio::spawn(async move {
                        if let Err(e) = echo(&acceptor, stream).await {
                            eprintln!("{peer}: {e}");
                        }
                    });
                }
                Err(e) => {
                    eprintln!("accept failed: {e}; retrying in {backoff:?}");
                    corio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    })
}

/// Runs the handshake, then sends back everything the peer sends until it
/// closes the session; answers its `close_notify` with ours.
async fn echo(acceptor: &TlsAcceptor, stream: TcpStream) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut tls = acceptor.accept(stream).await?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (res, b) = tls.read(buf).await;
        let n = match res? {
            0 => break,
            n => n,
        };
        let (res, slice) = tls.write_all(b.slice(..n)).await;
        buf = slice.into_inner();
        res?;
    }
    tls.shutdown().await
}

/// A fresh self-signed certificate for `localhost` and 127.0.0.1; its PEM
/// is written to a temp file for clients that want to trust it.
fn self_signed() -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let path = std::env::temp_dir().join(format!("corio-tls-echo-{}.pem", std::process::id()));
    std::fs::write(&path, cert.pem())?;
    println!("self-signed certificate for localhost: {}", path.display());
    let key = PrivateKeyDer::try_from(signing_key.serialize_der()).map_err(io::Error::other)?;
    Ok((vec![cert.der().clone()], key))
}

/// Command-line options.
struct Args {
    addr: String,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl Args {
    fn parse() -> Args {
        let mut a = Args {
            addr: "127.0.0.1:9443".to_string(),
            cert: None,
            key: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (arg, None),
            };
            let value = inline.or_else(|| args.next());
            match (name.as_str(), value) {
                ("--addr", Some(v)) => a.addr = v,
                ("--cert", Some(v)) => a.cert = Some(v.into()),
                ("--key", Some(v)) => a.key = Some(v.into()),
                _ => usage(),
            }
        }
        if a.cert.is_some() != a.key.is_some() {
            usage();
        }
        a
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: tls_echo [--addr HOST:PORT] [--cert CERT.pem --key KEY.pem]\n\
         (default 127.0.0.1:9443 with a self-signed certificate)"
    );
    std::process::exit(2);
}
