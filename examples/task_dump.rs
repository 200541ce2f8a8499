//! Task dumps on SIGUSR1: `cargo run --example task_dump`, then
//! `kill -USR1 <pid>` (the pid is printed) to see every live task: where it
//! was spawned, how long it has been idle, and the op it waits on.
//!
//! The tasks here wait on a TCP read that never gets data, a long sleep and
//! a channel nobody sends on: the kinds of hang a dump helps find. The
//! runtime is built with `track_tasks(true)`, which records idle times and
//! ops. It exits after the first dump (or after 60 s without one).

use std::time::Duration;

use corio::net::TcpListener;
use corio::signal::{SignalKind, signal};

fn main() -> std::io::Result<()> {
    let rt = corio::Builder::new().track_tasks(true).build()?;
    rt.block_on(async {
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let _client = std::net::TcpStream::connect(addr)?;
        let (stream, _) = listener.accept().await?;
        let (_tx, rx) = corio::sync::oneshot::channel::<()>();

        let reader = corio::spawn(async move { stream.read(vec![0u8; 64]).await.0 });
        let sleeper = corio::spawn(corio::time::sleep(Duration::from_secs(3600)));
        let waiter = corio::spawn(async move { rx.await.is_ok() });

        println!(
            "pid {}: send SIGUSR1 for a task dump (kill -USR1 {})",
            std::process::id(),
            std::process::id()
        );
        let got = corio::time::timeout(Duration::from_secs(60), usr1.recv()).await;
        if got.is_ok() {
            print!("{}", corio::runtime::task_dump());
        } else {
            println!("no SIGUSR1 within 60 s");
        }
        reader.abort();
        sleeper.abort();
        waiter.abort();
        Ok(())
    })
}
