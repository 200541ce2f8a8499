//! The macros: `#[corio::main]` (one runtime, shards, a driver),
//! `#[corio::test]` (plain, `both_drivers`, `driver`, with `should_panic` and
//! `Result`), `select!` (patterns, conditions, `else`, `biased`, control
//! flow in handlers, cancel safety in a loop) and `join!`/`try_join!`.
//! Misuse (compile errors) is tested by the `compile_fail` examples in
//! `src/macros.rs` and by unit tests of `corio-macros` (their messages).
#![cfg(feature = "macros")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use corio::sync::{Notify, mpsc};
use corio::time::sleep;

#[corio::main(shards = 2)]
async fn on_two_shards() -> Result<(), String> {
    SHARDS_RAN.fetch_add(1, Ordering::SeqCst);
    if corio::shard::current().id().index() == 1 {
        return Err("shard 1 failed".to_string());
    }
    Ok(())
}

static SHARDS_RAN: AtomicUsize = AtomicUsize::new(0);

#[corio::main(driver = "poll")]
async fn on_the_poll_driver() -> bool {
    corio::yield_now().await;
    corio::runtime::ring_flags().is_none()
}

#[test]
fn main_runs_the_body_on_its_runtime() {
    assert_eq!(on_two_shards(), Err("shard 1 failed".to_string()));
    assert_eq!(SHARDS_RAN.load(Ordering::SeqCst), 2);
    if std::env::var_os("CORIO_DRIVER").is_none() {
        assert!(on_the_poll_driver());
    }
}

#[corio::test]
async fn test_attribute_runs_async_tests() {
    sleep(Duration::from_millis(1)).await;
}

#[corio::test]
async fn test_may_return_a_result() -> std::io::Result<()> {
    corio::nop().await
}

#[corio::test]
#[should_panic(expected = "boom")]
async fn test_keeps_should_panic() {
    corio::yield_now().await;
    panic!("boom");
}

#[corio::test(both_drivers)]
async fn test_on_both_drivers() {
    let (tx, mut rx) = mpsc::channel(1);
    corio::spawn(async move { tx.send(3).await.unwrap() });
    assert_eq!(rx.recv().await, Some(3));
}

#[corio::test(driver = "poll")]
async fn test_on_a_chosen_driver() {
    if std::env::var_os("CORIO_DRIVER").is_none() {
        assert!(corio::runtime::ring_flags().is_none());
    }
}

#[corio::test(both_drivers)]
async fn select_picks_the_first_ready_and_drops_the_rest() {
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let g = Guard(dropped.clone());
    let slow = async move {
        let _g = g;
        sleep(Duration::from_secs(10)).await;
        1
    };
    let v = corio::select! {
        v = slow => v,
        v = async { 2 } => v * 10,
    };
    assert_eq!(v, 20);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the losing future was dropped"
    );
}

#[corio::test(both_drivers)]
async fn select_patterns_conditions_else_and_biased() {
    // A non-matching output disables the branch; the others go on.
    let v = corio::select! {
        biased;
        Some(x) = async { None::<u8> } => x,
        Ok(mut y) = async { Ok::<u8, ()>(4) } => { y += 1; y }
    };
    assert_eq!(v, 5);
    // A false condition disables its branch (its future is still made).
    let made = AtomicUsize::new(0);
    let v = corio::select! {
        x = async { made.fetch_add(1, Ordering::SeqCst); 1 }, if false => x,
        x = async { 2 } => x,
    };
    assert_eq!((v, made.load(Ordering::SeqCst)), (2, 0));
    // Every branch disabled: `else`.
    let v = corio::select! {
        Some(x) = async { None::<u8> } => x,
        _ = async {}, if false => 1,
        else => 9,
    };
    assert_eq!(v, 9);
    // `biased` polls in order: the first ready branch wins every time.
    for _ in 0..20 {
        let v = corio::select! { biased; a = async { 'a' } => a, b = async { 'b' } => b };
        assert_eq!(v, 'a');
    }
    // Without it the start rotates: both win sometimes.
    let mut seen = [false; 2];
    for _ in 0..64 {
        let v = corio::select! { a = async { 0 } => a, b = async { 1 } => b };
        seen[v] = true;
    }
    assert_eq!(seen, [true, true]);
}

#[test]
#[should_panic(expected = "every branch is disabled")]
fn select_without_else_panics_when_all_are_disabled() {
    corio::run(async {
        corio::select! {
            Some(x) = async { None::<u8> } => x,
        };
    });
}

async fn handler_control_flow() -> Result<u32, String> {
    let mut n = 0;
    loop {
        n += 1;
        corio::select! {
            _ = async {} => {
                if n < 3 {
                    continue;
                }
                if n == 3 {
                    break;
                }
            }
        }
    }
    let r: Result<u32, String> = Err("stop".into());
    corio::select! {
        v = async { r } => { v?; }
    }
    Ok(n)
}

#[corio::test]
async fn select_handlers_control_the_surrounding_code() {
    assert_eq!(handler_control_flow().await, Err("stop".to_string()));
}

#[corio::test(both_drivers)]
async fn select_in_a_loop_with_cancel_safe_receives() {
    // Two channels and a notification raced in a loop: nothing lost.
    let (a_tx, mut a_rx) = mpsc::unbounded_channel::<u32>();
    let (b_tx, mut b_rx) = mpsc::unbounded_channel::<u32>();
    let stop = Arc::new(Notify::new());
    let s = stop.clone();
    let producer = corio::spawn(async move {
        for i in 0..500 {
            if i % 2 == 0 {
                a_tx.send(i).unwrap()
            } else {
                b_tx.send(i).unwrap()
            }
            if i % 50 == 0 {
                corio::yield_now().await;
            }
        }
        s.notify_one();
    });
    let (mut sum, mut stopped) = (0, false);
    let mut open = (true, true);
    while open.0 || open.1 || !stopped {
        corio::select! {
            v = a_rx.recv(), if open.0 => match v { Some(v) => sum += v, None => open.0 = false },
            v = b_rx.recv(), if open.1 => match v { Some(v) => sum += v, None => open.1 = false },
            _ = stop.notified(), if !stopped => stopped = true,
        }
    }
    producer.await.unwrap();
    assert_eq!(sum, (0..500).sum());
}

#[corio::test]
async fn join_and_try_join() {
    let (a, b, c) = corio::join!(
        async {
            sleep(Duration::from_millis(2)).await;
            1
        },
        async { "b" },
        sleep(Duration::from_millis(1)),
    );
    assert_eq!((a, b, c), (1, "b", ()));
    let () = corio::join!();
    let ok: Result<(u8, u8), String> = corio::try_join!(async { Ok(1) }, async { Ok(2) });
    assert_eq!(ok, Ok((1, 2)));
    // The first error wins and the rest are dropped.
    let err: Result<(u8, ()), &str> = corio::try_join!(
        async {
            sleep(Duration::from_secs(10)).await;
            Ok(1)
        },
        async { Err("failed") },
    );
    assert_eq!(err, Err("failed"));
}
