//! Runtime counters (`Runtime::stats`), the ring knobs of `Builder`, and `corio::probe()`.

mod support;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use corio::net::TcpListener;
use corio::runtime::Stats;
use corio::{Builder, DriverKind, IoBuf, Runtime};

/// Bound for every wait in this file: a hang fails the test instead.
const LIMIT: Duration = Duration::from_secs(20);

/// True when `CORIO_SPIN_US` makes every runtime spin (as under valgrind):
/// the counts of parks and spin hits are then not what a test configured.
fn spin_from_env() -> bool {
    std::env::var_os("CORIO_SPIN_US").is_some()
}

/// A std client doing `n` round trips of 64 bytes (each a different byte),
/// waiting `pause` before each.
fn client(addr: SocketAddr, n: usize, pause: Duration) -> thread::JoinHandle<io::Result<()>> {
    thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(LIMIT))?;
        let mut back = [0u8; 64];
        for i in 0..n {
            thread::sleep(pause);
            let msg = [i as u8; 64];
            s.write_all(&msg)?;
            s.read_exact(&mut back)?;
            assert_eq!(back, msg, "round trip {i} came back wrong");
        }
        Ok(())
    })
}

/// Serves one echo connection on `rt` for a std client doing `n` round
/// trips; returns what the runtime's counters did meanwhile.
fn echo_round_trips(rt: &Runtime, n: usize) -> Stats {
    echo_round_trips_paced(rt, n, Duration::ZERO)
}

/// As [`echo_round_trips`], the client waiting `pause` before each send.
fn echo_round_trips_paced(rt: &Runtime, n: usize, pause: Duration) -> Stats {
    let before = rt.stats();
    let done = rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = client(listener.local_addr().unwrap(), n, pause);
        let served = corio::time::timeout(LIMIT, async {
            let (s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            loop {
                let (res, b) = s.read(buf).await;
                let got = res.unwrap();
                if got == 0 {
                    return;
                }
                let (res, slice) = s.write_all(b.slice(..got)).await;
                res.unwrap();
                buf = slice.into_inner();
            }
        })
        .await;
        (served, c)
    });
    assert!(done.0.is_ok(), "the echo server timed out");
    done.1.join().unwrap().expect("client round trips");
    rt.stats().since(&before)
}

both_drivers! {
    fn echo_round_trips_move_the_counters() {
        const N: u64 = 200;
        let rt = support::runtime();
        let d = echo_round_trips(&rt, N as usize);
        eprintln!("{:?}, {N} round trips: {d}", rt.driver_kind());
        assert!(d.tasks_polled >= 1, "{d}");
        assert!(d.enters >= 1, "{d}");
        match rt.driver_kind() {
            DriverKind::Uring => {
                // Each op completes after its task returned Pending.
                assert!(d.tasks_polled >= 2 * N, "{d}");
                // N receives and N sends at least (plus accept and EOF).
                assert!(d.cqes_reaped >= 2 * N, "{d}");
                assert!(d.sqes_submitted >= 2 * N, "{d}");
                // Completions reaped after the wait need no eventfd signal
                // (which would cost an SQE and a CQE for the wake-up read).
                assert!(d.sqes_submitted <= 2 * N + 10, "a wake-up signal per round trip? {d}");
                assert!(d.enters <= d.cqes_reaped, "more enters than completions: {d}");
                assert!(d.in_flight_max >= 2, "the wake-up read and one op: {d}");
                assert!(d.parks >= 1 || spin_from_env(), "{d}");
            }
            _ => {
                assert_eq!(
                    (d.sqes_submitted, d.in_flight, d.cancels, d.cq_overflows),
                    (0, 0, 0, 0),
                    "io_uring-only counters on the poll driver: {d}"
                );
                assert!(d.cqes_reaped >= 1, "readiness events: {d}");
                // A short read clears readiness, so the next read waits for
                // an edge instead of trying recv(2) once more for EAGAIN.
                assert!(d.would_blocks <= N / 10, "an EAGAIN per round trip? {d}");
            }
        }
        assert_eq!(d.enobufs, 0);
        if rt.driver_kind() == DriverKind::Uring {
            assert_eq!(d.would_blocks, 0, "blocking sockets never see EAGAIN: {d}");
        }
        // Reading is a snapshot: nothing moves between two reads.
        assert_eq!(rt.stats(), rt.stats());
    }
}

