//! `TcpStream::send_file`: ranges of a file to a socket (splice through a
//! pipe on io_uring, sendfile(2) elsewhere), short files, offsets past the
//! end, the forced fallback, dropped futures.

mod fs_util;
mod support;

use std::io;
use std::time::Duration;

use corio::fs::File;
use corio::net::{TcpListener, TcpStream};
use corio::time::timeout;
use fs_util::TempDir;
use support::{builder, open_fds, serial, watchdog};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 509) as u8).collect()
}

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = corio::spawn(async move { listener.accept().await.unwrap().0 });
    let tx = TcpStream::connect(addr).await.unwrap();
    (tx, accept.await.unwrap())
}

/// Reads until EOF (bounded: 64 MiB).
async fn read_to_end(s: &TcpStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < 64 << 20 {
        let (res, buf) = s.read(Vec::with_capacity(256 << 10)).await;
        match res? {
            0 => return Ok(out),
            _ => out.extend_from_slice(&buf),
        }
    }
    Ok(out)
}

/// Sends each (offset, len) of a 3 MiB + 5 B file on its own connection and
/// checks the bytes and counts.
async fn ranges(dir: &TempDir) {
    let data = pattern((3 << 20) + 5);
    let path = dir.path().join("f");
    std::fs::write(&path, &data).unwrap();
    let file = File::open(&path).await.unwrap();
    let size = data.len() as u64;
    let cases = [
        (0, 1),
        (0, 100),
        (1, 65_536),
        (12_345, 1 << 20),
        (0, size),
        (size - 10, 10),
        (size - 10, 1 << 20), // EOF before len
        (size, 100),          // at EOF
        (size + 4096, 100),   // past EOF
        (0, 0),
    ];
    for (off, len) in cases {
        let (tx, rx) = pair().await;
        let reader = corio::spawn(async move { read_to_end(&rx).await.unwrap() });
        let sent = tx.send_file(&file, off, len).await.unwrap();
        drop(tx);
        let got = reader.await.unwrap();
        let start = (off as usize).min(data.len());
        let end = (off + len).min(size) as usize;
        let want = &data[start..end.max(start)];
        assert_eq!(sent, want.len() as u64, "count for ({off}, {len})");
        assert!(got == want, "bytes for ({off}, {len})");
    }
}

both_drivers! {
    fn send_file_sends_every_range_intact() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "send_file ranges");
        let dir = TempDir::new("send-file");
        support::run(ranges(&dir));
    }
}

both_drivers! {
    fn send_file_falls_back_to_sendfile_when_splice_is_off() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "send_file fallback");
        let dir = TempDir::new("send-file-off");
        let rt = builder().disable_opcodes(["SPLICE"]).build().unwrap();
        rt.block_on(ranges(&dir));
    }
}

both_drivers! {
    fn send_file_refuses_offsets_past_i64_max() {
        let _serial = serial();
        let dir = TempDir::new("send-file-bad");
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        support::run(async {
            let file = File::open(&path).await.unwrap();
            let (tx, _rx) = pair().await;
            let err = tx.send_file(&file, u64::MAX - 1, 10).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        });
    }
}

both_drivers! {
    fn a_dropped_send_file_leaks_nothing_and_the_pipe_is_not_reused_dirty() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "dropped send_file");
        let dir = TempDir::new("send-file-drop");
        let data = pattern(8 << 20);
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        let base = open_fds();
        support::run(async {
            let file = File::open(&path).await.unwrap();
            for _ in 0..10 {
                let (tx, rx) = pair().await;
                // The peer does not read yet: the send stalls and is dropped.
                let _ = timeout(Duration::from_millis(2), tx.send_file(&file, 0, 8 << 20)).await;
                drop((tx, rx));
            }
            // A later send through a (possibly reused) pipe is exact.
            let (tx, rx) = pair().await;
            let reader = corio::spawn(async move { read_to_end(&rx).await.unwrap() });
            assert_eq!(tx.send_file(&file, 100, 1000).await.unwrap(), 1000);
            drop(tx);
            assert!(reader.await.unwrap() == data[100..1100]);
        });
        assert!(open_fds() <= base, "fds leaked: {base} then {}", open_fds());
    }
}

both_drivers! {
    fn send_file_works_on_a_socket_in_nonblocking_mode() {
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "send_file nonblocking");
        let dir = TempDir::new("send-file-nb");
        let data = pattern(2 << 20);
        let path = dir.path().join("f");
        std::fs::write(&path, &data).unwrap();
        support::run(async {
            let file = File::open(&path).await.unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let std_tx = std::net::TcpStream::connect(addr).unwrap();
            std_tx.set_nonblocking(true).unwrap();
            let tx = TcpStream::from_std(std_tx);
            let (rx, _) = listener.accept().await.unwrap();
            let reader = corio::spawn(async move { read_to_end(&rx).await.unwrap() });
            assert_eq!(tx.send_file(&file, 0, 2 << 20).await.unwrap(), 2 << 20);
            drop(tx);
            assert!(reader.await.unwrap() == data);
        });
    }
}
