//! Registered files (`Builder::registered_files`): accepted connections and
//! opened files are installed in the ring's table and their ops name the
//! slot; bytes arrive exact, a full table leaves plain fds that work, slots
//! come back on close and are reused, nothing leaks. The poll driver
//! ignores the knob (its counters stay at zero).

mod support;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use corio::DriverKind;
use corio::fs::File;
use corio::net::{TcpListener, TcpStream};
use corio::runtime::stats;

/// True on the io_uring variant (where slots are used).
fn on_ring() -> bool {
    support::driver() == DriverKind::Uring
}

/// A runtime of the current variant with a table of `slots`.
fn runtime(slots: u32) -> corio::Runtime {
    support::builder()
        .registered_files(slots)
        .build()
        .expect("build a runtime")
}

/// True (with a message) when `CORIO_REGISTERED_FILES` overrides the
/// table size a test asks for.
fn size_overridden() -> bool {
    let set = std::env::var_os("CORIO_REGISTERED_FILES").is_some();
    if set {
        eprintln!("skipped: CORIO_REGISTERED_FILES overrides the table size");
    }
    set
}

/// Waits (bounded) until the slots in use are `n`: an emptied slot is free
/// once its update has completed.
async fn slots_in_use(n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats().registered_files != n {
        assert!(
            Instant::now() < deadline,
            "slots in use: {} (wanted {n})",
            stats().registered_files
        );
        corio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Bytes 0, 1, … 250, 0, … of length `n`.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// A listener on 127.0.0.1 and `n` std clients connected to it.
fn listen(n: usize) -> (TcpListener, Vec<std::net::TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let clients = (0..n)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    (listener, clients)
}

/// Echoes what the client sends, `len` bytes, with reads and writes.
async fn echo_exact(stream: &TcpStream, len: usize) {
    let mut got = 0;
    while got < len {
        let (res, buf) = stream.read(vec![0u8; 8192]).await;
        let n = res.unwrap();
        assert!(n > 0, "early end of stream");
        got += n;
        stream.write_all(buf[..n].to_vec()).await.0.unwrap();
    }
}

/// A std client thread that sends `data`, checks it comes back, and
/// returns the connection.
fn echo_client(
    mut c: std::net::TcpStream,
    data: Vec<u8>,
) -> std::thread::JoinHandle<std::net::TcpStream> {
    std::thread::spawn(move || {
        let mut r = c.try_clone().unwrap();
        let want = data.clone();
        let reader = std::thread::spawn(move || {
            let mut back = vec![0u8; want.len()];
            r.read_exact(&mut back).unwrap();
            assert!(back == want, "echoed bytes differ");
        });
        c.write_all(&data).unwrap();
        reader.join().unwrap();
        c
    })
}

both_drivers! {
fn accepted_streams_read_and_write_byte_exact() {
    let _serial = support::serial();
    runtime(64).block_on(async {
        let (listener, mut clients) = listen(1);
        let (stream, _) = listener.accept().await.unwrap();
        let want = if on_ring() { 1 } else { 0 };
        assert_eq!(stats().registered_files, want);
        let data = pattern(300_000);
        let client = echo_client(clients.pop().unwrap(), data.clone());
        echo_exact(&stream, data.len()).await;
        let mut client = client.join().unwrap();
        // writev and shutdown name the slot too.
        let (res, _) = stream.writev(vec![b"ab".to_vec(), b"cd".to_vec()]).await;
        assert_eq!(res.unwrap(), 4);
        stream.shutdown(std::net::Shutdown::Write).await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"abcd");
        drop(stream);
        slots_in_use(0).await;
    });
}
}

both_drivers! {
fn pooled_receives_and_sends_on_incoming_streams() {
    let _serial = support::serial();
    runtime(64).block_on(async {
        let (listener, clients) = listen(3);
        let mut incoming = listener.incoming();
        let data = pattern(100_000);
        let mut threads = Vec::new();
        let mut streams = Vec::new();
        for c in clients {
            threads.push(echo_client(c, data.clone()));
            streams.push(incoming.next().await.unwrap());
        }
        assert_eq!(stats().registered_files, if on_ring() { 3 } else { 0 });
        for stream in streams {
            corio::spawn(async move {
                while let Ok(Some(buf)) = stream.recv_pooled().await {
                    stream.write_all(buf.to_vec()).await.0.unwrap();
                }
            });
        }
        let mut clients = Vec::new();
        for t in threads {
            while !t.is_finished() {
                corio::time::sleep(Duration::from_millis(1)).await;
            }
            clients.push(t.join().unwrap());
        }
        // The clients leave: the echo tasks end and drop their streams.
        drop(clients);
        slots_in_use(0).await;
    });
}
}

both_drivers! {
fn opened_files_read_and_write_byte_exact() {
    let _serial = support::serial();
    let path = support::unique_temp_path("corio-regfiles");
    runtime(8).block_on(async {
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .unwrap();
        assert_eq!(stats().registered_files, if on_ring() { 1 } else { 0 });
        let data = pattern(200_000);
        f.write_all_at(data.clone(), 0).await.0.unwrap();
        f.sync_all().await.unwrap();
        let (res, back) = f.read_exact_at(vec![0u8; data.len()], 0).await;
        res.unwrap();
        assert!(back == data, "file bytes differ");
        let (res, bufs) = f.readv_at(vec![vec![0u8; 3], vec![0u8; 4]], 10).await;
        assert_eq!(res.unwrap(), 7);
        assert_eq!([&bufs[0][..], &bufs[1][..]].concat(), data[10..17]);
        f.set_len(1000).await.unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), 1000);
        // `close` takes the fd back: its slot is emptied too.
        f.close().await.unwrap();
        slots_in_use(0).await;
    });
    assert_eq!(std::fs::read(&path).unwrap(), pattern(200_000)[..1000]);
    std::fs::remove_file(&path).unwrap();
}
}