both_drivers! {
    fn cancels_and_remote_wakeups_are_counted() {
        let rt = support::runtime();
        let before = rt.stats();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let _peer = std::net::TcpStream::connect(addr).unwrap();
            let (s, _) = listener.accept().await.unwrap();
            // A read that never completes, dropped by its timeout.
            let r = corio::time::timeout(Duration::from_millis(20), s.read(vec![0u8; 16])).await;
            assert!(r.is_err(), "nothing was sent, the read must time out");
            // A result from a pool thread wakes this task from another thread.
            let v = corio::spawn_blocking(|| {
                thread::sleep(Duration::from_millis(5));
                7
            })
            .await
            .unwrap();
            assert_eq!(v, 7);
        });
        let d = rt.stats().since(&before);
        assert!(d.remote_wakeups >= 1, "{d}");
        assert!(d.parks >= 1 || spin_from_env(), "{d}");
        if rt.driver_kind() == DriverKind::Uring {
            assert!(d.cancels >= 1, "{d}");
        } else {
            assert_eq!(d.cancels, 0, "{d}");
        }
    }
}

both_drivers! {
    fn a_dry_buffer_pool_counts_enobufs() {
        let rt = support::builder().buffer_pool(2, 64).build().unwrap();
        let before = rt.stats();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let mut c = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (s, _) = listener.accept().await.unwrap();
            let mut held = Vec::new();
            for i in 0..2u8 {
                c.write_all(&[i; 64]).unwrap();
                held.push(s.recv_pooled().await.unwrap().expect("data"));
            }
            assert_eq!(corio::runtime::stats().enobufs, 0, "the pool was not dry yet");
            // Both buffers are leased out: these bytes find the pool dry.
            c.write_all(&[9; 64]).unwrap();
            let r = corio::time::timeout(Duration::from_millis(50), s.recv_pooled()).await;
            assert!(r.is_err(), "a receive with the pool dry must wait");
            drop(held);
            let got = corio::time::timeout(LIMIT, s.recv_pooled()).await;
            assert_eq!(got.unwrap().unwrap().expect("data")[0], 9);
        });
        let d = rt.stats().since(&before);
        assert!(d.enobufs >= 1, "{d}");
    }
}

both_drivers! {
    fn spinning_before_park_catches_completions() {
        let rt = support::builder()
            .spin_before_park(Duration::from_millis(200))
            .build()
            .unwrap();
        // The client waits 2 ms before each send, so the data arrives
        // while the server spins. Sending at once, it raced the server to
        // the spin: on a loaded machine the data could be in before every
        // spin began (a spin counts a hit only for work that came during
        // it), and the test failed now and then.
        let d = echo_round_trips_paced(&rt, 20, Duration::from_millis(2));
        assert!(d.spin_hits >= 1, "a 200 ms spin caught nothing: {d}");
        let rt = support::runtime();
        let d = echo_round_trips(&rt, 20);
        if !spin_from_env() {
            assert_eq!(d.spin_hits, 0, "no spin configured: {d}");
        }
    }
}

/// `CORIO_SPIN_US` sets the spin without the builder (in a child process:
/// the environment is the whole process's), and a bad value is refused.
#[test]
fn the_spin_environment_variable_overrides_the_builder() {
    const NAME: &str = "the_spin_environment_variable_overrides_the_builder";
    if !support::is_child(NAME) {
        support::run_in_child_with_env(NAME, LIMIT, &[("CORIO_SPIN_US", "max")]);
        return;
    }
    for kind in [DriverKind::Uring, DriverKind::Poll] {
        if kind == DriverKind::Uring && !support::uring_available() {
            continue;
        }
        // The builder says "park at once"; the environment says "never".
        let rt = Builder::new()
            .driver(kind)
            .spin_before_park(Duration::ZERO)
            .build()
            .unwrap();
        let d = echo_round_trips_paced(&rt, 10, Duration::from_millis(2));
        assert_eq!(d.parks, 0, "{kind:?} slept although CORIO_SPIN_US=max: {d}");
        assert!(d.spin_hits >= 1, "{kind:?}: {d}");
    }
    // SAFETY: the child runs this one test on one thread.
    unsafe { std::env::set_var("CORIO_SPIN_US", "fast") };
    let err = Builder::new().build().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("CORIO_SPIN_US"), "{err}");
}

