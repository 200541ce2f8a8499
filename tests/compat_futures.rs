//! `corio::compat` through the `futures-io` traits: echo, buffered reads and
//! `poll_close`, on both drivers.
#![cfg(feature = "futures-io")]

mod support;

use std::io::{Read, Write};
use std::thread;

use corio::compat::Compat;
use corio::net::TcpListener;
use futures_util::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

both_drivers! {
fn futures_io_echo_lines_and_close() {
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"alpha\nbeta\n").unwrap();
            c.shutdown(std::net::Shutdown::Write).unwrap();
            let mut back = String::new();
            c.read_to_string(&mut back).unwrap();
            back
        });
        let (s, _) = listener.accept().await.unwrap();
        let mut io = Compat::new(s);
        let mut line = String::new();
        let mut lines = Vec::new();
        while io.read_line(&mut line).await.unwrap() > 0 {
            lines.push(std::mem::take(&mut line));
        }
        assert_eq!(lines, ["alpha\n", "beta\n"]);
        for l in &lines {
            io.write_all(l.to_uppercase().as_bytes()).await.unwrap();
        }
        io.close().await.unwrap();
        let mut rest = Vec::new();
        assert_eq!(io.read_to_end(&mut rest).await.unwrap(), 0);
        assert_eq!(client.join().unwrap(), "ALPHA\nBETA\n");
    });
}
}
