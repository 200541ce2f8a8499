//! corio: io_uring or poll driver, owned-buffer reads or pooled receives
//! (`recv_pooled`: multishot recv into the driver's provided-buffer ring);
//! several listeners run as pinned shards.

use std::io;
use std::net::{Shutdown, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::Mutex;

use corio::fs::{File, FixedBufPool};
use corio::net::{TcpListener, TcpStream};
use corio::{Builder, DriverKind, IoBuf};

use super::{App, BLOCK, ECHO_BUF, ReadSpec, check_read};
use crate::{app, http};

/// How a corio server receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// `read` into the connection's own buffer.
    Owned,
    /// `recv_pooled`: a lease of a pool buffer per receive.
    Pooled,
}

/// A builder for `kind` with the optional io_uring features named in
/// `CORIO_BENCH_DISABLE` (comma-separated `Builder::disable_opcodes` names,
/// e.g. `RECV_BUNDLE,PBUF_RING_INC`) turned off, to count them.
fn builder(kind: DriverKind) -> Builder {
    let off = std::env::var("CORIO_BENCH_DISABLE").unwrap_or_default();
    Builder::new()
        .driver(kind)
        .disable_opcodes(off.split(',').filter(|s| !s.is_empty()))
}

pub fn serve(
    kind: DriverKind,
    recv: Recv,
    app: App,
    listeners: Vec<StdListener>,
) -> io::Result<()> {
    if listeners.len() == 1 {
        let l = listeners.into_iter().next().expect("one listener");
        let rt = builder(kind).build()?;
        return rt.block_on(accept_loop(app, recv, TcpListener::from_std(l)));
    }
    let n = listeners.len();
    let listeners = Mutex::new(listeners.into_iter().map(Some).collect::<Vec<_>>());
    let results =
        builder(kind)
            .shards(n)
            .pin_cpus(true)
            .run(move |shard| {
                let l = listeners.lock().unwrap()[shard.index()].take();
                async move {
                    accept_loop(app, recv, TcpListener::from_std(l.expect("one per shard"))).await
                }
            })?;
    results.into_iter().collect()
}

async fn accept_loop(app: App, recv: Recv, listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        match (app, recv) {
            (App::Echo, Recv::Owned) => corio::spawn(echo(stream)),
            (App::Echo, Recv::Pooled) => corio::spawn(echo_pooled(stream)),
            (App::Http, Recv::Owned) => corio::spawn(http::<false>(stream)),
            (App::Http, Recv::Pooled) => corio::spawn(http::<true>(stream)),
        };
    }
}

/// Echo as `examples/echo.rs` does it: each lease goes straight back out.
async fn echo_pooled(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
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

async fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        let (res, b) = stream.read(buf).await;
        let n = match res {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let (res, slice) = stream.write_all(b.slice(..n)).await;
        buf = slice.into_inner();
        if res.is_err() {
            return;
        }
    }
}

/// The connection loop of `examples/http_server` (without its linger on
/// close), receiving with a plain read into `input[filled..]` or, with
/// `POOLED`, a pooled receive copied there (as the example does on its plain
/// path). One loop per mode, as the other runtimes' servers have theirs: a
/// mode chosen at run time would put a branch and a nested future into every
/// receive.
async fn http<const POOLED: bool>(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut input = vec![0u8; 2 * http::MAX_HEAD];
    let mut filled = 0;
    let mut output = Vec::with_capacity(4096);
    loop {
        let res = if POOLED {
            match stream.recv_pooled().await {
                Ok(None) => Ok(0),
                Err(e) => Err(e),
                Ok(Some(data)) => {
                    let n = data.len();
                    if filled + n > input.len() {
                        return;
                    }
                    input[filled..filled + n].copy_from_slice(&data);
                    Ok(n)
                }
            }
        } else {
            let (res, slice) = stream.read(input.slice(filled..)).await;
            input = slice.into_inner();
            res
        };
        match res {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let step = app::answer(&input[..filled], &mut output);
        if !output.is_empty() {
            let (res, buf) = stream.write_all(output).await;
            output = buf;
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

pub fn fileread(kind: DriverKind, fixed: bool, spec: ReadSpec, qd: usize) -> io::Result<u64> {
    let rt = Builder::new().driver(kind).build()?;
    rt.block_on(async move {
        let file = Rc::new(File::open(&spec.path).await?);
        let pool = if fixed {
            Some(FixedBufPool::new(qd, BLOCK)?)
        } else {
            None
        };
        let mut tasks = Vec::with_capacity(qd);
        for t in 0..qd {
            let file = file.clone();
            let positions = spec.positions(t);
            let fixed_buf = pool.as_ref().map(|p| p.get().expect("one buffer per task"));
            tasks.push(corio::spawn(async move {
                let mut n = 0u64;
                if let Some(mut buf) = fixed_buf {
                    for pos in positions {
                        let (res, b) = file.read_fixed_at(buf, pos).await;
                        buf = b;
                        check_read(res)?;
                        n += 1;
                    }
                } else {
                    let mut buf = vec![0u8; BLOCK];
                    for pos in positions {
                        let (res, b) = file.read_at(buf, pos).await;
                        buf = b;
                        check_read(res)?;
                        n += 1;
                    }
                }
                Ok::<u64, io::Error>(n)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.map_err(|e| io::Error::other(e.to_string()))??;
        }
        Ok(total)
    })
}