both_drivers! {
    fn an_endless_spin_still_fires_timers_and_serves() {
        let rt = support::builder().spin_before_park(Duration::MAX).build().unwrap();
        rt.block_on(async {
            let t = std::time::Instant::now();
            corio::time::sleep(Duration::from_millis(5)).await;
            assert!(t.elapsed() >= Duration::from_millis(5));
        });
        let d = echo_round_trips(&rt, 10);
        assert_eq!(d.parks, 0, "it never sleeps: {d}");
    }
}

both_drivers! {
    fn one_completion_per_tick_loses_nothing() {
        let rt = support::builder()
            .entries(4)
            .cq_entries(8)
            .max_completions_per_tick(1)
            .build()
            .unwrap();
        let before = rt.stats();
        rt.block_on(async {
            let handles: Vec<_> = (0..100).map(|_| corio::spawn(corio::nop())).collect();
            for h in handles {
                h.await.unwrap().unwrap();
            }
        });
        let d = rt.stats().since(&before);
        if rt.driver_kind() == DriverKind::Uring {
            assert!(d.cqes_reaped >= 100, "{d}");
            // 100 NOPs through a queue of 8: the kernel had to hold some back.
            assert!(d.cq_overflows >= 1, "{d}");
        }
        let d = echo_round_trips(&rt, 20);
        assert!(d.tasks_polled >= 1, "{d}");
    }
}

/// `single_issuer`, `defer_taskrun`, `coop_taskrun` (unset, on, off), and SQPOLL.
type Combination = (Option<bool>, Option<bool>, Option<bool>, bool);

/// Each combination the builder offers for the taskrun flags and SQPOLL.
fn combinations() -> Vec<Combination> {
    let tri = [None, Some(true), Some(false)];
    let mut v = Vec::new();
    for si in tri {
        for dt in tri {
            for ct in tri {
                for sqpoll in [false, true] {
                    v.push((si, dt, ct, sqpoll));
                }
            }
        }
    }
    v
}

