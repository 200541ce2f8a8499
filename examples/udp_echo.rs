//! UDP echo server: `cargo run --example udp_echo -- --addr 127.0.0.1:9001`.
//!
//! Try it with `nc -u 127.0.0.1 9001`: every line you type comes back.

use std::io;

use corio::IoBuf;
use corio::net::UdpSocket;

fn main() -> io::Result<()> {
    let addr = addr_arg("127.0.0.1:9001");
    corio::run(async move {
        let socket = UdpSocket::bind(&addr)?;
        println!("listening on udp://{}", socket.local_addr()?);

        // One buffer, big enough for any datagram: each receive hands it to
        // the kernel and gets it back, each send returns it again.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let (res, b) = socket.recv_from(buf).await;
            let (n, peer) = match res {
                Ok(received) => received,
                Err(e) => {
                    eprintln!("recv_from failed: {e}");
                    buf = b;
                    continue;
                }
            };
            // Send back only the `n` bytes received.
            let (res, slice) = socket.send_to(b.slice(..n), peer).await;
            buf = slice.into_inner();
            if let Err(e) = res {
                eprintln!("send_to {peer} failed: {e}");
            }
        }
    })
}

/// The value of `--addr HOST:PORT` (or `--addr=HOST:PORT`), else `default`.
fn addr_arg(default: &str) -> String {
    let mut addr = default.to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--addr=") {
            Some(a) => Some(a.to_string()),
            None if arg == "--addr" => args.next(),
            None => None,
        };
        match value {
            Some(a) => addr = a,
            None => {
                eprintln!("usage: udp_echo [--addr HOST:PORT]   (default {default})");
                std::process::exit(2);
            }
        }
    }
    addr
}
