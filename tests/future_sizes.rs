//! The sizes of the futures an idle connection holds, printed (run with
//! `--nocapture`) and bounded, so a change that grows them is seen: every
//! byte of a task's future is memory per idle connection.

use std::mem::size_of_val;

use corio::net::{TcpListener, TcpStream};

/// The natural echo task on pooled receives, as a user writes it.
async fn echo(stream: TcpStream) {
    while let Ok(Some(data)) = stream.recv_pooled().await {
        if stream.write_all(data).await.0.is_err() {
            return;
        }
    }
}

#[test]
fn futures_an_idle_connection_holds_stay_small() {
    corio::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let read = size_of_val(&s.read(vec![0u8; 16]));
        let write_all = size_of_val(&s.write_all(vec![0u8; 16]));
        let recv_pooled = size_of_val(&s.recv_pooled());
        let accept = size_of_val(&listener.accept());
        let task = size_of_val(&echo(s));
        let sizes = [
            ("read", read),
            ("write_all", write_all),
            ("recv_pooled", recv_pooled),
            ("accept", accept),
            ("pooled echo task", task),
        ];
        for (what, size) in sizes {
            println!("{what:>17}: {size} bytes");
        }
        drop(client);
        // Bounds a little above today's sizes: growth past them is a
        // regression to look at (or a bound to raise, with a reason).
        let bound = |what: &str| match what {
            "read" => 72,
            "write_all" => 112,
            "recv_pooled" => 88,
            "accept" => 144,
            _ => 176,
        };
        for (what, size) in sizes {
            assert!(size <= bound(what), "{what} future grew to {size} bytes");
        }
    });
}
