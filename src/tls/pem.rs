//! Loading certificates and private keys from PEM files or bytes.
//!
//! How it works: rustls-pki-types (re-exported by rustls) parses the PEM
//! sections; its errors become `io::Error`s (`InvalidData`, or the file's
//! own error, such as `NotFound`, with the path in the message). The files
//! are read with blocking calls: load them before serving, not in a task.

use std::io;
use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Reads every certificate in the PEM file at `path` (a chain: the server's
/// own certificate first). Fails with `InvalidData` if it holds none.
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error(e, path.display()))?;
    if certs.is_empty() {
        return Err(pem_error(pem::Error::NoItemsFound, path.display()));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 RSA or SEC1 EC) in the PEM
/// file at `path`. Fails with `InvalidData` if it holds none.
pub fn load_private_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(e, path.display()))
}

/// Parses every certificate in PEM text. Fails with `InvalidData` if it
/// holds none.
pub fn certs_from_pem(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e, "PEM data"))?;
    if certs.is_empty() {
        return Err(pem_error(pem::Error::NoItemsFound, "PEM data"));
    }
    Ok(certs)
}

/// Parses the first private key in PEM text.
pub fn private_key_from_pem(pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| pem_error(e, "PEM data"))
}

fn pem_error(e: pem::Error, source: impl std::fmt::Display) -> io::Error {
    match e {
        pem::Error::Io(e) => io::Error::new(e.kind(), format!("{source}: {e}")),
        pem::Error::NoItemsFound => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{source}: no certificate or key of the expected kind found"),
        ),
        e => io::Error::new(io::ErrorKind::InvalidData, format!("{source}: {e}")),
    }
}
