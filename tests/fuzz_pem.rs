//! Fuzzing the PEM loaders (`corio::tls::{certs_from_pem,
//! private_key_from_pem}` and, now and then, their file versions): mutated
//! certificates, keys and chains never make them panic, and every failure is
//! an `InvalidData` error.
//!
//! `CORIO_FUZZ_SECS=600 cargo test --test fuzz_pem` for a long run.
#![cfg(feature = "tls")]

mod fuzz_support;
mod support;
mod tls_support;

use std::io::ErrorKind;
use std::time::Duration;

use corio::tls::{certs_from_pem, load_certs, load_private_key, private_key_from_pem};

fn corpus() -> Vec<Vec<u8>> {
    let pki = tls_support::pki();
    let leaf = &pki.localhost;
    let chain = format!("{}{}", leaf.cert_pem, pki.ca_pem);
    let both = format!("{}\n{}", leaf.key_pem, leaf.cert_pem);
    // An RSA PKCS#1 and an EC (SEC1) header around the PKCS#8 body: the
    // body does not match, the parser must say so.
    let rsa = leaf.key_pem.replace("PRIVATE KEY", "RSA PRIVATE KEY");
    let ec = leaf.key_pem.replace("PRIVATE KEY", "EC PRIVATE KEY");
    [
        leaf.cert_pem.clone(),
        leaf.key_pem.clone(),
        chain,
        both,
        rsa,
        ec,
        format!("junk before\n{}junk after\n", pki.a.cert_pem),
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_string(),
        String::new(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

fn check(input: &[u8]) {
    for res in [
        certs_from_pem(input).map(drop),
        private_key_from_pem(input).map(drop),
    ] {
        if let Err(e) = res {
            assert_eq!(e.kind(), ErrorKind::InvalidData, "{e:?}");
        }
    }
}

/// Inputs that once failed (none so far), run first.
const REGRESSIONS: &[&str] = &[];

#[test]
fn the_pem_loaders_survive_mutated_input() {
    for r in REGRESSIONS {
        check(&fuzz_support::unhex(r));
    }
    let corpus = corpus();
    assert_eq!(
        certs_from_pem(&corpus[2]).unwrap().len(),
        2,
        "the chain parses"
    );
    assert!(private_key_from_pem(&corpus[1]).is_ok(), "the key parses");
    let dir = tls_support::TempDir::new();
    let mut files = 0u32;
    let n = fuzz_support::run("pem", &corpus, 64 * 1024, Duration::from_secs(2), |input| {
        check(input);
        // The file loaders share the parser; one input in 64 goes through
        // them too.
        files += 1;
        if files.is_multiple_of(64) {
            let path = dir.file("fuzz.pem", input);
            for res in [
                load_certs(&path).map(drop),
                load_private_key(&path).map(drop),
            ] {
                if let Err(e) = res {
                    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e:?}");
                }
            }
        }
    });
    assert!(n > 1_000, "only {n} inputs ran");
}
