//! Thread per core: `Builder::run`, `spawn_on`, cross-shard channels,
//! `SO_REUSEPORT` listeners, panics and CPU pinning.

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corio::net::TcpListener;
use corio::shard::{RunError, ShardId};
use corio::sync::mpsc;

both_drivers! {
fn spawn_on_runs_on_the_target_shard_thread() {
    let out = support::builder()
        .shards(2)
        .run(|shard| async move {
            let me = corio::shard::current();
            assert_eq!(me.id(), shard);
            assert_eq!(me.count(), 2);
            let here = std::thread::current().id();
            let other = ShardId::new(1 - shard.index());
            let (id, thread) = corio::spawn_on(other, async {
                (corio::shard::current().id(), std::thread::current().id())
            })
            .await
            .unwrap();
            assert_eq!(id, other);
            assert_ne!(thread, here, "spawn_on ran on the caller's thread");
            format!("{:?}", here)
        })
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_ne!(out[0], out[1], "two shards ran on one thread");
}
}

both_drivers! {
fn handles_from_spawn_on_can_be_awaited_on_a_third_thread() {
    let out = support::builder()
        .shards(2)
        .run(|shard| async move {
            if shard.index() != 0 {
                return 0;
            }
            let h = corio::spawn_on(ShardId::new(1), async { 7 * 6 });
            let (tx, rx) = corio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let v = support::run(h);
                let _ = tx.send(v.unwrap());
            });
            rx.await.unwrap()
        })
        .unwrap();
    assert_eq!(out, vec![42, 0]);
}
}

both_drivers! {
fn hundred_thousand_messages_ping_pong_between_two_shards() {
    const N: u32 = 50_000; // 50,000 round trips = 100,000 messages.
    type Pipes = (mpsc::Sender<u32>, mpsc::Receiver<u32>);
    let (a_tx, b_rx) = mpsc::channel::<u32>(16);
    let (b_tx, a_rx) = mpsc::channel::<u32>(16);
    let pipes: Arc<Mutex<Vec<Option<Pipes>>>> =
        Arc::new(Mutex::new(vec![Some((a_tx, a_rx)), Some((b_tx, b_rx))]));
    let out = support::builder()
        .shards(2)
        .run(move |shard| {
            let (tx, mut rx) = pipes.lock().unwrap()[shard.index()].take().unwrap();
            async move {
                let mut last = 0;
                if shard.index() == 0 {
                    for i in 0..N {
                        tx.send(i).await.unwrap();
                        last = rx.recv().await.unwrap();
                        assert_eq!(last, i + 1);
                    }
                } else {
                    while let Some(i) = rx.recv().await {
                        last = i + 1;
                        if tx.send(last).await.is_err() {
                            break;
                        }
                    }
                }
                last
            }
        })
        .unwrap();
    assert_eq!(out, vec![N, N]);
}
}

