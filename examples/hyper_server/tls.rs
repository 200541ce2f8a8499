//! `--tls`: HTTPS through `corio::tls`, HTTP/2 or HTTP/1.1 picked by ALPN.
//!
//! The certificate comes from `--cert`/`--key` (PEM files), or is made at
//! start: self-signed for `localhost` and 127.0.0.1, its PEM written to a temp
//! file whose path is printed (`hyper_client --ca PATH` trusts it).

use std::io;
use std::sync::Arc;

use corio::tls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use corio::tls::{self, TlsAcceptor, rustls};

/// The acceptor, offering `h2` and `http/1.1`.
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
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn self_signed() -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
    let path = std::env::temp_dir().join(format!("corio-hyper-{}.pem", std::process::id()));
    std::fs::write(&path, cert.pem())?;
    println!("self-signed certificate for localhost: {}", path.display());
    let key = PrivateKeyDer::try_from(signing_key.serialize_der()).map_err(io::Error::other)?;
    Ok((vec![cert.der().clone()], key))
}