both_drivers! {
fn a_full_table_leaves_plain_fds_that_work() {
    let _serial = support::serial();
    if size_overridden() {
        return;
    }
    runtime(2).block_on(async {
        let (listener, clients) = listen(5);
        let mut streams = Vec::new();
        for _ in 0..5 {
            streams.push(listener.accept().await.unwrap().0);
        }
        let s = stats();
        if on_ring() {
            assert_eq!((s.registered_files, s.registered_files_full), (2, 3));
        } else {
            assert_eq!((s.registered_files, s.registered_files_full), (0, 0));
        }
        let data = pattern(50_000);
        let threads: Vec<_> = clients
            .into_iter()
            .map(|c| echo_client(c, data.clone()))
            .collect();
        for stream in &streams {
            echo_exact(stream, data.len()).await;
        }
        for t in threads {
            t.join().unwrap();
        }
        drop(streams);
        slots_in_use(0).await;
    });
}
}

both_drivers! {
fn slots_are_freed_on_close_and_reused_without_leaks() {
    let _serial = support::serial();
    let before = support::open_fds();
    let rt = runtime(4);
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for round in 0..40 {
            let mut clients: Vec<_> = (0..3)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            for c in &mut clients {
                let (stream, _) = listener.accept().await.unwrap();
                c.write_all(&[round as u8; 5]).unwrap();
                let (res, buf) = stream.read_exact(vec![0u8; 5]).await;
                res.unwrap();
                assert_eq!(buf, [round as u8; 5]);
            }
            // All three streams are gone: their slots come back.
            slots_in_use(0).await;
            for mut c in clients {
                let mut rest = Vec::new();
                c.read_to_end(&mut rest).unwrap();
                assert!(rest.is_empty(), "the socket was closed");
            }
        }
        assert_eq!(stats().registered_files_full, 0, "slots were reused");
    });
    drop(rt);
    assert_eq!(support::open_fds(), before, "fds leaked");
}
}

