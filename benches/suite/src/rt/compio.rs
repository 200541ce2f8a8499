//! compio on its io_uring driver.

use std::io;
use std::net::TcpListener as StdListener;
use std::rc::Rc;

use compio::BufResult;
use compio::buf::{IntoInner, IoBuf};
use compio::io::{AsyncRead, AsyncReadAt, AsyncWrite, AsyncWriteExt};
use compio::net::{TcpListener, TcpStream};

use super::{App, BLOCK, ECHO_BUF, ReadSpec, check_read};
use crate::{app, http};

pub fn serve(app: App, listener: StdListener) -> io::Result<()> {
    compio::runtime::Runtime::new()?.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        loop {
            let (stream, _) = listener.accept().await?;
            match app {
                App::Echo => compio::runtime::spawn(echo(stream)).detach(),
                App::Http => compio::runtime::spawn(http(stream)).detach(),
            }
        }
    })
}

async fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(ECHO_BUF);
    loop {
        let BufResult(res, b) = stream.read(buf).await;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {} // the read set b's length
        }
        let BufResult(res, b) = stream.write_all(b).await;
        buf = b;
        if res.is_err() {
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
        let BufResult(res, slice) = stream.read(input.slice(filled..)).await;
        input = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let step = app::answer(&input[..filled], &mut output);
        if !output.is_empty() {
            let BufResult(res, buf) = stream.write_all(output).await;
            output = buf;
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

pub fn fileread(spec: ReadSpec, qd: usize) -> io::Result<u64> {
    compio::runtime::Runtime::new()?.block_on(async move {
        let file = Rc::new(compio::fs::File::open(&spec.path).await?);
        let mut tasks = Vec::with_capacity(qd);
        for t in 0..qd {
            let file = file.clone();
            let positions = spec.positions(t);
            tasks.push(compio::runtime::spawn(async move {
                let mut n = 0u64;
                let mut buf = Vec::with_capacity(BLOCK);
                for pos in positions {
                    let BufResult(res, b) = file.read_at(buf, pos).await;
                    buf = b;
                    check_read(res)?;
                    n += 1;
                }
                Ok::<u64, io::Error>(n)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.map_err(|e| io::Error::other(format!("{e:?}")))??;
        }
        Ok(total)
    })
}
