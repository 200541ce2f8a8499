//! tokio: current-thread (one per listener when several) and multi-thread.

use std::io;
use std::net::TcpListener as StdListener;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{App, BLOCK, ECHO_BUF, ReadSpec, check_read};
use crate::{app, http};

/// One current-thread runtime on this thread.
pub fn serve(app: App, listener: StdListener) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        accept_loop(app, TcpListener::from_std(listener)?).await
    })
}

/// The multi-thread runtime with `threads` workers, accepting on the first listener.
pub fn serve_mt(app: App, listeners: Vec<StdListener>, threads: usize) -> io::Result<()> {
    let listener = listeners.into_iter().next().expect("a listener");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        accept_loop(app, TcpListener::from_std(listener)?).await
    })
}

async fn accept_loop(app: App, listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        match app {
            App::Echo => tokio::spawn(echo(stream)),
            App::Http => tokio::spawn(http(stream)),
        };
    }
}

async fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn http(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut input = vec![0u8; 2 * http::MAX_HEAD];
    let mut filled = 0;
    let mut output = Vec::with_capacity(4096);
    loop {
        match stream.read(&mut input[filled..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let step = app::answer(&input[..filled], &mut output);
        if !output.is_empty() {
            let res = stream.write_all(&output).await;
            output.clear();
            if res.is_err() {
                return;
            }
        }
        if step.close {
            let _ = stream.shutdown().await;
            return;
        }
        input.copy_within(step.parsed..filled, 0);
        filled -= step.parsed;
    }
}

/// tokio has no positional file read: each read is a `spawn_blocking(pread)`,
/// which is also how `tokio::fs` works inside.
pub fn fileread(spec: ReadSpec, qd: usize) -> io::Result<u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let file = Arc::new(std::fs::File::open(&spec.path)?);
        let mut tasks = Vec::with_capacity(qd);
        for t in 0..qd {
            let file = file.clone();
            let positions = spec.positions(t);
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                let mut buf = vec![0u8; BLOCK];
                for pos in positions {
                    let f = file.clone();
                    let (res, b) = tokio::task::spawn_blocking(move || {
                        let res = f.read_at(&mut buf, pos);
                        (res, buf)
                    })
                    .await
                    .map_err(io::Error::other)?;
                    buf = b;
                    check_read(res)?;
                    n += 1;
                }
                Ok::<u64, io::Error>(n)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.map_err(io::Error::other)??;
        }
        Ok(total)
    })
}