both_drivers! {
fn ops_name_the_slot_not_the_fd_number() {
    let _serial = support::serial();
    runtime(8).block_on(async {
        let (listener, mut clients) = listen(1);
        let mut client = clients.pop().unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let fd = stream.as_raw_fd();
        // The fd number now names /dev/null: on io_uring the ops still
        // reach the socket, through its slot.
        let null = std::fs::File::open("/dev/null").unwrap();
        if on_ring() {
            // SAFETY: `fd` is open (the stream holds it); dup2 replaces what
            // it names, atomically. The stream's close closes the copy.
            assert!(unsafe { libc::dup2(null.as_raw_fd(), fd) } >= 0);
        }
        stream.write_all(b"through the slot".to_vec()).await.0.unwrap();
        let mut got = [0u8; 16];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"through the slot");
        client.write_all(b"back").unwrap();
        let (res, buf) = stream.read_exact(vec![0u8; 4]).await;
        res.unwrap();
        assert_eq!(buf, b"back");
        client.write_all(b"pooled").unwrap();
        let buf = stream.recv_pooled().await.unwrap().expect("data");
        assert_eq!(&buf[..], b"pooled");
        drop(buf);
        // Dropping the stream closes the fd number (the /dev/null copy on
        // io_uring) and empties the slot (at the driver's next tick), which
        // closes the socket: the client sees its end of stream.
        drop(stream);
        slots_in_use(0).await;
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    });
}
}

both_drivers! {
fn dropping_a_runtime_with_ops_pending_on_registered_files_leaks_nothing() {
    let _serial = support::serial();
    let before = support::open_fds();
    let mut clients = Vec::new();
    {
        let rt = runtime(16);
        rt.block_on(async {
            let (listener, cs) = listen(6);
            clients = cs;
            for i in 0..6 {
                let (stream, _) = listener.accept().await.unwrap();
                // Reads and pooled receives that wait for ever, on both
                // plain and multishot ops.
                corio::spawn(async move {
                    if i % 2 == 0 {
                        let _ = stream.read(vec![0u8; 64]).await;
                    } else {
                        let _ = stream.recv_pooled().await;
                    }
                });
            }
            let path = support::unique_temp_path("corio-regfiles-drop");
            let f = File::create(&path).await.unwrap();
            std::fs::remove_file(&path).unwrap();
            corio::spawn(async move {
                let _ = f.write_all_at(vec![1u8; 4096], 0).await;
                std::future::pending::<()>().await;
            });
            corio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(stats().registered_files, if on_ring() { 7 } else { 0 });
        });
    }
    // Every socket was closed with the runtime (the kernel's table too).
    for mut c in clients {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
    }
    assert_eq!(support::open_fds(), before, "fds leaked");
}
}

both_drivers! {
fn a_table_the_kernel_refuses_is_ignored() {
    let _serial = support::serial();
    if size_overridden() {
        return;
    }
    // More slots than the fd limit allows: the kernel refuses the table and
    // the runtime runs with plain fds.
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur >= 65_535 {
        eprintln!("skipped: RLIMIT_NOFILE is too high to make the kernel refuse a table");
        return;
    }
    runtime(65_535).block_on(async {
        let (listener, mut clients) = listen(1);
        let (stream, _) = listener.accept().await.unwrap();
        let s = stats();
        assert_eq!((s.registered_files, s.registered_files_full), (0, 0));
        let client = echo_client(clients.pop().unwrap(), pattern(10_000));
        echo_exact(&stream, 10_000).await;
        client.join().unwrap();
    });
}
}

/// `CORIO_REGISTERED_FILES` turns the table on without the builder (in a
/// child process: the environment is the whole process's).
#[test]
fn the_environment_variable_turns_it_on() {
    // Its child's pipes would show up in another test's fd count.
    let _serial = support::serial();
    if !support::is_child("the_environment_variable_turns_it_on") {
        if !support::uring_available() {
            eprintln!("skipped: io_uring is not available here");
            return;
        }
        support::run_in_child_with_env(
            "the_environment_variable_turns_it_on",
            Duration::from_secs(60),
            &[("CORIO_REGISTERED_FILES", "4")],
        );
        return;
    }
    let rt = corio::Builder::new()
        .driver(DriverKind::Uring)
        .build()
        .unwrap();
    rt.block_on(async {
        let (listener, _clients) = listen(5);
        let mut streams = Vec::new();
        for _ in 0..5 {
            streams.push(listener.accept().await.unwrap().0);
        }
        // Four slots: the fifth connection uses its plain fd.
        let s = stats();
        assert_eq!((s.registered_files, s.registered_files_full), (4, 1), "{s}");
    });
    // An unknown value is refused.
    // SAFETY: the child runs this one test on one thread.
    unsafe { std::env::set_var("CORIO_REGISTERED_FILES", "lots") };
    let err = corio::Builder::new().build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
