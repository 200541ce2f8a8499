//! `TaskGroup`: join order, join_all, failures, abort on drop, shutdown.

mod support;

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;

use corio::TaskGroup;
use corio::time::{sleep, timeout};

/// Bound for every wait here: a hang fails the test instead.
const GUARD: Duration = Duration::from_secs(10);

/// Spawns into `group` a task that sleeps for an hour, then returns `out`;
/// the flag turns true when its future is gone.
fn spawn_sleeper<T: 'static>(group: &mut TaskGroup<T>, out: T) -> Rc<Cell<bool>> {
    let (flag, dropped) = support::DropFlag::new();
    group.spawn(async move {
        let _flag = flag;
        sleep(Duration::from_secs(3600)).await;
        out
    });
    dropped
}

both_drivers! {
fn join_next_yields_results_as_tasks_finish() {
    support::run(async {
        let mut group = TaskGroup::new();
        assert!(group.is_empty());
        assert!(group.join_next().await.is_none(), "an empty group has nothing to join");
        for ms in [40u64, 0, 20, 10] {
            group.spawn(async move {
                sleep(Duration::from_millis(ms)).await;
                ms
            });
        }
        assert_eq!(group.len(), 4);
        let mut order = Vec::new();
        while let Some(res) = timeout(GUARD, group.join_next()).await.unwrap() {
            order.push(res.unwrap());
        }
        assert_eq!(order, [0, 10, 20, 40]);
        assert!(group.is_empty());
    });
}
}

both_drivers! {
fn join_all_returns_outputs_in_spawn_order() {
    support::run(async {
        let mut group = TaskGroup::new();
        for i in 0..100u64 {
            group.spawn(async move {
                // Finish in an order unlike the spawn order.
                sleep(Duration::from_micros((i * 7919) % 3000)).await;
                i
            });
        }
        let out = timeout(GUARD, group.join_all()).await.unwrap();
        assert_eq!(out, (0..100).collect::<Vec<_>>());
    });
}
}

both_drivers! {
fn ten_thousand_tasks_each_joined_once() {
    support::run(async {
        let mut group = TaskGroup::new();
        for i in 0..10_000u32 {
            group.spawn(async move {
                if i % 3 == 0 {
                    corio::yield_now().await;
                }
                i
            });
        }
        let mut seen = vec![false; 10_000];
        let mut n = 0;
        while let Some(res) = timeout(GUARD, group.join_next()).await.unwrap() {
            let i = res.unwrap() as usize;
            assert!(!seen[i], "task {i} joined twice");
            seen[i] = true;
            n += 1;
        }
        assert_eq!(n, 10_000);
        assert!(group.try_join_next().is_none());
    });
}
}

both_drivers! {
fn a_panicking_task_is_a_join_error_and_the_others_go_on() {
    support::run(async {
        let mut group = TaskGroup::new();
        group.spawn(async { panic!("boom") });
        group.spawn(async {
            sleep(Duration::from_millis(5)).await;
            7
        });
        let first = timeout(GUARD, group.join_next()).await.unwrap().unwrap();
        let err = first.unwrap_err();
        assert!(err.is_panic());
        assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "boom");
        let second = timeout(GUARD, group.join_next()).await.unwrap().unwrap();
        assert_eq!(second.unwrap(), 7);
    });
}
}

both_drivers! {
fn join_all_aborts_the_others_and_resumes_a_panic() {
    support::run(async {
        let mut group = TaskGroup::new();
        let dropped = spawn_sleeper(&mut group, 0);
        group.spawn(async {
            sleep(Duration::from_millis(2)).await;
            panic!("second task failed")
        });
        let joined = corio::spawn(group.join_all());
        let err = timeout(GUARD, joined).await.unwrap().unwrap_err();
        assert!(err.is_panic(), "join_all must fail with the task's panic");
        assert_eq!(
            *err.into_panic().downcast::<&str>().unwrap(),
            "second task failed"
        );
        assert!(dropped.get(), "the sleeping task was not aborted");
    });
}
}

both_drivers! {
fn dropping_the_group_aborts_its_tasks() {
    support::run(async {
        let dropped = Rc::new(Cell::new(0));
        let ran_on = Rc::new(Cell::new(false));
        let mut group = TaskGroup::new();
        for _ in 0..50 {
            let dropped = dropped.clone();
            let ran_on = ran_on.clone();
            group.spawn(async move {
                struct Count(Rc<Cell<u32>>);
                impl Drop for Count {
                    fn drop(&mut self) {
                        self.0.set(self.0.get() + 1);
                    }
                }
                let _c = Count(dropped);
                sleep(Duration::from_secs(3600)).await;
                ran_on.set(true);
            });
        }
        corio::yield_now().await; // every task is now parked in its sleep
        drop(group);
        let deadline = std::time::Instant::now() + GUARD;
        while dropped.get() < 50 {
            assert!(std::time::Instant::now() < deadline, "tasks outlived their group");
            corio::yield_now().await;
        }
        assert!(!ran_on.get(), "an aborted task ran past its sleep");
    });
}
}

both_drivers! {
fn shutdown_waits_until_every_task_is_gone() {
    support::run(async {
        let mut group = TaskGroup::new();
        let dropped = spawn_sleeper(&mut group, ());
        group.spawn(async {});
        timeout(GUARD, group.shutdown()).await.unwrap();
        assert!(dropped.get());
        assert!(group.is_empty());
        // The group is usable again.
        group.spawn(async {});
        assert!(timeout(GUARD, group.join_next()).await.unwrap().unwrap().is_ok());
    });
}
}