#[test]
fn every_accepted_knob_combination_runs_echo() {
    let Some(_) = support::uring_runtime() else {
        return;
    };
    let probe = corio::probe();
    let accepted = |name: &str| {
        probe
            .setup_flags
            .iter()
            .any(|s| s.name == name && s.supported)
    };
    let mut ran = 0;
    let mut refusals = 0;
    for (i, (si, dt, ct, sqpoll)) in combinations().into_iter().enumerate() {
        let mut b = Builder::new()
            .driver(DriverKind::Uring)
            .register_ring_fd(i.is_multiple_of(2))
            .entries(64);
        // Vary the executor knobs along the way too.
        if i % 3 == 1 {
            b = b.spin_before_park(Duration::from_micros(50));
        }
        if i % 5 == 2 {
            b = b.max_completions_per_tick(2);
        }
        if let Some(v) = si {
            b = b.single_issuer(v);
        }
        if let Some(v) = dt {
            b = b.defer_taskrun(v);
        }
        if let Some(v) = ct {
            b = b.coop_taskrun(v);
        }
        if sqpoll {
            b = b.sqpoll(Duration::from_millis(5));
        }
        let what = format!(
            "single_issuer {si:?} defer_taskrun {dt:?} coop_taskrun {ct:?} sqpoll {sqpoll}"
        );
        let invalid = dt == Some(true) && (si == Some(false) || sqpoll);
        let rt = match b.build() {
            Ok(rt) => rt,
            Err(e) if invalid => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}: {e}");
                continue;
            }
            Err(e) => {
                // Only flags set explicitly may be refused (alone, or
                // together: 6.13+ refuses COOP_TASKRUN with SQPOLL), and
                // the error names them.
                let msg = e.to_string();
                let asked = [
                    ("SINGLE_ISSUER", si == Some(true)),
                    ("DEFER_TASKRUN", dt == Some(true)),
                    ("COOP_TASKRUN", ct == Some(true)),
                    ("SQPOLL", sqpoll),
                ];
                let named = asked.iter().any(|&(n, a)| a && msg.contains(n));
                let alone = asked.iter().any(|&(n, a)| a && !accepted(n));
                let together = ct == Some(true) && sqpoll && msg.contains("together");
                assert!(
                    msg.contains("refuse") && named && (alone || together),
                    "{what}: unexpected error {e}"
                );
                refusals += 1;
                continue;
            }
        };
        assert!(!invalid, "{what}: an invalid combination was built");
        assert_eq!(rt.driver_kind(), DriverKind::Uring, "{what}");
        let ring = rt.ring_flags().expect("an io_uring runtime has ring flags");
        for (asked, got, name) in [
            (si, ring.single_issuer, "single_issuer"),
            (dt, ring.defer_taskrun, "defer_taskrun"),
            (ct, ring.coop_taskrun, "coop_taskrun"),
        ] {
            if let Some(v) = asked {
                assert_eq!(got, v, "{what}: {name} in {ring}");
            }
        }
        assert_eq!(ring.sqpoll.is_some(), sqpoll, "{what}: {ring}");
        assert!(!ring.defer_taskrun || ring.single_issuer, "{ring}");
        if i % 2 == 1 {
            assert!(!ring.registered_ring_fd, "{what}: {ring}");
        }
        let d = echo_round_trips(&rt, 3);
        assert!(d.cqes_reaped >= 6, "{what}: {d}");
        ran += 1;
    }
    assert!(
        ran >= 30,
        "only {ran} combinations ran ({refusals} refused)"
    );
    eprintln!("{ran} combinations ran, {refusals} refused by this kernel");
}

#[test]
fn default_ring_uses_the_best_flags_the_kernel_accepts() {
    let Some(rt) = support::uring_runtime() else {
        return;
    };
    let ring = rt.ring_flags().unwrap();
    let probe = corio::probe();
    let accepted = |name: &str| {
        probe
            .setup_flags
            .iter()
            .any(|s| s.name == name && s.supported)
    };
    if accepted("DEFER_TASKRUN") {
        assert!(ring.defer_taskrun && ring.single_issuer, "{ring}");
    } else if accepted("COOP_TASKRUN") {
        assert!(ring.coop_taskrun, "{ring}");
    }
    assert!(
        ring.sqpoll.is_none(),
        "SQPOLL is off unless asked for: {ring}"
    );
    assert!(ring.sq_entries >= 1024 && ring.cq_entries >= 2048, "{ring}");
    assert_eq!(
        probe.default_ring.map(|r| r.defer_taskrun),
        Some(ring.defer_taskrun)
    );
}

both_drivers! {
    fn invalid_combinations_are_errors_not_panics() {
        let cases = [
            (
                support::builder().defer_taskrun(true).single_issuer(false),
                "SINGLE_ISSUER",
            ),
            (
                support::builder()
                    .defer_taskrun(true)
                    .sqpoll(Duration::from_millis(10)),
                "SQPOLL",
            ),
            (support::builder().sqpoll_cpu(0), "sqpoll"),
        ];
        for (b, names) in cases {
            let what = format!("{b:?}");
            let e = b.build().expect_err(&what);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{what}: {e}");
            assert!(e.to_string().contains(names), "{what}: {e}");
        }
    }
}

#[test]
fn a_flag_the_kernel_refuses_is_a_named_error_even_with_auto() {
    if support::uring_runtime().is_none() {
        return;
    }
    // No CPU has this number: the kernel refuses SQPOLL's CPU affinity.
    for kind in [DriverKind::Uring, DriverKind::Auto] {
        let e = Builder::new()
            .driver(kind)
            .sqpoll(Duration::from_millis(10))
            .sqpoll_cpu(4000)
            .build()
            .expect_err("SQPOLL on CPU 4000");
        let msg = e.to_string();
        assert!(
            msg.contains("SQPOLL") && msg.contains("sqpoll_cpu"),
            "{kind:?}: {msg}"
        );
    }
}

