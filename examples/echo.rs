//! TCP echo server: `cargo run --example echo -- --addr 127.0.0.1:9000`.
//!
//! Try it with `nc 127.0.0.1 9000`: every line you type comes back.
//! `--stats` prints the runtime's counters once a second; the ring and
//! executor knobs (`--coop off`, `--spin 50`, ...) are listed by `--help`.

#[path = "common/knobs.rs"]
mod knobs;

use std::io;
use std::time::Duration;

use corio::net::{TcpListener, TcpStream};

/// First pause after a failed accept; it doubles on each failure in a row.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause after a failed accept.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

fn main() -> io::Result<()> {
    let (addr, knobs) = args("127.0.0.1:9000");
    let rt = knobs.apply(corio::Builder::new()).build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&addr)?;
        println!("listening on {}", listener.local_addr()?);
        if knobs.stats {
            knobs::spawn_stats(String::new());
        }

        let mut backoff = MIN_BACKOFF;
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => {
                    backoff = MIN_BACKOFF;
                    // Each connection is its own task; dropping the handle detaches it.
                    corio::spawn(echo(stream));
                }
                // Out of fds or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or any
                // other error: retrying at once would spin, so wait a little.
                Err(e) => {
                    eprintln!("accept failed: {e}; retrying in {backoff:?}");
                    corio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    })
}

/// Sends back everything the peer sends, until it closes the connection.
async fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Each receive gets a buffer from the runtime's pool only when data
    // arrives, and that buffer goes straight back out: an idle connection
    // holds no buffer at all. The buffer returns to the pool once written.
    loop {
        let data = match stream.recv_pooled().await {
            Ok(Some(data)) => data,
            Ok(None) | Err(_) => return, // closed by the peer, or reset
        };
        // Boxed: a task is as big as its largest state, and the write state
        // is the larger one; boxing it keeps each idle connection's task
        // small (a few hundred bytes in all, with 19,000 of them).
        if Box::pin(stream.write_all(data)).await.0.is_err() {
            return;
        }
    }
}

/// The value of `--addr HOST:PORT` (or `--addr=HOST:PORT`), else `default`,
/// and the runtime knobs.
fn args(default: &str) -> (String, knobs::Knobs) {
    let mut addr = default.to_string();
    let mut knobs = knobs::Knobs::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--addr=") {
            Some(a) => Some(a.to_string()),
            None if arg == "--addr" => args.next(),
            None => match knobs.parse(&arg, &mut || args.next()) {
                Ok(true) => continue,
                Ok(false) => None,
                Err(e) => {
                    eprintln!("echo: {e}");
                    None
                }
            },
        };
        match value {
            Some(a) => addr = a,
            None => {
                eprintln!(
                    "usage: echo [--addr HOST:PORT] {}   (default {default})",
                    knobs::USAGE
                );
                std::process::exit(2);
            }
        }
    }
    (addr, knobs)
}
