//! Passing fds over Unix sockets (`SCM_RIGHTS`): a pipe's end through a
//! stream, a datagram and split halves; fds received for dropped futures,
//! truncated control data and dropped sends leak nothing; sockets leak
//! nothing when dropped with operations pending.

mod support;

use std::future::Future;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use corio::net::{UnixDatagram, UnixListener, UnixStream};
use corio::time::{sleep, timeout};
use support::{open_fds, serial};

const GUARD: Duration = Duration::from_secs(5);

/// Waits up to 5 s for the fd count to fall to `want` (closes may go
/// through the ring) and fails if it does not.
async fn assert_fds_settle(want: usize) {
    let deadline = Instant::now() + GUARD;
    loop {
        let n = open_fds();
        if n <= want {
            return;
        }
        assert!(Instant::now() < deadline, "fds leaked: {want} then {n}");
        sleep(Duration::from_millis(2)).await;
    }
}

/// Polls `fut` once; `None` (and the future dropped) if it was pending.
fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

fn is_cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: F_GETFD on an fd we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    flags >= 0 && flags & libc::FD_CLOEXEC != 0
}

/// Writes `msg` through the received write end of a pipe and reads it from
/// the read end we kept.
fn through_the_pipe(write_end: OwnedFd, mut read_end: io::PipeReader, msg: &[u8]) {
    let mut w = std::fs::File::from(write_end);
    w.write_all(msg).unwrap();
    drop(w);
    let mut got = Vec::new();
    read_end.read_to_end(&mut got).unwrap();
    assert_eq!(got, msg);
}

both_drivers! {
fn a_pipe_end_goes_through_a_stream() {
    // Every test here takes the lock: some count the process's fds.
    let _serial = serial();
    support::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (reader, writer) = io::pipe().unwrap();
        let (res, _) = a.send_with_fds(b"pipe".as_slice(), &[writer.as_fd()]).await;
        assert_eq!(res.unwrap(), 4);
        // The send had its own copy: ours may go at once.
        drop(writer);
        let (res, buf) = timeout(GUARD, b.recv_with_fds(vec![0u8; 16], 4)).await.unwrap();
        let (n, mut fds) = res.unwrap();
        assert_eq!(&buf[..n], b"pipe");
        assert_eq!(fds.len(), 1);
        assert!(is_cloexec(&fds[0]), "received fds are close-on-exec");
        through_the_pipe(fds.pop().unwrap(), reader, b"written through a passed fd");

        // Several fds in one message, then plain bytes: each read stops
        // after the bytes that carried fds.
        let files: Vec<std::fs::File> =
            (0..3).map(|_| std::fs::File::open("/dev/null").unwrap()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        a.send_with_fds(b"three".as_slice(), &borrowed).await.0.unwrap();
        a.write_all(b" and more".as_slice()).await.0.unwrap();
        let (res, buf) = timeout(GUARD, b.recv_with_fds(vec![0u8; 64], 8)).await.unwrap();
        let (n, fds) = res.unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"three"[..], 3));
        let (res, buf) = timeout(GUARD, b.recv_with_fds(vec![0u8; 64], 8)).await.unwrap();
        let (n, fds) = res.unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b" and more"[..], 0));
        // The end of the stream.
        drop(a);
        let (res, _) = timeout(GUARD, b.recv_with_fds(vec![0u8; 64], 8)).await.unwrap();
        assert_eq!(res.unwrap().0, 0);
    });
}
}

both_drivers! {
fn fds_go_through_datagrams_and_halves() {
    // Every test here takes the lock: some count the process's fds.
    let _serial = serial();
    support::run(async {
        let (a, b) = UnixDatagram::pair().unwrap();
        let (reader, writer) = io::pipe().unwrap();
        // An empty datagram may carry fds.
        a.send_with_fds(Vec::new(), &[writer.as_fd()]).await.0.unwrap();
        drop(writer);
        let (res, _) = timeout(GUARD, b.recv_with_fds(vec![0u8; 16], 1)).await.unwrap();
        let (n, mut fds) = res.unwrap();
        assert_eq!((n, fds.len()), (0, 1));
        through_the_pipe(fds.pop().unwrap(), reader, b"datagram");

        let (s, t) = UnixStream::pair().unwrap();
        let (_sr, sw) = s.into_split();
        let (tr, _tw) = t.into_split();
        let (reader, writer) = io::pipe().unwrap();
        sw.send_with_fds(b"half".as_slice(), &[writer.as_fd()]).await.0.unwrap();
        drop(writer);
        let (res, _) = timeout(GUARD, tr.recv_with_fds(vec![0u8; 16], 1)).await.unwrap();
        let (_, mut fds) = res.unwrap();
        through_the_pipe(fds.pop().unwrap(), reader, b"halves");
    });
}
}

