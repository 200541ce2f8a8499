//! `--tls`: HTTPS through `corio::tls` (rustls, ring provider).
//!
//! The certificate comes from `--cert`/`--key` (PEM files), or is made at
//! start: self-signed for `localhost` and 127.0.0.1, its PEM written to a temp
//! file whose path is printed (clients can trust it). The handshake runs in
//! each connection's own task, then the same request loop as plain HTTP runs
//! over the TLS stream.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use corio::net::TcpStream;
use corio::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use corio::tls::{self, TlsAcceptor, TlsStream, rustls};
use corio::{BufResult, IoBuf, IoBufMut};

use super::{Conn, LINGER};

/// The acceptor for `--tls`, with the certificate from `cert`/`key` or a
/// fresh self-signed one.
pub fn acceptor(cert: Option<&str>, key: Option<&str>) -> io::Result<TlsAcceptor> {
    let (certs, key) = match (cert, key) {
        (Some(cert), Some(key)) => (tls::load_certs(cert)?, tls::load_private_key(key)?),
        _ => self_signed()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn self_signed() -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let path = std::env::temp_dir().join(format!("corio-http-{}.pem", std::process::id()));
    std::fs::write(&path, cert.pem())?;
    println!("self-signed certificate for localhost: {}", path.display());
    let key = PrivateKeyDer::try_from(signing_key.serialize_der()).map_err(io::Error::other)?;
    Ok((vec![cert.der().clone()], key))
}

/// Runs the handshake, then serves HTTP over the session.
pub async fn serve(acceptor: TlsAcceptor, stream: TcpStream) {
    if let Ok(tls) = acceptor.accept(stream).await {
        super::serve(tls).await;
    }
}

impl Conn for TlsStream<TcpStream> {
    async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        TlsStream::read(self, buf).await
    }

    async fn write_all<B: IoBuf>(&mut self, buf: B) -> BufResult<(), B> {
        TlsStream::write_all(self, buf).await
    }

    /// Sends `close_notify` and FIN, then reads and drops what the client
    /// still sends, for at most `LINGER` (see `linger_close`).
    async fn close(mut self, mut buf: Vec<u8>) {
        if self.shutdown().await.is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        loop {
            match corio::time::timeout_at(deadline, self.read(buf)).await {
                Ok((Ok(n), b)) if n > 0 => buf = b,
                _ => return, // close_notify, end of file, error or time is up
            }
        }
    }
}