both_drivers! {
fn abort_all_gives_cancelled_errors_and_a_dropped_join_next_loses_nothing() {
    support::run(async {
        let mut group = TaskGroup::new();
        group.spawn(async {
            sleep(Duration::from_secs(3600)).await;
            1
        });
        group.spawn(async { 2 });
        // A join_next dropped before it completes: the finished task stays.
        let r = timeout(Duration::from_millis(0), group.join_next()).await;
        let mut got = r.ok().flatten().map(|r| r.unwrap());
        if got.is_none() {
            got = timeout(GUARD, group.join_next()).await.unwrap().map(|r| r.unwrap());
        }
        assert_eq!(got, Some(2));
        group.abort_all();
        let last = timeout(GUARD, group.join_next()).await.unwrap().unwrap();
        assert!(last.unwrap_err().is_cancelled());
        assert!(group.join_next().await.is_none());
    });
}
}

#[test]
fn spawn_outside_a_runtime_panics_with_advice() {
    let mut group = TaskGroup::<()>::new();
    let err = std::panic::catch_unwind(AssertUnwindSafe(|| group.spawn(async {}))).unwrap_err();
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap();
    assert!(msg.contains("inside a corio runtime"), "{msg}");
    assert!(group.is_empty());
}

both_drivers! {
fn fail_fast_aborts_siblings_and_hands_out_the_failure_first() {
    support::run(async {
        let mut group: TaskGroup<Result<u32, String>> = TaskGroup::fail_fast();
        let quick = corio::spawn(async {}); // a task outside the group is untouched
        group.spawn(async { Ok(1) });
        let s1 = spawn_sleeper(&mut group, Ok(2));
        let s2 = spawn_sleeper(&mut group, Ok(3));
        group.spawn(async {
            sleep(Duration::from_millis(20)).await;
            Err("boom".to_string())
        });
        // The first finished task (Ok(1)) reached the ready list before the
        // failure, but the failure is handed out first.
        sleep(Duration::from_millis(60)).await;
        let first = timeout(GUARD, group.join_next()).await.unwrap().unwrap();
        assert_eq!(first.unwrap(), Err("boom".to_string()));
        assert!(s1.get() && s2.get(), "siblings are aborted as the failure returns");
        // A task spawned after the failure is aborted before it runs.
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        group.spawn(async move {
            r.set(true);
            Ok(4)
        });
        let mut ok = Vec::new();
        let mut cancelled = 0;
        while let Some(res) = timeout(GUARD, group.join_next()).await.unwrap() {
            match res {
                Ok(v) => ok.push(v),
                Err(e) => {
                    assert!(e.is_cancelled());
                    cancelled += 1;
                }
            }
        }
        assert_eq!(ok, vec![Ok(1)]);
        assert_eq!(cancelled, 3);
        assert!(!ran.get());
        quick.await.unwrap();
    });
}
}

both_drivers! {
fn try_join_all_returns_the_first_error_or_every_value() {
    support::run(async {
        let mut group: TaskGroup<Result<u32, &str>> = TaskGroup::fail_fast();
        for i in 0..5u32 {
            group.spawn(async move {
                sleep(Duration::from_millis(u64::from(5 - i) * 5)).await;
                Ok(i)
            });
        }
        assert_eq!(group.try_join_all().await, Ok(vec![0, 1, 2, 3, 4]));

        let mut group: TaskGroup<Result<u32, &str>> = TaskGroup::fail_fast();
        let sleeper = spawn_sleeper(&mut group, Ok(0));
        group.spawn(async {
            sleep(Duration::from_millis(30)).await;
            Err("late")
        });
        group.spawn(async {
            sleep(Duration::from_millis(10)).await;
            Err("early")
        });
        let res = timeout(GUARD, group.try_join_all()).await.unwrap();
        assert_eq!(res, Err("early"), "the first failure in time wins");
        assert!(sleeper.get());

        // Without fail-fast, try_join_all still stops at the first Err it joins.
        let mut group: TaskGroup<Result<u32, &str>> = TaskGroup::new();
        let sleeper = spawn_sleeper(&mut group, Ok(0));
        group.spawn(async { Err("plain") });
        assert_eq!(timeout(GUARD, group.try_join_all()).await.unwrap(), Err("plain"));
        assert!(sleeper.get());
    });
}
}

both_drivers! {
fn fail_fast_ignores_ok_results_and_panics_stay_panics() {
    support::run(async {
        let mut group: TaskGroup<Result<u32, ()>> = TaskGroup::fail_fast();
        let sleeper = spawn_sleeper(&mut group, Ok(0));
        group.spawn(async { panic!("a panic is not an Err") });
        let res = timeout(GUARD, group.join_next()).await.unwrap().unwrap();
        assert!(res.unwrap_err().is_panic());
        assert!(!sleeper.get(), "a panic does not trigger fail-fast");
        group.spawn(async { Ok(5) });
        let res = timeout(GUARD, group.join_next()).await.unwrap().unwrap();
        assert_eq!(res.unwrap(), Ok(5));
        group.shutdown().await;
        assert!(sleeper.get());
    });
}
}