both_drivers! {
fn fds_for_dropped_receives_are_closed_and_their_bytes_kept() {
    let _serial = serial();
    support::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let files: Vec<std::fs::File> =
            (0..2).map(|_| std::fs::File::open("/dev/null").unwrap()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        let base = open_fds();
        let (mut closed, mut delivered) = (0, 0);
        for i in 0..500u32 {
            let msg = i.to_le_bytes();
            {
                // In the kernel (or waiting for readiness) when the fds come,
                // then dropped.
                let mut recv = Box::pin(b.recv_with_fds(vec![0u8; 16], 4));
                let polled = recv.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                assert!(polled.is_pending(), "nothing was sent yet");
                corio::yield_now().await;
                a.send_with_fds(msg.to_vec(), &borrowed).await.0.unwrap();
                corio::yield_now().await;
            }
            // The next receive gets the bytes: with the fds if the dropped
            // one never took them, without them if it did (they were closed).
            let (res, buf) = timeout(GUARD, b.recv_with_fds(vec![0u8; 16], 4)).await.unwrap();
            let (n, fds) = res.unwrap();
            assert_eq!(&buf[..n], msg, "bytes lost or out of order");
            match fds.len() {
                0 => closed += 1,
                2 => delivered += 1,
                k => panic!("{k} fds of 2"),
            }
            drop(fds);
            assert_fds_settle(base).await;
        }
        println!("fds closed for dropped receives: {closed}, delivered to the next: {delivered}");
        if support::driver() == corio::DriverKind::Uring && support::uring_available() {
            assert!(closed > 0, "no receive was dropped after the kernel gave it fds");
        }
    });
}
}

both_drivers! {
fn truncated_fds_fail_and_keep_the_bytes() {
    let _serial = serial();
    support::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let base = open_fds();
        {
            let files: Vec<std::fs::File> =
                (0..3).map(|_| std::fs::File::open("/dev/null").unwrap()).collect();
            let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
            a.send_with_fds(b"with three".as_slice(), &borrowed).await.0.unwrap();
            a.send_with_fds(b"again".as_slice(), &borrowed).await.0.unwrap();
        }
        // Room for one fd of three: an error, the fds closed, the bytes kept.
        let (res, _) = timeout(GUARD, b.recv_with_fds(vec![0u8; 64], 1)).await.unwrap();
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidData);
        let (res, buf) = timeout(GUARD, b.read(vec![0u8; 64])).await.unwrap();
        assert_eq!(&buf[..res.unwrap()], b"with three");
        // No room at all.
        let (res, _) = timeout(GUARD, b.recv_with_fds(vec![0u8; 64], 0)).await.unwrap();
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidData);
        let (res, buf) = timeout(GUARD, b.recv_with_fds(vec![0u8; 64], 3)).await.unwrap();
        let (n, fds) = res.unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"again"[..], 0));
        assert_fds_settle(base).await;
    });
}
}

both_drivers! {
fn bad_fd_input_is_refused() {
    // Every test here takes the lock: some count the process's fds.
    let _serial = serial();
    support::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        // A stream carries fds only with bytes.
        let (res, _) = a.send_with_fds(Vec::new(), &[f.as_fd()]).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        // More than SCM_MAX_FD.
        let many = vec![f.as_fd(); 254];
        let (res, buf) = a.send_with_fds(b"x".as_slice(), &many).await;
        assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(buf, b"x", "the buffer comes back");
        // 253 is fine.
        let most = vec![f.as_fd(); 253];
        a.send_with_fds(b"y".as_slice(), &most).await.0.unwrap();
        let (res, _) = timeout(GUARD, b.recv_with_fds(vec![0u8; 8], 1000)).await.unwrap();
        assert_eq!(res.unwrap().1.len(), 253);
        // An fd that is not open.
        // SAFETY: the number is only passed to the kernel, which checks it.
        let closed = unsafe { BorrowedFd::borrow_raw(100_000) };
        let (res, _) = a.send_with_fds(b"z".as_slice(), &[closed]).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
    });
}
}

