//! Process-level faults: writes to a reset or closed peer fail with an error
//! and never raise `SIGPIPE`; a forked child that touches its parent's
//! runtime gets a clear panic while the parent runs on; a thousand runtimes
//! built and dropped leave no fd, thread or memory behind; registering
//! buffers under a 64 KiB `RLIMIT_MEMLOCK` gives a clear error or works.
//!
//! Each test runs in a child process of its own (it changes signal
//! dispositions or limits, forks, or counts the process's threads).

mod support;

use std::io::{self, ErrorKind};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream, UnixStream};
use corio::{Builder, Runtime};

const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

macro_rules! child_test {
    ($name:ident, $body:block) => {
        both_drivers! {
        fn $name() {
            if !support::is_child(stringify!($name)) {
                support::run_in_child(stringify!($name), CHILD_TIMEOUT);
                return;
            }
            $body
        }
        }
    };
}

/// Restores `SIGPIPE`'s default action (terminate): a write without
/// `MSG_NOSIGNAL` to a broken connection would kill this child.
fn default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler; this child runs only this test.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    assert_ne!(old, libc::SIG_ERR);
}

/// Writes with every method until one fails; returns the error.
async fn write_until_error<W>(mut write: W) -> io::Error
where
    W: AsyncWriteOnce,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    for round in 0u32.. {
        assert!(Instant::now() < deadline, "writes kept succeeding");
        if let Err(e) = write.once(round % 3).await {
            return e;
        }
        corio::time::sleep(Duration::from_millis(1)).await;
    }
    unreachable!()
}

/// `write`, `writev` or `write_all` of some bytes.
trait AsyncWriteOnce {
    async fn once(&mut self, how: u32) -> io::Result<()>;
}

impl AsyncWriteOnce for &TcpStream {
    async fn once(&mut self, how: u32) -> io::Result<()> {
        match how {
            0 => self.write(vec![1u8; 4096]).await.0.map(drop),
            1 => self
                .writev(vec![vec![2u8; 1024], vec![3u8; 512]])
                .await
                .0
                .map(drop),
            _ => self.write_all(vec![4u8; 8192]).await.0,
        }
    }
}

impl AsyncWriteOnce for &UnixStream {
    async fn once(&mut self, how: u32) -> io::Result<()> {
        match how {
            0 => self.write(vec![1u8; 4096]).await.0.map(drop),
            1 => self
                .writev(vec![vec![2u8; 1024], vec![3u8; 512]])
                .await
                .0
                .map(drop),
            _ => self.write_all(vec![4u8; 8192]).await.0,
        }
    }
}

child_test!(writes_to_a_reset_peer_fail_without_sigpipe, {
    default_sigpipe();
    support::run(async {
        for _ in 0..3 {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (peer, _) = listener.accept().await.unwrap();
            // SO_LINGER 0: closing sends a reset.
            socket2::SockRef::from(&peer)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(peer);
            let e = write_until_error(&c).await;
            assert!(
                matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
                "{e:?}"
            );
            // And every later write fails too, still without a signal.
            let e = (&c).once(0).await.unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
                "{e:?}"
            );
        }
    });
});

child_test!(writes_to_a_closed_unix_peer_fail_without_sigpipe, {
    default_sigpipe();
    support::run(async {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let e = write_until_error(&a).await;
        assert_eq!(e.raw_os_error(), Some(libc::EPIPE), "{e:?}");
        let (a, b) = UnixStream::pair().unwrap();
        let (_r, w) = a.into_split();
        drop(b);
        // On io_uring the close is batched with the tick's submit: an op
        // queued in the same tick may still run before it.
        corio::time::sleep(Duration::from_millis(1)).await;
        let e = w.write(vec![0u8; 10]).await.0.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e:?}");
    });
});

