//! The sizes of the futures an idle connection holds, printed (run with
//! `--nocapture`) and bounded, so a change that grows them is seen: every
//! byte of a task's future is memory per idle connection. The file ops'
//! and `nop`'s sizes are checked the same way.

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
            "recv_pooled" => 72,
            "accept" => 144,
            _ => 176,
        };
        for (what, size) in sizes {
            assert!(size <= bound(what), "{what} future grew to {size} bytes");
        }
    });
}

#[test]
fn file_op_futures_are_the_ops_own() {
    let path = std::env::temp_dir().join(format!("corio-sizes-{}", std::process::id()));
    std::fs::write(&path, b"x").unwrap();
    corio::run(async {
        let file = corio::fs::File::open(&path).await.unwrap();
        let read_at = size_of_val(&file.read_at(vec![0u8; 16], 0));
        let write_at = size_of_val(&file.write_at(vec![0u8; 16], 0));
        let sync = size_of_val(&file.sync_data());
        let nop = size_of_val(&corio::nop());
        // The methods return the op's future itself (an `async fn` around
        // it made read_at 136 bytes, sync_data 56, nop 40).
        let sizes = [
            ("read_at", read_at, 96),
            ("write_at", write_at, 96),
            ("sync_data", sync, 48),
            ("nop", nop, 32),
        ];
        for (what, size, _) in sizes {
            println!("{what:>17}: {size} bytes");
        }
        for (what, size, bound) in sizes {
            assert!(size <= bound, "{what} future grew to {size} bytes");
        }
    });
    std::fs::remove_file(&path).unwrap();
}