both_drivers! {
fn dropped_sends_with_fds_leak_nothing() {
    let _serial = serial();
    support::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let base = open_fds();
        let mut sent = 0;
        for _ in 0..300 {
            let f = std::fs::File::open("/dev/null").unwrap();
            // Polled once and dropped: the send's own copy of the fd stays
            // open until the kernel is done with it.
            if poll_once(a.send_with_fds(b"s".as_slice(), &[f.as_fd()])).is_some() {
                sent += 1;
            }
            drop(f);
            corio::yield_now().await;
        }
        drop(a);
        // Whatever arrived is received and closed.
        loop {
            let (res, _) = timeout(GUARD, b.recv_with_fds(vec![0u8; 64], 253)).await.unwrap();
            if res.unwrap().0 == 0 {
                break;
            }
        }
        drop(b);
        println!("{sent} sends finished at their first poll");
        assert_fds_settle(base - 2).await;
    });
}
}

both_drivers! {
fn sockets_dropped_with_operations_pending_leak_nothing() {
    let _serial = serial();
    // Its own name: both variants run on the poll driver where io_uring
    // is missing.
    let dir = std::env::temp_dir().join(format!(
        "corio-unix-fds-{}-{}",
        std::process::id(),
        std::thread::current().name().unwrap_or("main").replace("::", "-")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let base = open_fds();
    support::run(async {
        let path = dir.join("l.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let mut kept = Vec::new();
        for _ in 0..20 {
            let c = UnixStream::connect(&path).await.unwrap();
            let (s, _) = listener.accept().await.unwrap();
            c.write_all(b"unread".as_slice()).await.0.unwrap();
            kept.push((c, s));
        }
        // Reads and accepts in flight, dropped with their sockets.
        for (c, s) in &kept {
            let _ = poll_once(c.recv_with_fds(vec![0u8; 8], 2));
            let _ = poll_once(s.recv_pooled());
        }
        // Fds sent to the reads just dropped: on io_uring those reads may
        // take them in the kernel; their release (or the next read) closes them.
        let f = std::fs::File::open("/dev/null").unwrap();
        for (_, s) in &kept {
            s.send_with_fds(b"f".as_slice(), &[f.as_fd()]).await.0.unwrap();
        }
        drop(f);
        let _ = poll_once(listener.accept());
        let mut incoming = listener.incoming();
        let _ = poll_once(incoming.next());
        let (d1, d2) = UnixDatagram::pair().unwrap();
        let _ = poll_once(d1.recv_pooled());
        let _ = poll_once(d2.recv_from(vec![0u8; 8]));
        corio::yield_now().await;
        drop((kept, listener, d1, d2));
        corio::yield_now().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
    // The runtime is gone: everything it owned is closed.
    let after = open_fds();
    assert!(after <= base, "fds leaked: {base} then {after}");
}
}

both_drivers! {
fn plain_reads_past_fds_get_the_bytes_queued_behind_them() {
    // Every test here takes the lock: some count the process's fds.
    let _serial = serial();
    support::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        for pooled in [false, true] {
            // The socket's readiness is known (a read waited) before the
            // messages come: no fresh edge is due when the first read ends.
            let _ = timeout(Duration::from_millis(10), b.read(vec![0u8; 8])).await;
            a.write_all(b"one".as_slice()).await.0.unwrap();
            a.send_with_fds(b"two".as_slice(), &[f.as_fd()]).await.0.unwrap();
            a.write_all(b"three".as_slice()).await.0.unwrap();
            sleep(Duration::from_millis(5)).await;
            // A plain read closes the fds and stops after "two"; the next
            // must still find "three", with nothing more sent.
            let mut got = Vec::new();
            while got.len() < 11 {
                let next = async {
                    if pooled {
                        b.recv_pooled().await.unwrap().unwrap().to_vec()
                    } else {
                        let (res, buf) = b.read(vec![0u8; 64]).await;
                        buf[..res.unwrap()].to_vec()
                    }
                };
                let data = timeout(GUARD, next)
                    .await
                    .expect("a read waited for data already queued");
                got.extend_from_slice(&data);
            }
            assert_eq!(got, b"onetwothree");
        }
    });
}
}