/// In the forked child: the parent's runtime refuses with a clear panic,
/// dropping it neither hangs nor touches the parent's queues, and a new
/// runtime works. Returns the child's exit code (0: all as expected).
fn forked_child(rt: Runtime) -> i32 {
    std::panic::set_hook(Box::new(|_| {}));
    let used = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async { corio::nop().await })
    }));
    let Err(panic) = used else { return 1 };
    let msg = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    if !msg.contains("forked child") || !msg.contains("Build a new runtime in the child") {
        return 2;
    }
    if catch_unwind(AssertUnwindSafe(move || drop(rt))).is_err() {
        return 3;
    }
    let fresh = support::runtime();
    if !fresh.block_on(async { corio::nop().await.is_ok() }) {
        return 4;
    }
    0
}

child_test!(a_forked_child_cannot_use_its_parents_runtime, {
    let rt = support::runtime();
    let listener = rt.block_on(async {
        corio::nop().await.unwrap();
        TcpListener::bind("127.0.0.1:0").unwrap()
    });
    let addr = listener.local_addr().unwrap();
    // An accept waits in the kernel (or the epoll set) while the process
    // forks.
    // The handle leaves `block_on` on purpose, to be awaited after the fork.
    #[allow(clippy::async_yields_async)]
    let accept = rt.block_on(async move {
        let h = corio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
        corio::time::sleep(Duration::from_millis(5)).await;
        h
    });
    // SAFETY: the child only runs `forked_child` and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let code = forked_child(rt);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child failed: status {status:#x} (exit code {})",
        libc::WEXITSTATUS(status)
    );
    // The parent's runtime is intact: the accept it had waiting takes a
    // connection, and new ops run.
    rt.block_on(async move {
        let client = TcpStream::connect(addr).await.unwrap();
        let server = corio::time::timeout(Duration::from_secs(5), accept)
            .await
            .expect("the accept submitted before the fork is lost")
            .unwrap()
            .unwrap();
        client.write_all(b"ping".as_slice()).await.0.unwrap();
        let (res, buf) = server.read_exact(vec![0u8; 4]).await;
        res.unwrap();
        assert_eq!(buf, b"ping");
        corio::nop().await.unwrap();
    });
});

/// Builds, uses and drops one runtime.
fn one_runtime() {
    let rt = support::runtime();
    rt.block_on(async {
        corio::nop().await.unwrap();
        let h = corio::spawn(async { corio::time::sleep(Duration::ZERO).await });
        h.await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (s, _) = listener.accept().await.unwrap();
        c.write_all(b"x".as_slice()).await.0.unwrap();
        let lease = s.recv_pooled().await.unwrap().unwrap();
        assert_eq!(&lease[..], b"x");
        // An op still in flight when the runtime goes.
        corio::spawn(async move { s.read(vec![0u8; 8]).await });
        corio::time::sleep(Duration::from_micros(100)).await;
    });
}

/// Waits up to 5 s for the thread count to come back to `want` (kernel
/// io_uring workers, if any, leave some time after their last job).
fn threads_settle(want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = support::threads();
        if now <= want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

child_test!(a_thousand_runtimes_leave_nothing_behind, {
    // Warm up: the allocator's arenas, lazily made statics.
    for _ in 0..50 {
        one_runtime();
    }
    let fds = support::open_fds();
    let threads = threads_settle(0).max(support::threads());
    let rss = support::rss_kib();
    let start = Instant::now();
    for _ in 0..1_000 {
        one_runtime();
    }
    let elapsed = start.elapsed();
    let (fds2, threads2, rss2) = (
        support::open_fds(),
        threads_settle(threads),
        support::rss_kib(),
    );
    eprintln!(
        "1,000 runtimes in {elapsed:?}: fds {fds} -> {fds2}, threads {threads} -> {threads2}, \
         RSS {rss} -> {rss2} KiB"
    );
    assert_eq!(fds2, fds, "fds leaked");
    assert_eq!(threads2, threads, "threads leaked");
    // Allocator noise stays well under this; a leak of one buffer pool
    // (4 MiB) per runtime would be 4 GiB. Under AddressSanitizer
    // (scripts/sanitizers.sh sets ASAN_OPTIONS) freed memory sits in its
    // quarantine, so RSS grows anyway; LeakSanitizer checks leaks there.
    if std::env::var_os("ASAN_OPTIONS").is_none() {
        assert!(rss2 < rss + 8 * 1024, "RSS grew from {rss} to {rss2} KiB");
    }
});

/// Drops `CAP_IPC_LOCK` (which root has, and which exempts it from
/// `RLIMIT_MEMLOCK`) from this process's effective and permitted sets.
fn drop_ipc_lock() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_IPC_LOCK: u32 = 14;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget fills two `Data` entries for version 3.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_IPC_LOCK);
    data[0].permitted &= !(1 << CAP_IPC_LOCK);
    // SAFETY: capset reads the header and two `Data` entries.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", io::Error::last_os_error());
}

