//! Unix echo server: `cargo run --example unix_echo -- --path /tmp/corio-echo.sock`.
//!
//! Try it with `nc -U /tmp/corio-echo.sock` (or `socat - UNIX-CONNECT:/tmp/corio-echo.sock`):
//! every line you type comes back. Without `--path` it listens on
//! `corio-unix-echo.sock` in the temp directory.
//!
//! A socket file outlives its server (killed, say), and binding over it
//! fails with `AddrInUse`. corio never removes such a file by itself; this
//! example removes it only once it has shown the file is stale: it is a
//! socket and connecting to it is refused (no server behind it). It says
//! so, then listens. A live server at the path, or a file that is not a
//! socket, is left alone and the example exits with an error.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use corio::net::{UnixListener, UnixStream};

/// First pause after a failed accept; it doubles on each failure in a row.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause after a failed accept.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

fn main() {
    let path = args();
    let res: io::Result<()> = corio::run(async move {
        let listener = bind(&path).await?;
        println!("listening on {}", path.display());
        let mut backoff = MIN_BACKOFF;
        loop {
            match listener.accept().await {
                Ok((stream, _peer)) => {
                    backoff = MIN_BACKOFF;
                    corio::spawn(echo(stream));
                }
                // Out of fds or memory: retrying at once would spin.
                Err(e) => {
                    eprintln!("accept failed: {e}; retrying in {backoff:?}");
                    corio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    });
    if let Err(e) = res {
        eprintln!("unix_echo: {e}");
        std::process::exit(1);
    }
}

/// Binds `path`, removing a socket file there only if it is provably stale.
async fn bind(path: &Path) -> io::Result<UnixListener> {
    match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
        other => return other,
    }
    let is_socket = std::fs::symlink_metadata(path)?.file_type().is_socket();
    if !is_socket {
        let msg = format!(
            "{} exists and is not a socket; not touching it",
            path.display()
        );
        return Err(io::Error::new(io::ErrorKind::AddrInUse, msg));
    }
    match UnixStream::connect(path).await {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            // Nobody listens: the file is stale. (A server starting at this
            // very moment could race us; then one of the two binds fails.)
            std::fs::remove_file(path)?;
            println!(
                "removed stale socket file {} (connecting was refused)",
                path.display()
            );
            UnixListener::bind(path)
        }
        // A server killed a moment ago may still accept: the kernel tears
        // its io_uring (and the accept it holds) down after it exits.
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another server is listening on {} (or one that just died is still closing)",
                path.display()
            ),
        )),
        Err(e) => Err(e),
    }
}

/// Sends back everything the peer sends, until it closes the connection.
async fn echo(stream: UnixStream) {
    // A pool buffer is taken only when data arrives, and given back once
    // written: an idle connection holds none.
    loop {
        let data = match stream.recv_pooled().await {
            Ok(Some(data)) => data,
            Ok(None) | Err(_) => return,
        };
        if stream.write_all(data).await.0.is_err() {
            return;
        }
    }
}

/// The value of `--path PATH` (or `--path=PATH`), else the default.
fn args() -> PathBuf {
    let mut path = std::env::temp_dir().join("corio-unix-echo.sock");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--path=") {
            Some(p) => Some(p.to_string()),
            None if arg == "--path" => args.next(),
            None => None,
        };
        match value {
            Some(p) => path = PathBuf::from(p),
            None => {
                eprintln!(
                    "usage: unix_echo [--path PATH]   (default {})",
                    path.display()
                );
                std::process::exit(2);
            }
        }
    }
    path
}
