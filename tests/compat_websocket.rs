//! The `websocket_echo` example (tokio-tungstenite over `corio::compat`)
//! with a tokio-tungstenite client on corio, on both drivers: the handshake,
//! 1,000 text and binary messages of 1 B to 1 MiB echoed byte-exact, ping
//! and pong, the closing handshake, and a garbage frame that closes its own
//! connection only.
#![cfg(all(feature = "tokio-io", feature = "hyper"))]

mod compat_support;
mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcp};
use std::time::Instant;

use compat_support::{Server, TIMEOUT};
use corio::compat::Compat;
use corio::net::TcpStream;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};

type Ws = WebSocketStream<Compat<TcpStream>>;

async fn connect(addr: SocketAddr) -> Ws {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}/");
    let (ws, res) = tokio_tungstenite::client_async(url, Compat::new(tcp))
        .await
        .unwrap();
    assert_eq!(res.status(), 101);
    ws
}

/// Size of message `i`: the frame-length encodings' edges, then a spread
/// up to 1 MiB (every 50th message 1 MiB).
fn size(i: usize) -> usize {
    const EDGES: [usize; 10] = [1, 2, 125, 126, 127, 65_535, 65_536, 65_537, 1 << 20, 0];
    match i {
        _ if i < 9 => EDGES[i],
        _ if i.is_multiple_of(50) || i == 999 => 1 << 20,
        _ => 1 + (i * 7919) % 20_000,
    }
}

fn message(i: usize) -> Message {
    let n = size(i);
    if i.is_multiple_of(2) {
        let text: String = (0..n)
            .map(|k| (b'a' + ((k + i) % 26) as u8) as char)
            .collect();
        Message::text(text)
    } else {
        Message::binary((0..n).map(|k| (k * 31 + i) as u8).collect::<Vec<u8>>())
    }
}

/// The next data or pong message (skips nothing else).
async fn next(ws: &mut Ws) -> Message {
    match corio::time::timeout(TIMEOUT, ws.next()).await {
        Ok(Some(Ok(m))) => m,
        other => panic!("no message: {other:?}"),
    }
}

both_drivers! {
fn handshake_thousand_messages_ping_and_close() {
    let server = Server::start("websocket_echo", &[]);
    let addr = server.addr;
    support::run(async move {
        let mut ws = connect(addr).await;
        let mut bytes = 0;
        for i in 0..1000 {
            let msg = message(i);
            bytes += msg.len();
            ws.send(msg.clone()).await.unwrap();
            let back = next(&mut ws).await;
            assert!(back == msg, "message {i} ({} bytes) not echoed byte-exact", msg.len());
        }
        assert!(bytes > 20 << 20, "{bytes}");
        ws.send(Message::Ping(Bytes::from_static(b"are you there"))).await.unwrap();
        assert_eq!(next(&mut ws).await, Message::Pong(Bytes::from_static(b"are you there")));
        ws.close(None).await.unwrap();
        // The server answers the close; then the stream ends.
        let mut saw_close = false;
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(_)) => saw_close = true,
                Ok(other) => panic!("after close: {other:?}"),
                Err(e) => panic!("closing handshake failed: {e}"),
            }
        }
        assert!(saw_close, "no close frame from the server");
    });
}
}

/// Runs the opening handshake by hand over a std socket.
fn raw_handshake(addr: SocketAddr) -> StdTcp {
    let mut c = StdTcp::connect(addr).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.write_all(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    c
}

both_drivers! {
fn a_garbage_frame_closes_that_connection_only() {
    let server = Server::start("websocket_echo", &[]);
    let addr = server.addr;
    support::run(async move {
        let mut good = connect(addr).await;
        good.send(Message::text("before")).await.unwrap();
        assert_eq!(next(&mut good).await, Message::text("before"));
        // Reserved bits and opcode set, unmasked: a protocol error.
        let mut bad = raw_handshake(addr);
        bad.write_all(&[0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let start = Instant::now();
        let mut rest = Vec::new();
        // Whatever the server sends (perhaps a close frame), it then closes.
        let ended = loop {
            let mut buf = [0u8; 256];
            match bad.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => rest.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(ended, "the garbage connection stayed open {:?}", start.elapsed());
        // The other connection is still served.
        for i in 0..10 {
            let msg = message(i);
            good.send(msg.clone()).await.unwrap();
            assert!(next(&mut good).await == msg);
        }
        good.close(None).await.unwrap();
    });
}
}
