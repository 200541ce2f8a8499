//! `ContextVar`: per-task values inherited at spawn, as asyncio's contextvars.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use corio::{ContextVar, TaskGroup};

static NAME: ContextVar<&'static str> = ContextVar::new("name");
static NUM: ContextVar<u64> = ContextVar::new("num");
static TRACKED: ContextVar<Tracked> = ContextVar::new_local("tracked");

/// Counts live values, to show contexts are freed with their tasks.
struct Tracked(Rc<Cell<i32>>);

impl Tracked {
    fn new(live: &Rc<Cell<i32>>) -> Tracked {
        live.set(live.get() + 1);
        Tracked(live.clone())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

both_drivers! {
fn children_see_a_snapshot_and_their_changes_stay_their_own() {
    support::run(async {
        assert_eq!(NAME.get(), None);
        NAME.set("parent");
        NUM.set(1);
        let child = corio::spawn(async {
            let seen = (NAME.get(), NUM.get());
            corio::yield_now().await;
            // The parent changed NUM after spawning: not seen here.
            let after_yield = NUM.get();
            NAME.set("child");
            NUM.remove();
            let grandchild = corio::spawn(async { (NAME.get(), NUM.get()) });
            (seen, after_yield, grandchild.await.unwrap(), NAME.get())
        });
        NUM.set(2);
        let (seen, after_yield, grandchild, own) = child.await.unwrap();
        assert_eq!(seen, (Some("parent"), Some(1)));
        assert_eq!(after_yield, Some(1));
        assert_eq!(grandchild, (Some("child"), None));
        assert_eq!(own, Some("child"));
        assert_eq!((NAME.get(), NUM.get()), (Some("parent"), Some(2)));
    });
}
}

both_drivers! {
fn interleaved_tasks_keep_their_values_across_awaits() {
    support::run(async {
        let mut group = TaskGroup::new();
        for i in 0..50u64 {
            group.spawn(async move {
                NUM.set(i);
                for round in 0..5u64 {
                    corio::time::sleep(Duration::from_micros((i * 37 + round * 11) % 200)).await;
                    assert_eq!(NUM.get(), Some(i), "task {i} saw another task's value");
                    NUM.set(i);
                }
                NUM.get().unwrap()
            });
        }
        assert_eq!(group.join_all().await, (0..50).collect::<Vec<_>>());
        assert_eq!(NUM.get(), None, "tasks leaked their values into block_on's context");
    });
}
}

both_drivers! {
fn a_panicking_task_leaves_the_pollers_context_alone() {
    support::run(async {
        NAME.set("main");
        let t = corio::spawn(async {
            NAME.set("doomed");
            panic!("task panics with its own value set");
        });
        assert!(t.await.unwrap_err().is_panic());
        assert_eq!(NAME.get(), Some("main"));
    });
}
}

both_drivers! {
fn values_are_freed_with_the_tasks_that_hold_them() {
    let live = Rc::new(Cell::new(0));
    support::run({
        let live = live.clone();
        async move {
            TRACKED.set(Tracked::new(&live));
            let mut group = TaskGroup::new();
            for _ in 0..20 {
                let live = live.clone();
                group.spawn(async move {
                    // Inherited (shared, not copied), then replaced by its own.
                    assert!(TRACKED.with(|t| t.is_some()));
                    TRACKED.set(Tracked::new(&live));
                    corio::yield_now().await;
                });
            }
            group.join_all().await;
            assert_eq!(live.get(), 1, "only block_on's value is left");
            TRACKED.remove();
            assert_eq!(live.get(), 0);
        }
    });
    assert_eq!(live.get(), 0);
}
}

both_drivers! {
fn other_shards_start_empty_and_blocking_closures_see_a_copy() {
    let out = support::builder()
        .shards(2)
        .run(|shard| async move {
            NUM.set(100 + shard.index() as u64);
            let other = corio::shard::ShardId::new(1 - shard.index());
            let remote = corio::spawn_on(other, async { NUM.get() }).await.unwrap();
            let blocking = corio::spawn_blocking(|| NUM.get()).await.unwrap();
            (remote, blocking, NUM.get())
        })
        .unwrap();
    assert_eq!(
        out,
        vec![(None, Some(100), Some(100)), (None, Some(101), Some(101))]
    );
}
}

both_drivers! {
fn spawn_blocking_sees_the_callers_values_and_its_changes_stay_there() {
    let rt = support::builder().max_blocking_threads(1).build().unwrap();
    rt.block_on(async {
        NAME.set("caller");
        NUM.set(7);
        TRACKED.remove();
        let seen = corio::spawn_blocking(|| {
            let before = (NAME.get(), NUM.get());
            NUM.set(8);
            NAME.remove();
            (before, NUM.get(), NAME.get())
        })
        .await
        .unwrap();
        assert_eq!(seen, ((Some("caller"), Some(7)), Some(8), None));
        // The caller's own values are untouched.
        assert_eq!((NAME.get(), NUM.get()), (Some("caller"), Some(7)));
        // The pool thread (the only one) is back to an empty context, and a
        // later call sees the values of its own caller at that moment.
        NUM.remove();
        let task = corio::spawn(async {
            NUM.set(9);
            corio::spawn_blocking(|| (NAME.get(), NUM.get())).await.unwrap()
        });
        assert_eq!(task.await.unwrap(), (Some("caller"), Some(9)));
        let empty = corio::spawn(async {
            NAME.remove();
            corio::spawn_blocking(|| (NAME.get(), NUM.get())).await.unwrap()
        });
        assert_eq!(empty.await.unwrap(), (None, None));
        NAME.remove();
    });
}
}

both_drivers! {
fn local_variables_stay_on_their_thread() {
    let live = Rc::new(Cell::new(0));
    support::run({
        let live = live.clone();
        async move {
            TRACKED.set(Tracked::new(&live));
            NUM.set(3);
            let seen = corio::spawn_blocking(|| (TRACKED.with(|t| t.is_some()), NUM.get()))
                .await
                .unwrap();
            assert_eq!(seen, (false, Some(3)));
            TRACKED.remove();
            NUM.remove();
        }
    });
    assert_eq!(live.get(), 0);
}
}

#[test]
fn plain_threads_have_their_own_context() {
    NAME.set("main thread");
    let other = std::thread::spawn(|| {
        let before = NAME.get();
        NAME.set("other");
        (before, NAME.get())
    })
    .join()
    .unwrap();
    assert_eq!(other, (None, Some("other")));
    assert_eq!(NAME.get(), Some("main thread"));
    // A runtime's tasks start from the context block_on runs in.
    let seen = corio::run(async { corio::spawn(async { NAME.get() }).await.unwrap() });
    assert_eq!(seen, Some("main thread"));
    NAME.remove();
    assert_eq!(NAME.get(), None);
    assert_eq!(NAME.name(), "name");
}
