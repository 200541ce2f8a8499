//! Stall detection (`Builder::stall_threshold`, `on_stall`) and task dumps
//! (`Builder::track_tasks`, `corio::runtime::task_dump`).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corio::net::TcpListener;
use corio::runtime::{StallReport, task_dump};

/// Busy-waits (holds the thread) for `d`.
fn hold(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// The reports a runtime's stall hook received.
type Seen = Arc<Mutex<Vec<(u32, String, Duration)>>>;

fn stall_builder(seen: &Seen) -> corio::Builder {
    let log = seen.clone();
    support::builder()
        .stall_threshold(Duration::from_millis(100))
        .on_stall(move |r: &StallReport| {
            log.lock()
                .unwrap()
                .push((r.location.line(), r.location.file().to_string(), r.held))
        })
}

both_drivers! {
    fn a_busy_task_is_reported_with_its_spawn_location() {
        let seen: Seen = Arc::default();
        let rt = stall_builder(&seen).build().unwrap();
        let line = line!() + 3;
        let fast_line = line + 1;
        rt.block_on(async {
            let slow = corio::spawn(async { hold(Duration::from_millis(150)) });
            let fast = corio::spawn(async { corio::yield_now().await });
            slow.await.unwrap();
            fast.await.unwrap();
        });
        let seen = seen.lock().unwrap();
        // (Only the two tasks are looked at: a preempted main future could
        // in theory be reported too.)
        let slow: Vec<_> = seen.iter().filter(|s| s.0 == line).collect();
        assert_eq!(slow.len(), 1, "one stall, the slow task's: {seen:?}");
        assert!(seen.iter().all(|s| s.0 != fast_line), "the fast task: {seen:?}");
        let (_, file, held) = slow[0];
        assert!(file.ends_with("runtime_observe.rs"), "{file}");
        assert!(*held >= Duration::from_millis(150), "held {held:?}");
    }
}

both_drivers! {
    fn a_task_that_waited_first_is_reported_with_its_spawn_location() {
        // Once a task has waited, its origin lives in the runtime's
        // registry of waiting tasks (its future keeps the key): the report
        // finds it there.
        let seen: Seen = Arc::default();
        let rt = stall_builder(&seen).build().unwrap();
        let line = line!() + 2;
        rt.block_on(async {
            let slow = corio::spawn(async {
                corio::time::sleep(Duration::from_millis(5)).await;
                hold(Duration::from_millis(150))
            });
            slow.await.unwrap();
        });
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter()
                .any(|s| s.0 == line && s.2 >= Duration::from_millis(150)),
            "no stall at line {line}: {seen:?}"
        );
    }
}

both_drivers! {
    fn fast_tasks_and_an_unset_threshold_report_nothing() {
        let seen: Seen = Arc::default();
        stall_builder(&seen).build().unwrap().block_on(async {
            for _ in 0..100 {
                corio::spawn(async { corio::nop().await.unwrap() }).await.unwrap();
            }
        });
        assert!(seen.lock().unwrap().is_empty());
        // Off (the default): a hook alone turns nothing on.
        let log = seen.clone();
        let rt = support::builder()
            .on_stall(move |r: &StallReport| log.lock().unwrap().push((0, r.to_string(), r.held)))
            .build()
            .unwrap();
        rt.block_on(async {
            corio::spawn(async { hold(Duration::from_millis(120)) }).await.unwrap();
        });
        if std::env::var_os("CORIO_STALL_MS").is_none() {
            assert!(seen.lock().unwrap().is_empty());
        }
    }
}

both_drivers! {
    fn the_main_future_is_reported_where_block_on_was_called() {
        let seen: Seen = Arc::default();
        let rt = stall_builder(&seen).build().unwrap();
        let line = line!() + 1;
        rt.block_on(async { hold(Duration::from_millis(120)) });
        assert_eq!(seen.lock().unwrap()[0].0, line);
    }
}

both_drivers! {
    fn a_dump_lists_live_tasks_with_location_and_op() {
        let rt = support::builder().track_tasks(true).build().unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let mut client = std::net::TcpStream::connect(addr).unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            let (tx, rx) = corio::sync::oneshot::channel::<()>();

            let read_line = line!() + 1;
            let reader = corio::spawn(async move { stream.read(vec![0u8; 16]).await.0.unwrap() });
            let sleep_line = line!() + 1;
            let sleeper = corio::spawn(corio::time::sleep(Duration::from_secs(60)));
            let chan_line = line!() + 1;
            let waiter = corio::spawn(async move { rx.await.is_ok() });
            let done = corio::spawn(async {});
            corio::time::sleep(Duration::from_millis(20)).await;
            assert!(done.is_finished());

            let dump = task_dump();
            print!("{dump}");
            assert_eq!(dump.shard, 0);
            assert_eq!(dump.tasks.len(), 3, "{dump}");
            let find = |line: u32| {
                dump.tasks
                    .iter()
                    .find(|t| t.location.line() == line)
                    .unwrap_or_else(|| panic!("no task from line {line} in\n{dump}"))
            };
            let r = find(read_line);
            assert!(r.location.file().ends_with("runtime_observe.rs"));
            let op = r.waiting_on.expect("the reader waits on an op");
            assert!(op.starts_with("Re"), "the reader waits on {op}");
            assert!(r.idle.unwrap() >= Duration::from_millis(20));
            assert!(r.id.is_some() && r.age.is_some());
            assert_eq!(find(sleep_line).waiting_on, None, "a timer is not an op");
            assert_eq!(find(chan_line).waiting_on, None);

            // Finished tasks vanish.
            client.write_all(b"hi").unwrap();
            assert_eq!(reader.await.unwrap(), 2);
            tx.send(()).unwrap();
            assert!(waiter.await.unwrap());
            let dump = task_dump();
            assert_eq!(dump.tasks.len(), 1, "{dump}");
            assert_eq!(dump.tasks[0].location.line(), sleep_line);
            sleeper.abort();
            let _ = sleeper.await;
            assert!(task_dump().tasks.is_empty());
        });
    }
}

both_drivers! {
    fn without_tracking_a_dump_has_locations_only() {
        support::run(async {
            let line = line!() + 1;
            let sleeper = corio::spawn(corio::time::sleep(Duration::from_secs(60)));
            corio::yield_now().await;
            let dump = task_dump();
            assert_eq!(dump.tasks.len(), 1);
            let t = &dump.tasks[0];
            assert_eq!(t.location.line(), line);
            assert!(t.id.is_none() && t.idle.is_none() && t.waiting_on.is_none());
            sleeper.abort();
        });
    }
}
