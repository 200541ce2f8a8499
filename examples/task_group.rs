//! asyncio-style structured concurrency: a `TaskGroup` of clients, each with
//! a request id in a `ContextVar`, each round trip under a timeout.
//!
//! `cargo run --example task_group [-- CLIENTS]` starts a small echo server
//! task on 127.0.0.1, then runs CLIENTS (default 20) client tasks in a group.
//! Every client tags its message with the request id it finds in its
//! context (set by the loop that spawned it), waits at most a second for the
//! echo, and the results are printed as the tasks finish. One client in ten
//! asks for a message the server never answers, to show the timeout.

use std::io;
use std::time::Duration;

use corio::net::{TcpListener, TcpStream};
use corio::time::timeout;
use corio::{ContextVar, IoBuf, TaskGroup};

/// The id of the request the current task serves; inherited by tasks it spawns.
static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");

/// Echoes each line back; a line `silent` gets no answer.
async fn serve(listener: TcpListener) {
    let mut conns = TaskGroup::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        conns.spawn(async move {
            let mut buf = Vec::with_capacity(256);
            loop {
                let (res, b) = stream.read(buf).await;
                buf = b;
                match res {
                    Ok(0) | Err(_) => return,
                    Ok(_) if buf.starts_with(b"silent") => {}
                    Ok(n) => {
                        let (res, b) = stream.write_all(buf.slice(..n)).await;
                        buf = b.into_inner();
                        if res.is_err() {
                            return;
                        }
                    }
                }
                buf.clear();
            }
        });
        // Finished connections leave the group as they end.
        while conns.try_join_next().is_some() {}
    }
}

/// One client round trip, tagged with the task's request id.
async fn client(addr: std::net::SocketAddr) -> io::Result<String> {
    let id = REQUEST_ID.get().expect("spawned with a request id");
    let stream = TcpStream::connect(addr).await?;
    let msg = if id % 10 == 9 {
        "silent\n".to_string()
    } else {
        format!("hello from request {id}\n")
    };
    stream.write_all(msg.into_bytes()).await.0?;
    let read = timeout(Duration::from_secs(1), stream.read(vec![0u8; 256]));
    let (res, buf) = read.await.map_err(io::Error::from)?;
    let n = res?;
    Ok(String::from_utf8_lossy(&buf[..n]).trim_end().to_string())
}

fn main() -> io::Result<()> {
    let clients: u32 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("CLIENTS: {e}")))?,
        None => 20,
    };
    corio::run(async move {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = corio::spawn(serve(listener));

        let mut group = TaskGroup::new();
        for id in 0..clients {
            REQUEST_ID.set(id); // the task spawned next starts with this value
            group.spawn(async move { (id, client(addr).await) });
        }
        REQUEST_ID.remove();

        let (mut answered, mut timed_out) = (0, 0);
        while let Some(joined) = group.join_next().await {
            let (id, res) = joined.map_err(io::Error::from)?;
            match res {
                Ok(echo) => {
                    answered += 1;
                    println!("request {id}: {echo}");
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    timed_out += 1;
                    println!("request {id}: timed out");
                }
                Err(e) => return Err(e),
            }
        }
        println!("{answered} of {clients} answered, {timed_out} timed out");
        server.abort();
        Ok(())
    })
}