#[test]
fn sqpoll_wakes_its_kernel_thread_after_idling() {
    let Some(_) = support::uring_runtime() else {
        return;
    };
    let built = Builder::new()
        .driver(DriverKind::Uring)
        .sqpoll(Duration::from_millis(2))
        .build();
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("skipped: this kernel refuses SQPOLL here ({e})");
            return;
        }
    };
    let ring = rt.ring_flags().unwrap();
    assert_eq!(ring.sqpoll, Some(Duration::from_millis(2)), "{ring}");
    assert!(!ring.defer_taskrun, "{ring}");
    let d = echo_round_trips(&rt, 50);
    assert!(d.cqes_reaped >= 100, "{d}");
    // Let the kernel thread go to sleep between ops: each submission must
    // wake it (IORING_ENTER_SQ_WAKEUP) or the op never starts and the
    // timeout fires.
    rt.block_on(async {
        for _ in 0..5 {
            thread::sleep(Duration::from_millis(10));
            corio::time::timeout(LIMIT, corio::nop())
                .await
                .expect("a NOP submitted to a sleeping SQPOLL thread")
                .unwrap();
        }
    });
    let d = echo_round_trips(&rt, 20);
    assert!(d.cqes_reaped >= 40, "{d}");
}

#[test]
fn ring_fd_registration_can_be_turned_off() {
    let Some(_) = support::uring_runtime() else {
        return;
    };
    let rt = Builder::new()
        .driver(DriverKind::Uring)
        .register_ring_fd(false)
        .build()
        .unwrap();
    assert!(!rt.ring_flags().unwrap().registered_ring_fd);
    echo_round_trips(&rt, 5);
    let rt = Builder::new().driver(DriverKind::Uring).build().unwrap();
    assert!(
        rt.ring_flags().unwrap().registered_ring_fd,
        "Linux 5.18+ registers it"
    );
}

#[test]
fn each_shard_reads_its_own_counters() {
    let out = Builder::new()
        .shards(2)
        .run(|shard| async move {
            for _ in 0..=shard.index() * 10 {
                corio::yield_now().await;
            }
            (
                corio::runtime::stats(),
                corio::runtime::ring_flags().is_some(),
            )
        })
        .unwrap();
    assert_eq!(out.len(), 2);
    assert!(out[0].0.tasks_polled >= 1);
    assert!(
        out[1].0.tasks_polled > out[0].0.tasks_polled,
        "shard 1 yielded 10 times more: {} vs {}",
        out[1].0,
        out[0].0
    );
}

#[test]
fn probe_reports_sensible_data() {
    let p = corio::probe();
    assert!(!p.kernel.is_empty() && p.kernel != "unknown", "{p}");
    let nofile = p.nofile.soft.expect("a finite RLIMIT_NOFILE");
    assert!(nofile >= 64, "{p}");
    assert!(p.nofile.hard.is_none_or(|h| h >= nofile), "{p}");
    assert!(!p.auto_reason.is_empty());
    let auto = Builder::new().driver(DriverKind::Auto).build();
    if std::env::var_os("CORIO_DRIVER").is_none() {
        assert_eq!(auto.unwrap().driver_kind(), p.auto_driver, "{p}");
    }
    let text = p.to_string();
    assert!(
        text.contains("RLIMIT_MEMLOCK") && text.contains(&p.kernel),
        "{text}"
    );
    if p.auto_driver == DriverKind::Uring {
        let nop = p
            .opcodes
            .iter()
            .find(|o| o.name == "NOP")
            .expect("NOP listed");
        assert!(nop.supported, "{p}");
        assert!(
            p.opcodes
                .iter()
                .filter(|o| o.note.starts_with("needed"))
                .all(|o| o.supported),
            "Auto picked io_uring, so every needed opcode is there: {p}"
        );
        assert!(p.default_ring.is_some(), "{p}");
        assert!(
            p.features.iter().any(|f| f.name == "NODROP" && f.supported),
            "{p}"
        );
        assert!(!p.setup_flags.is_empty(), "{p}");
    } else {
        assert!(p.default_ring.is_none(), "{p}");
    }
}
