//! glommio: one `LocalExecutor` (Placement::Unbound: it keeps the affinity the suite set).

use std::io;
use std::net::{Shutdown, TcpListener as StdListener};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::io::BufferedFile;
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement};

use super::{App, BLOCK, ECHO_BUF, ReadSpec, check_read};
use crate::{app, http};

fn executor() -> io::Result<glommio::LocalExecutor> {
    LocalExecutorBuilder::new(Placement::Unbound)
        .make()
        .map_err(io::Error::from)
}

pub fn serve(app: App, listener: StdListener) -> io::Result<()> {
    executor()?.run(async move {
        // SAFETY: the fd comes from a listening socket this function owns.
        let listener = unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) };
        loop {
            let stream = listener.accept().await.map_err(io::Error::from)?;
            match app {
                App::Echo => glommio::spawn_local(echo(stream)).detach(),
                App::Http => glommio::spawn_local(http(stream)).detach(),
            };
        }
    })
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
            let _ = stream.shutdown(Shutdown::Write).await;
            return;
        }
        input.copy_within(step.parsed..filled, 0);
        filled -= step.parsed;
    }
}

/// Buffered (page cache) reads: `BufferedFile::read_at`, which hands back a
/// buffer it allocates per read.
pub fn fileread(spec: ReadSpec, qd: usize) -> io::Result<u64> {
    executor()?.run(async move {
        let file = Rc::new(
            BufferedFile::open(&spec.path)
                .await
                .map_err(io::Error::from)?,
        );
        let mut tasks = Vec::with_capacity(qd);
        for t in 0..qd {
            let file = file.clone();
            let positions = spec.positions(t);
            tasks.push(glommio::spawn_local(async move {
                let mut n = 0u64;
                for pos in positions {
                    let res = file.read_at(pos, BLOCK).await.map_err(io::Error::from);
                    check_read(res.map(|r| r.len()))?;
                    n += 1;
                }
                Ok::<u64, io::Error>(n)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await?;
        }
        Ok(total)
    })
}
