//! tokio-uring (io_uring ops driven from a tokio current-thread runtime).

use std::io;
use std::net::{Shutdown, TcpListener as StdListener};
use std::rc::Rc;

use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

use super::{App, BLOCK, ECHO_BUF, ReadSpec, check_read};
use crate::{app, http};

pub fn serve(app: App, listener: StdListener) -> io::Result<()> {
    tokio_uring::builder().entries(1024).start(async move {
        let listener = TcpListener::from_std(listener);
        loop {
            let (stream, _) = listener.accept().await?;
            match app {
                App::Echo => drop(tokio_uring::spawn(echo(stream))),
                App::Http => drop(tokio_uring::spawn(http(stream))),
            }
        }
    })
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

async fn http(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut input = vec![0u8; 2 * http::MAX_HEAD];
    let mut filled = 0;
    let mut output = Vec::with_capacity(4096);
    loop {
        let (res, slice) = stream.read(input.slice(filled..)).await;
        input = slice.into_inner();
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
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
        input.copy_within(step.parsed..filled, 0);
        filled -= step.parsed;
    }
}

pub fn fileread(spec: ReadSpec, qd: usize) -> io::Result<u64> {
    tokio_uring::builder().entries(1024).start(async move {
        let file = Rc::new(tokio_uring::fs::File::open(&spec.path).await?);
        let mut tasks = Vec::with_capacity(qd);
        for t in 0..qd {
            let file = file.clone();
            let positions = spec.positions(t);
            tasks.push(tokio_uring::spawn(async move {
                let mut n = 0u64;
                let mut buf = vec![0u8; BLOCK];
                for pos in positions {
                    let (res, b) = file.read_at(buf, pos).await;
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
