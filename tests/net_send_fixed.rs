//! Zero-copy sends from registered buffers (`send_zc_fixed`,
//! `write_all_zc_fixed`): bytes arrive exactly, a dropped send keeps its
//! buffer until the kernel is done, and the plain fallbacks (SEND_ZC turned
//! off, the poll driver) send the same bytes.

mod support;

use std::time::{Duration, Instant};

use corio::IoBuf;
use corio::fs::FixedBufPool;
use corio::net::{TcpListener, TcpStream};
use corio::time::{sleep, timeout};

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (seed..seed + len)
        .map(|i| (i * 31 + i / 251) as u8)
        .collect()
}

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = corio::spawn(async move { listener.accept().await.unwrap().0 });
    let tx = TcpStream::connect(addr).await.unwrap();
    (tx, accept.await.unwrap())
}

/// Each size through `write_all_zc_fixed`, and a sub-range through
/// `send_zc_fixed`, arrives byte for byte.
async fn integrity() {
    let pool = FixedBufPool::new(2, 1 << 20).unwrap();
    // On io_uring the sends name the registered buffer by index.
    assert_eq!(
        pool.is_registered(),
        support::driver() == corio::DriverKind::Uring
    );
    let (tx, mut rx) = pair().await;
    for (n, len) in [1usize, 100, 4096, 65_537, 1 << 20].into_iter().enumerate() {
        let data = pattern(len, n);
        let mut buf = pool.get().unwrap();
        buf.extend_from_slice(&data);
        let reader = corio::spawn(async move {
            let (res, got) = rx.read_exact(Vec::with_capacity(len)).await;
            res.unwrap();
            (rx, got)
        });
        let (res, buf) = tx.write_all_zc_fixed(buf).await;
        res.unwrap();
        assert_eq!(buf.len(), len, "the buffer comes back whole");
        let (r, got) = reader.await.unwrap();
        assert!(got == data, "{len} bytes arrived intact");
        rx = r;
        // A sub-range that does not start at the buffer's start.
        let (res, slice) = tx.send_zc_fixed(buf.slice(len / 2..)).await;
        let sent = res.unwrap();
        assert!(sent >= 1 && sent <= len - len / 2 || len == 1 && sent == 0);
        let (res, got) = rx.read_exact(Vec::with_capacity(sent)).await;
        res.unwrap();
        assert_eq!(&got[..], &data[len / 2..len / 2 + sent]);
        drop(slice);
    }
    assert_eq!(pool.available(), 2);
}

both_drivers! {
fn write_all_zc_fixed_delivers_every_size_intact() {
    let _serial = support::serial();
    support::run(integrity());
}
}

both_drivers! {
fn send_zc_fixed_falls_back_when_send_zc_is_turned_off() {
    let _serial = support::serial();
    let rt = support::builder().disable_opcodes(["SEND_ZC"]).build().unwrap();
    rt.block_on(integrity());
}
}

both_drivers! {
fn a_dropped_write_all_zc_fixed_keeps_its_buffer_until_the_kernel_is_done() {
    let _serial = support::serial();
    support::run(async {
        let pool = FixedBufPool::new(1, 8 << 20).unwrap();
        let (tx, rx) = pair().await;
        let data = pattern(8 << 20, 7);
        let mut buf = pool.get().unwrap();
        buf.extend_from_slice(&data);
        // Nobody reads yet: the send cannot finish, and is dropped.
        let r = timeout(Duration::from_millis(50), tx.write_all_zc_fixed(buf)).await;
        assert!(r.is_err(), "8 MiB cannot fit in an unread socket");
        if support::driver() == corio::DriverKind::Uring {
            // On io_uring the kernel may still read it; the poll driver's
            // send(2) copied what it took, so the buffer is back at once.
            assert_eq!(pool.available(), 0, "the driver holds the buffer");
        }
        // Drain what was sent: the kernel finishes and the buffer returns.
        let reader = corio::spawn(async move {
            let mut total = 0;
            loop {
                let (res, _) = rx.read(vec![0u8; 1 << 16]).await;
                match res {
                    Ok(0) | Err(_) => return total,
                    Ok(n) => total += n,
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.available() == 0 {
            assert!(Instant::now() < deadline, "the buffer never came back");
            sleep(Duration::from_millis(2)).await;
        }
        // The buffer is whole and reusable.
        let mut again = pool.get().unwrap();
        again.clear();
        drop(tx);
        let sent = reader.await.unwrap();
        assert!(sent > 0 && sent <= data.len());
    });
}
}
