//! WebSocket echo server on tokio-tungstenite over `corio::compat`:
//! `cargo run --example websocket_echo --features tokio-io`.
//!
//! Each connection runs the WebSocket handshake, then echoes text and binary
//! messages; pings are answered with pongs and a close frame with the
//! closing handshake (tungstenite does both). A connection that sends
//! something that is not WebSocket (a bad frame, a frame over 16 MiB) is
//! closed; the others go on. tokio-tungstenite needs only tokio's I/O
//! traits, which `Compat<TcpStream>` implements, not tokio's runtime.
//!
//! Try it with any WebSocket client, e.g. `websocat ws://127.0.0.1:9002/`.

use std::io;
use std::time::Duration;

use corio::compat::Compat;
use corio::net::{TcpListener, TcpStream};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn main() -> io::Result<()> {
    let mut addr = "127.0.0.1:9002".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(a)) => addr = a,
            _ => {
                eprintln!("usage: websocket_echo [--addr HOST:PORT] (default 127.0.0.1:9002)");
                std::process::exit(2);
            }
        }
    }
    corio::run(async move {
        let listener = TcpListener::bind(&addr)?;
        println!("listening on ws://{}", listener.local_addr()?);
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    corio::spawn(async move {
                        if let Err(e) = echo(stream).await {
                            eprintln!("connection closed: {e}");
                        }
                    });
                }
                Err(e) => {
                    // Out of fds, say: wait a little rather than spin.
                    eprintln!("accept failed: {e}");
                    corio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

/// Runs the handshake, then echoes every data message until the client
/// closes (or breaks the protocol).
async fn echo(stream: TcpStream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let mut ws = tokio_tungstenite::accept_async(Compat::new(stream)).await?;
    // After the client's close frame, the next read sends the reply (the
    // closing handshake) and the stream ends.
    while let Some(msg) = ws.next().await {
        match msg? {
            msg @ (Message::Text(_) | Message::Binary(_)) => ws.send(msg).await?,
            // Pongs to pings are sent by tungstenite.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_) => {}
        }
    }
    Ok(())
}
