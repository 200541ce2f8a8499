//! corio::io over TLS streams (both drivers): a line protocol through
//! `BufReader` and `BufWriter` on `TlsStream`, and `copy` between TLS and TCP.
#![cfg(feature = "tls")]

mod support;
mod tls_support;

use std::time::Duration;

use corio::io::{BufReader, BufWriter, OwnedWrite, copy};
use corio::net::{TcpListener, TcpStream};
use corio::time::timeout;
use corio::tls::{TlsAcceptor, TlsConnector};
use tls_support::{ANY_VERSION, client_config, server_config};

const GUARD: Duration = Duration::from_secs(10);

both_drivers! {
fn lines_over_tls() {
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &[]));
        let server = corio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let tls = acceptor.accept(tcp).await.unwrap();
            // Upper-cases each line until the client closes.
            let mut conn = BufReader::new(tls).with_max_line_length(100);
            let mut line = String::new();
            let mut n = 0;
            while conn.read_line(&mut line).await.unwrap() != 0 {
                conn.write_all(line.to_uppercase().into_bytes()).await.0.unwrap();
                line.clear();
                n += 1;
            }
            conn.shutdown().await.unwrap();
            n
        });
        let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connector.connect("localhost", tcp).await.unwrap();
        let mut out = BufWriter::new(tls);
        for i in 0..50 {
            out.write_all(format!("line {i}\n").into_bytes()).await.0.unwrap();
        }
        out.shutdown().await.unwrap(); // flush, close_notify, FIN
        let mut lines = BufReader::new(out.into_inner()).lines();
        let mut got = Vec::new();
        while let Some(l) = timeout(GUARD, lines.next_line()).await.unwrap().unwrap() {
            got.push(l);
        }
        let want: Vec<_> = (0..50).map(|i| format!("LINE {i}")).collect();
        assert_eq!(got, want);
        assert_eq!(timeout(GUARD, server).await.unwrap().unwrap(), 50);
    });
}
}

both_drivers! {
fn copy_from_tls_to_tcp() {
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(server_config(ANY_VERSION, &[]));
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sender = {
            let data = data.clone();
            corio::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                tls.write_all(data).await.0.unwrap();
                tls.shutdown().await.unwrap();
            })
        };
        let connector = TlsConnector::from(client_config(ANY_VERSION, &[]));
        let mut tls = connector
            .connect("localhost", TcpStream::connect(addr).await.unwrap())
            .await
            .unwrap();
        // Into a plain TCP pair: tls -> a ... b.
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let paddr = plain.local_addr().unwrap();
        let receiver = corio::spawn(async move {
            let (b, _) = plain.accept().await.unwrap();
            let mut r = BufReader::new(b);
            let mut all = Vec::new();
            loop {
                let chunk = r.fill_buf().await.unwrap();
                if chunk.is_empty() {
                    return all;
                }
                all.extend_from_slice(chunk);
                let n = chunk.len();
                r.consume(n);
            }
        });
        let mut a = TcpStream::connect(paddr).await.unwrap();
        let n = timeout(GUARD, copy(&mut tls, &mut a)).await.unwrap().unwrap();
        assert_eq!(n, data.len() as u64);
        OwnedWrite::shutdown(&mut a).await.unwrap();
        assert_eq!(timeout(GUARD, receiver).await.unwrap().unwrap(), data);
        sender.await.unwrap();
    });
}
}
