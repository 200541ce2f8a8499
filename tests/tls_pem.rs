//! Loading PEM certificates and keys with `corio::tls`: files and bytes, every key format, and the errors.
#![cfg(feature = "tls")]

mod tls_support;

use std::io;

use corio::tls::rustls::pki_types::PrivateKeyDer;
use corio::tls::{self, certs_from_pem, private_key_from_pem};
use tls_support::{TempDir, openssl, pki};

#[test]
fn chain_and_pkcs8_key_from_files() {
    let p = pki();
    let dir = TempDir::new();
    let chain = dir.file("chain.pem", format!("{}{}", p.localhost.cert_pem, p.ca_pem));
    let key = dir.file("key.pem", &p.localhost.key_pem);
    let certs = tls::load_certs(&chain).unwrap();
    assert_eq!(certs, vec![p.localhost.cert.clone(), p.ca.clone()]);
    match tls::load_private_key(&key).unwrap() {
        PrivateKeyDer::Pkcs8(k) => assert_eq!(k.secret_pkcs8_der(), p.localhost.key_der),
        other => panic!("expected PKCS#8, got {other:?}"),
    }
}

#[test]
fn from_bytes() {
    let p = pki();
    let certs = certs_from_pem(p.a.cert_pem.as_bytes()).unwrap();
    assert_eq!(certs, vec![p.a.cert.clone()]);
    let key = private_key_from_pem(p.a.key_pem.as_bytes()).unwrap();
    assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    // Text around the sections is skipped, as in a bundle with comments.
    let noisy = format!("# a comment\n{}\ntrailing words\n", p.b.cert_pem);
    assert_eq!(
        certs_from_pem(noisy.as_bytes()).unwrap(),
        vec![p.b.cert.clone()]
    );
}

#[test]
fn sec1_ec_key_from_openssl() {
    let dir = TempDir::new();
    let path = dir.path().join("ec.key");
    let status = openssl()
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("BEGIN EC PRIVATE KEY")
    );
    let key = tls::load_private_key(&path).unwrap();
    assert!(matches!(key, PrivateKeyDer::Sec1(_)), "{key:?}");
}

#[test]
fn missing_file_is_not_found_with_its_path() {
    let dir = TempDir::new();
    let path = dir.path().join("nope.pem");
    for err in [
        tls::load_certs(&path).unwrap_err(),
        tls::load_private_key(&path).unwrap_err(),
    ] {
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }
}

#[test]
fn wrong_or_empty_contents_are_invalid_data() {
    let p = pki();
    let dir = TempDir::new();
    let key_only = dir.file("key.pem", &p.a.key_pem);
    let cert_only = dir.file("cert.pem", &p.a.cert_pem);
    let empty = dir.file("empty.pem", "");
    let mut bad = p.a.cert_pem.clone();
    bad.insert_str(bad.find('\n').unwrap() + 1, "!!not base64!!\n");
    let corrupt = dir.file("corrupt.pem", bad);
    let truncated = dir.file("cut.pem", &p.a.cert_pem[..p.a.cert_pem.len() / 2]);

    let errors = [
        tls::load_certs(&key_only).unwrap_err(),
        tls::load_certs(&empty).unwrap_err(),
        tls::load_certs(&corrupt).unwrap_err(),
        tls::load_certs(&truncated).unwrap_err(),
        tls::load_private_key(&cert_only).unwrap_err(),
        tls::load_private_key(&empty).unwrap_err(),
        certs_from_pem(b"not pem at all").unwrap_err(),
        private_key_from_pem(b"").unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }
    let err = tls::load_certs(&key_only).unwrap_err();
    assert!(err.to_string().contains("key.pem"), "{err}");
}
