//! `TcpStream::read_timeout`: a linked LINK_TIMEOUT on io_uring, a timer
//! race elsewhere (and with the opcode turned off). Timeouts with no data,
//! data before the deadline, data at the deadline (never lost), dropped
//! futures.

mod support;

use std::io::ErrorKind;
use std::time::Duration;

use corio::net::{TcpListener, TcpStream};
use corio::time::{sleep, timeout};
use support::{builder, open_fds, serial, watchdog};

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accept = corio::spawn(async move { listener.accept().await.unwrap().0 });
    let a = TcpStream::connect(addr).await.unwrap();
    (a, accept.await.unwrap())
}

const LONG: Duration = Duration::from_secs(10);

/// Times out with no data, stays usable, and returns data sent before the
/// deadline.
async fn basics() {
    let (a, b) = pair().await;
    let (res, buf) = a
        .read_timeout(Vec::with_capacity(64), Duration::from_millis(20))
        .await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::TimedOut);
    assert_eq!(buf.capacity(), 64, "the buffer comes back");
    assert!(buf.is_empty());

    b.write_all(b"late".as_slice()).await.0.unwrap();
    let (res, buf) = a.read_timeout(buf, LONG).await;
    assert_eq!(&buf[..res.unwrap()], b"late", "the socket still works");

    // Sent later, within the deadline.
    let writer = corio::spawn(async move {
        sleep(Duration::from_millis(5)).await;
        b.write_all(b"soon".as_slice()).await.0.unwrap();
        b
    });
    let (res, buf) = a.read_timeout(Vec::with_capacity(64), LONG).await;
    assert_eq!(&buf[..res.unwrap()], b"soon");
    let b = writer.await.unwrap();

    // EOF within the deadline is Ok(0).
    drop(b);
    let (res, _) = a.read_timeout(Vec::with_capacity(8), LONG).await;
    assert_eq!(res.unwrap(), 0);
}

/// Data sent right around the deadline is returned exactly once: by the
/// timed read, or by the next read.
async fn at_the_deadline() {
    let (a, b) = pair().await;
    let b = std::rc::Rc::new(b);
    let mut got = Vec::new();
    let rounds = 40u8;
    for i in 0..rounds {
        let b2 = b.clone();
        let w = corio::spawn(async move {
            sleep(Duration::from_millis(1)).await;
            b2.write_all(vec![i]).await.0.unwrap();
        });
        let (res, buf) = a
            .read_timeout(Vec::with_capacity(1), Duration::from_millis(1))
            .await;
        match res {
            Ok(1) => got.push(buf[0]),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                let (res, buf) = timeout(LONG, a.read(Vec::with_capacity(1)))
                    .await
                    .expect("the byte sent at the deadline is still there");
                assert_eq!(res.unwrap(), 1);
                got.push(buf[0]);
            }
            other => panic!("unexpected {other:?}"),
        }
        w.await.unwrap();
    }
    assert_eq!(
        got,
        (0..rounds).collect::<Vec<_>>(),
        "every byte once, in order"
    );
}

both_drivers! {
    fn read_timeout_times_out_and_returns_data() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "read_timeout basics");
        support::run(basics());
    }
}

both_drivers! {
    fn read_timeout_loses_nothing_at_the_deadline() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "read_timeout at the deadline");
        support::run(at_the_deadline());
    }
}

both_drivers! {
    fn read_timeout_with_a_user_space_timer_when_link_timeout_is_off() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "read_timeout fallback");
        let rt = builder().disable_opcodes(["LINK_TIMEOUT"]).build().unwrap();
        rt.block_on(basics());
        let rt = builder().disable_opcodes(["LINK_TIMEOUT"]).build().unwrap();
        rt.block_on(at_the_deadline());
    }
}

both_drivers! {
    fn a_dropped_read_timeout_loses_no_data_and_leaks_nothing() {
        // Every test here takes the lock: one of them counts fds.
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "dropped read_timeout");
        let base = open_fds();
        support::run(async {
            let (a, b) = pair().await;
            for i in 0..200u32 {
                // Dropped by an outer timeout before its own deadline.
                let r = timeout(
                    Duration::from_micros(200),
                    a.read_timeout(Vec::with_capacity(4), LONG),
                )
                .await;
                assert!(r.is_err(), "no data was sent yet");
                b.write_all(i.to_le_bytes().to_vec()).await.0.unwrap();
                let (res, buf) = a.read_exact(Vec::with_capacity(4)).await;
                res.unwrap();
                assert_eq!(buf, i.to_le_bytes(), "round {i}");
            }
        });
        assert!(open_fds() <= base, "fds leaked: {base} then {}", open_fds());
    }
}

#[test]
fn on_io_uring_the_deadline_is_one_sqe_pair() {
    let _serial = serial();
    let Some(rt) = support::uring_runtime() else {
        return;
    };
    rt.block_on(async {
        let (a, _b) = pair().await;
        let before = corio::runtime::stats();
        let (res, _) = a
            .read_timeout(Vec::with_capacity(8), Duration::from_millis(5))
            .await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::TimedOut);
        // Let the timeout's own completion in.
        sleep(Duration::from_millis(5)).await;
        let d = corio::runtime::stats().since(&before);
        assert!(d.sqes_submitted >= 2, "{d:?}");
        assert_eq!(d.cancels, 0, "no ASYNC_CANCEL: the kernel's deadline");
    });
}

both_drivers! {
    fn read_timeout_times_out_on_a_socket_in_nonblocking_mode() {
        let _serial = serial();
        let _dog = watchdog(Duration::from_secs(60), "read_timeout nonblocking");
        let on = support::runtime();
        let off = builder().disable_opcodes(["LINK_TIMEOUT"]).build().unwrap();
        for rt in [on, off] {
            rt.block_on(nonblocking());
        }
    }
}

/// A read with a timeout on a socket handed in with `O_NONBLOCK`: where it
/// says `EAGAIN` (the poll driver; io_uring on kernels that pass it on) the
/// readiness wait is bounded by the deadline too.
async fn nonblocking() {
    {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let std_a = std::net::TcpStream::connect(addr).unwrap();
        std_a.set_nonblocking(true).unwrap();
        let a = TcpStream::from_std(std_a);
        let (b, _) = listener.accept().await.unwrap();
        let (res, buf) = a
            .read_timeout(Vec::with_capacity(8), Duration::from_millis(20))
            .await;
        assert_eq!(res.unwrap_err().kind(), ErrorKind::TimedOut);
        b.write_all(b"x".as_slice()).await.0.unwrap();
        let (res, buf) = a.read_timeout(buf, LONG).await;
        assert_eq!(&buf[..res.unwrap()], b"x");
    }
}