both_drivers! {
fn shards_accepting_on_one_port_all_serve() {
    const CLIENTS: usize = 200;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bound = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let b = bound.clone();
    let st = stopped.clone();
    let clients = std::thread::spawn(move || {
        // Wait until both shards listen, bounded in time.
        for _ in 0..500 {
            if b.load(Ordering::SeqCst) == 2 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut served_by = Vec::new();
        for _ in 0..CLIENTS {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"?").unwrap();
            let mut who = [0u8; 1];
            s.read_exact(&mut who).unwrap();
            served_by.push(who[0]);
        }
        // Tell every shard to stop. The kernel picks the shard of each
        // connection, so keep asking until both have stopped (bounded).
        for _ in 0..2000 {
            if st.load(Ordering::SeqCst) == 2 {
                break;
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"q");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        served_by
    });
    let counts = support::builder()
        .shards(2)
        .run(move |shard| {
            let bound = bound.clone();
            let stopped = stopped.clone();
            async move {
                let listener = TcpListener::bind_reuseport(("127.0.0.1", port)).unwrap();
                bound.fetch_add(1, Ordering::SeqCst);
                let mut served = 0usize;
                loop {
                    let (s, _) = listener.accept().await.unwrap();
                    let (res, buf) = s.read(vec![0u8; 1]).await;
                    if res.unwrap() == 0 || buf[0] == b'q' {
                        break;
                    }
                    s.write_all(vec![shard.index() as u8]).await.0.unwrap();
                    served += 1;
                }
                stopped.fetch_add(1, Ordering::SeqCst);
                served
            }
        })
        .unwrap();
    let served_by = clients.join().unwrap();
    assert_eq!(served_by.len(), CLIENTS);
    assert_eq!(counts.iter().sum::<usize>(), CLIENTS);
    let shards: HashSet<u8> = served_by.into_iter().collect();
    assert_eq!(shards.len(), 2, "one shard served nobody: {counts:?}");
}
}

both_drivers! {
fn messages_sent_before_a_shard_ends_are_not_lost() {
    const N: usize = 10_000;
    let (tx, rx) = mpsc::unbounded_channel::<usize>();
    let tx = Mutex::new(Some(tx));
    let rx = Mutex::new(Some(rx));
    let out = support::builder()
        .shards(2)
        .run(move |shard| {
            let first = shard.index() == 0;
            let tx = if first { tx.lock().unwrap().take() } else { None };
            let rx = if first { None } else { rx.lock().unwrap().take() };
            async move {
                if first {
                    // Send everything, then end this shard's entry at once.
                    let tx = tx.unwrap();
                    for i in 0..N {
                        tx.send(i).unwrap();
                    }
                    N
                } else {
                    let mut rx = rx.unwrap();
                    let mut got = 0;
                    while let Some(i) = rx.recv().await {
                        assert_eq!(i, got);
                        got += 1;
                    }
                    got
                }
            }
        })
        .unwrap();
    assert_eq!(out, vec![N, N]);
}
}

both_drivers! {
fn dropped_receiver_on_another_shard_gives_the_sender_an_error() {
    let (tx, rx) = mpsc::channel::<u32>(1);
    let tx = Mutex::new(Some(tx));
    let rx = Mutex::new(Some(rx));
    let out = support::builder()
        .shards(2)
        .run(move |shard| {
            let first = shard.index() == 0;
            let tx = if first { tx.lock().unwrap().take() } else { None };
            let rx = if first { None } else { rx.lock().unwrap().take() };
            async move {
                if first {
                    let tx = tx.unwrap();
                    tx.send(1).await.unwrap();
                    // The channel is full; this send waits until shard 1
                    // drops its receiver, then fails instead of hanging.
                    tx.send(2).await.is_err()
                } else {
                    corio::time::sleep(Duration::from_millis(20)).await;
                    drop(rx);
                    true
                }
            }
        })
        .unwrap();
    assert_eq!(out, vec![true, true]);
}
}

both_drivers! {
fn a_panicking_shard_ends_run_with_an_error() {
    let err = support::builder()
        .shards(2)
        .run(|shard| async move {
            if shard.index() == 1 {
                corio::time::sleep(Duration::from_millis(10)).await;
                panic!("shard one gives up");
            }
            // Shard 0 would run forever; the panic must stop it.
            corio::time::sleep(Duration::from_secs(3600)).await;
        })
        .unwrap_err();
    match &err {
        RunError::Panic { shard, .. } => assert_eq!(shard.index(), 1),
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("shard one gives up"), "{err}");
}
}

#[test]
fn pinning_more_shards_than_cpus_is_a_clear_error() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let err = corio::Builder::new()
        .shards(cpus + 1)
        .pin_cpus(true)
        .run(|_| async {})
        .unwrap_err();
    match &err {
        RunError::Build { error, .. } => {
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput)
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("cannot pin"), "{err}");
}

#[test]
fn pinned_shards_run_on_their_cpu() {
    let out = corio::Builder::new()
        .shards(1)
        .pin_cpus(true)
        .run(|_| async {
            // SAFETY: sched_getcpu has no preconditions.
            let cpu = unsafe { libc::sched_getcpu() };
            // SAFETY: cpu_set_t is plain data, filled by the kernel.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: a valid pointer and the set's size.
            let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
            assert_eq!(r, 0);
            let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                // SAFETY: `i` is below CPU_SETSIZE.
                .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
                .collect();
            (cpu, allowed)
        })
        .unwrap();
    let (cpu, allowed) = &out[0];
    assert_eq!(allowed.len(), 1, "shard not pinned: {allowed:?}");
    assert_eq!(allowed[0] as i32, *cpu);
}

#[test]
#[should_panic(expected = "there is no shard 5")]
fn spawn_on_a_missing_shard_panics() {
    corio::run(async {
        drop(corio::spawn_on(ShardId::new(5), async {}));
    });
}