child_test!(buffer_registration_under_a_64_kib_memlock_limit, {
    let lim = libc::rlimit {
        rlim_cur: 64 * 1024,
        rlim_max: 64 * 1024,
    };
    // SAFETY: setrlimit reads one valid rlimit; this child runs only this test.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) }, 0);
    drop_ipc_lock();
    // A default ring may need more than 64 KiB: either it builds, or the
    // error says what to do; `Auto` then falls back to the poll driver.
    let explained = |e: &io::Error| {
        assert_eq!(e.kind(), ErrorKind::OutOfMemory, "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("RLIMIT_MEMLOCK") && msg.contains("64 KiB"),
            "{msg}"
        );
    };
    match Builder::new().driver(support::driver()).build() {
        Ok(_) => eprintln!("a default runtime fits in 64 KiB"),
        Err(e) => {
            eprintln!("a default runtime: {e}");
            explained(&e);
            let auto = Builder::new().build().expect("Auto falls back");
            assert_eq!(auto.driver_kind(), corio::DriverKind::Poll);
            let why = auto.fallback_reason().unwrap();
            assert!(why.contains("RLIMIT_MEMLOCK"), "{why}");
        }
    }
    // A small ring fits; the receive pool (a provided-buffer ring) at its
    // first use and fixed buffers then work or fail with that error.
    let rt = match Builder::new().driver(support::driver()).entries(8).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("a small runtime: {e}");
            explained(&e);
            return;
        }
    };
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (s, _) = listener.accept().await.unwrap();
        c.write_all(b"hello".as_slice()).await.0.unwrap();
        match s.recv_pooled().await {
            Ok(lease) => assert_eq!(&lease.unwrap()[..], b"hello"),
            Err(e) => {
                eprintln!("recv_pooled under the limit: {e}");
                explained(&e);
                let (res, buf) = s.read_exact(vec![0u8; 5]).await;
                res.unwrap();
                assert_eq!(buf, b"hello", "the bytes wait for a plain read");
            }
        }
        // 64 buffers of 64 KiB (4 MiB) registered as fixed buffers: over
        // the limit on io_uring, so a clear error (ENOMEM); on the poll
        // driver nothing is registered.
        match corio::fs::FixedBufPool::new(64, 64 * 1024) {
            Ok(pool) => {
                assert!(
                    !pool.is_registered() || support::driver() == corio::DriverKind::Uring,
                    "registered on the poll driver"
                );
                eprintln!("FixedBufPool: registered = {}", pool.is_registered());
            }
            Err(e) => {
                eprintln!("FixedBufPool under the limit: {e}");
                explained(&e);
            }
        }
        // Nothing is broken: plain I/O goes on.
        c.write_all(b"again".as_slice()).await.0.unwrap();
        let (res, buf) = s.read_exact(vec![0u8; 5]).await;
        res.unwrap();
        assert_eq!(buf, b"again");
    });
});
