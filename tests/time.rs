//! Timers: sleep, sleep_until, timeout (also around I/O), interval and missed ticks, Sleep::reset.

mod support;

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use corio::net::{TcpListener, TcpStream};
use corio::time::{
    Elapsed, MissedTickBehavior, Sleep, interval, interval_at, sleep, sleep_until, timeout,
    timeout_at,
};

/// Hang guard: far longer than any wait in these tests.
const GUARD: Duration = Duration::from_secs(5);

/// A tiny deterministic PRNG (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Polls `fut` exactly once; true if it completed.
async fn ready_at_once<F: Future + Unpin>(fut: &mut F) -> bool {
    poll_fn(|cx| Poll::Ready(Pin::new(&mut *fut).poll(cx).is_ready())).await
}

both_drivers! {
fn sleep_waits_at_least_its_duration() {
    support::run(async {
        for us in [0, 1, 50, 500, 1_000, 3_000, 10_000, 25_000] {
            let d = Duration::from_micros(us);
            let start = Instant::now();
            timeout(GUARD, sleep(d)).await.expect("sleep hung");
            let took = start.elapsed();
            assert!(took >= d, "sleep({d:?}) returned after {took:?}");
        }
    });
}
}

both_drivers! {
fn sleep_in_spawned_tasks_waits_at_least_its_duration() {
    support::run(async {
        let handles: Vec<_> = (1..=20u64)
            .map(|ms| {
                corio::spawn(async move {
                    let d = Duration::from_millis(ms);
                    let start = Instant::now();
                    sleep(d).await;
                    start.elapsed() >= d
                })
            })
            .collect();
        for h in handles {
            assert!(timeout(GUARD, h).await.unwrap().unwrap());
        }
    });
}
}

both_drivers! {
fn sleep_until_past_or_now_completes_at_once() {
    support::run(async {
        let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
        let mut s = sleep_until(past);
        assert!(s.is_elapsed());
        assert!(ready_at_once(&mut s).await, "sleep_until(past) was pending");
        assert!(ready_at_once(&mut sleep_until(Instant::now())).await);
        assert!(ready_at_once(&mut sleep(Duration::ZERO)).await);
        // A deadline in the future is pending on its first poll.
        assert!(!ready_at_once(&mut sleep(Duration::from_secs(60))).await);
    });
}
}

both_drivers! {
fn sleep_with_huge_duration_does_not_overflow() {
    support::run(async {
        let mut s = sleep(Duration::MAX);
        assert!(!s.is_elapsed());
        assert!(!ready_at_once(&mut s).await);
        assert!(timeout(Duration::from_millis(5), s).await.is_err());
    });
}
}

both_drivers! {
fn ten_thousand_timers_all_fire_not_before_deadline() {
    const N: usize = 10_000;
    support::run(async {
        let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
        let base = Instant::now();
        let fired = Rc::new(Cell::new(0usize));
        let early = Rc::new(Cell::new(0usize));
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let deadline = base + Duration::from_micros(rng.below(50_000));
                let (fired, early) = (fired.clone(), early.clone());
                corio::spawn(async move {
                    sleep_until(deadline).await;
                    if Instant::now() < deadline {
                        early.set(early.get() + 1);
                    }
                    fired.set(fired.get() + 1);
                })
            })
            .collect();
        timeout(GUARD, async {
            for h in handles {
                h.await.unwrap();
            }
        })
        .await
        .expect("not every timer fired");
        assert_eq!(fired.get(), N);
        assert_eq!(early.get(), 0, "timers fired before their deadline");
        println!(
            "{N} timers done {:?} after the first deadline window opened",
            base.elapsed()
        );
    });
}
}

both_drivers! {
fn timeout_elapses_and_drops_inner_future() {
    support::run(async {
        let (flag, dropped) = support::DropFlag::new();
        let inner = async move {
            let _flag = flag;
            sleep(Duration::from_secs(60)).await;
            "finished"
        };
        let d = Duration::from_millis(10);
        let start = Instant::now();
        let res = timeout(GUARD, timeout(d, inner))
            .await
            .expect("timeout hung");
        assert!(start.elapsed() >= d);
        let err: Elapsed = res.unwrap_err();
        assert!(dropped.get(), "inner future not dropped after Elapsed");
        assert_eq!(err.to_string(), "deadline has elapsed");
        assert_eq!(
            std::io::Error::from(err).kind(),
            std::io::ErrorKind::TimedOut
        );

        // A future that never completes, with a zero timeout.
        let res = timeout(Duration::ZERO, std::future::pending::<()>()).await;
        assert!(res.is_err());

        // timeout_at with an absolute deadline.
        let deadline = Instant::now() + Duration::from_millis(5);
        let res = timeout_at(deadline, sleep(Duration::from_secs(60))).await;
        assert!(res.is_err() && Instant::now() >= deadline);
    });
}
}

both_drivers! {
fn timeout_on_ready_future_is_ok() {
    support::run(async {
        assert_eq!(timeout(GUARD, async { 7 }).await, Ok(7));
        // The inner future is polled first, so even a zero or past deadline
        // lets a ready future through.
        assert_eq!(timeout(Duration::ZERO, async { 8 }).await, Ok(8));
        let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
        assert_eq!(timeout_at(past, async { 9 }).await, Ok(9));
        assert_eq!(timeout(Duration::MAX, async { 10 }).await, Ok(10));
        // A future that finishes before the deadline.
        let res = timeout(GUARD, sleep(Duration::from_millis(2))).await;
        assert_eq!(res, Ok(()));
        // into_inner gives the future back untouched.
        let t = timeout(Duration::ZERO, async { 11 });
        assert_eq!(t.into_inner().await, 11);
    });
}
}

both_drivers! {
fn timeout_around_tcp_read_leaves_socket_usable() {
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        for round in 0..20u32 {
            let d = Duration::from_millis(u64::from(round % 4) * 3);
            let start = Instant::now();
            let res = timeout(d, server.read(Vec::with_capacity(64))).await;
            assert!(res.is_err(), "read with no data did not time out");
            assert!(start.elapsed() >= d);
            // Bytes sent after the timeout are read by the next read.
            let msg = format!("round {round}").into_bytes();
            client.write_all(msg.clone()).await.0.unwrap();
            let (res, buf) = timeout(GUARD, server.read_exact(Vec::with_capacity(msg.len())))
                .await
                .unwrap();
            res.unwrap();
            assert_eq!(buf, msg);
        }
    });
}
}

both_drivers! {
fn timeout_racing_tcp_reads_loses_no_bytes() {
    // A std thread writes numbered chunks at random intervals while reads are
    // cut short by random timeouts; the bytes read must be the bytes sent.
    const CHUNKS: u32 = 600;
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            let mut rng = Rng(77);
            for i in 0..CHUNKS {
                s.write_all(format!("<{i}>").as_bytes()).unwrap();
                std::thread::sleep(Duration::from_micros(rng.below(1500)));
            }
        });
        let (server, _) = listener.accept().await.unwrap();
        let want: Vec<u8> = (0..CHUNKS)
            .flat_map(|i| format!("<{i}>").into_bytes())
            .collect();
        let mut got = Vec::new();
        let mut rng = Rng(99);
        let mut timed_out = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while got.len() < want.len() {
            assert!(Instant::now() < deadline, "stalled at {} bytes", got.len());
            let d = match rng.below(4) {
                0 => Duration::ZERO,
                _ => Duration::from_micros(rng.below(1000)),
            };
            match timeout(d, server.read(Vec::with_capacity(7))).await {
                Ok((res, buf)) => {
                    assert!(res.unwrap() > 0, "early EOF at {} bytes", got.len());
                    got.extend_from_slice(&buf);
                }
                Err(_) => timed_out += 1,
            }
        }
        writer.join().unwrap();
        assert!(timed_out > 0, "no read timed out: the test tests nothing");
        assert!(got == want, "bytes lost, repeated or reordered");
        let (res, _) = timeout(GUARD, server.read(Vec::with_capacity(8)))
            .await
            .unwrap();
        assert_eq!(res.unwrap(), 0, "EOF after the writer is gone");
    });
}
}

both_drivers! {
fn interval_ticks_on_schedule() {
    support::run(async {
        let period = Duration::from_millis(10);
        let mut iv = interval(period);
        assert_eq!(iv.period(), period);
        assert_eq!(iv.missed_tick_behavior(), MissedTickBehavior::Burst);
        // The first tick completes at once.
        let first = {
            let mut tick = std::pin::pin!(iv.tick());
            match poll_fn(|cx| Poll::Ready(tick.as_mut().poll(cx))).await {
                Poll::Ready(at) => at,
                Poll::Pending => panic!("the first tick was pending"),
            }
        };
        for k in 1..=5u32 {
            let at = timeout(GUARD, iv.tick()).await.unwrap();
            assert_eq!(at, first + period * k);
            assert!(Instant::now() >= at, "tick {k} came early");
        }

        // interval_at with a start in the future: the first tick waits for it.
        let start = Instant::now() + Duration::from_millis(15);
        let mut iv = interval_at(start, period);
        assert_eq!(timeout(GUARD, iv.tick()).await.unwrap(), start);
        assert!(Instant::now() >= start);
        assert_eq!(timeout(GUARD, iv.tick()).await.unwrap(), start + period);

        // reset: the next tick is one period after the reset.
        let before = Instant::now();
        iv.reset();
        let at = timeout(GUARD, iv.tick()).await.unwrap();
        assert!(at >= before + period, "reset tick at {:?}", at - before);
        assert!(Instant::now() >= at);
    });
}
}

both_drivers! {
fn interval_tick_dropped_by_timeout_loses_no_tick() {
    support::run(async {
        let period = Duration::from_millis(3);
        let mut iv = interval(period);
        let first = iv.tick().await;
        let mut rng = Rng(3);
        let mut ticks = Vec::new();
        let mut dropped = 0;
        let deadline = Instant::now() + GUARD;
        while ticks.len() < 30 {
            assert!(Instant::now() < deadline, "interval stalled");
            // The first try always times out (a tick is 3 ms away), so a
            // dropped tick is tested even when a busy machine lets no random
            // timeout fire before its tick.
            let d = if dropped == 0 && ticks.is_empty() {
                Duration::ZERO
            } else {
                Duration::from_micros(rng.below(3000))
            };
            match timeout(d, iv.tick()).await {
                Ok(at) => ticks.push(at),
                Err(_) => dropped += 1,
            }
        }
        assert!(dropped > 0, "no tick was dropped: the test tests nothing");
        // A dropped tick() leaves the schedule as it was: no tick skipped.
        let want: Vec<Instant> = (1..=30).map(|k| first + period * k).collect();
        assert_eq!(ticks, want);
    });
}
}

#[test]
#[should_panic(expected = "non-zero")]
fn interval_zero_period_panics() {
    let _ = interval(Duration::ZERO);
}

/// Ticks an interval once, stalls the thread for 3.5 periods, then ticks four
/// more times. Returns `(first tick, end of stall, the four ticks, the instant
/// the first tick after the stall returned)`.
async fn stalled_interval(
    b: MissedTickBehavior,
    period: Duration,
) -> (Instant, Instant, [Instant; 4], Instant) {
    let mut iv = interval(period);
    iv.set_missed_tick_behavior(b);
    assert_eq!(iv.missed_tick_behavior(), b);
    let t0 = iv.tick().await;
    std::thread::sleep(period * 7 / 2);
    let stall_end = Instant::now();
    let mut ticks = [t0; 4];
    let mut after_first = t0;
    for (i, t) in ticks.iter_mut().enumerate() {
        *t = timeout(GUARD, iv.tick()).await.unwrap();
        assert!(Instant::now() >= *t, "{b:?}: tick came before its instant");
        if i == 0 {
            after_first = Instant::now();
        }
    }
    (t0, stall_end, ticks, after_first)
}

/// True when `t` lies on the schedule `t0 + k × period`.
fn on_grid(t0: Instant, period: Duration, t: Instant) -> bool {
    (t - t0).as_nanos().is_multiple_of(period.as_nanos())
}

both_drivers! {
fn missed_ticks_burst() {
    support::run(async {
        let p = Duration::from_millis(20);
        let (t0, _, ticks, _) = stalled_interval(MissedTickBehavior::Burst, p).await;
        // Every missed tick fires, back to back, and the original schedule
        // continues.
        assert_eq!(ticks, [t0 + p, t0 + p * 2, t0 + p * 3, t0 + p * 4]);
    });
}
}

both_drivers! {
fn missed_ticks_delay() {
    support::run(async {
        let p = Duration::from_millis(20);
        let (t0, stall_end, ticks, after_first) =
            stalled_interval(MissedTickBehavior::Delay, p).await;
        // The overdue tick fires, then the schedule restarts a full period
        // after it.
        assert_eq!(ticks[0], t0 + p);
        assert!(
            ticks[1] >= stall_end + p,
            "next tick less than a period after the stall"
        );
        assert!(
            ticks[1] <= after_first + p,
            "next tick more than a period after the late one"
        );
        assert!(ticks[2] >= ticks[1] + p && ticks[3] >= ticks[2] + p);
    });
}
}

both_drivers! {
fn missed_ticks_skip() {
    support::run(async {
        let p = Duration::from_millis(20);
        let (t0, stall_end, ticks, after_first) =
            stalled_interval(MissedTickBehavior::Skip, p).await;
        // The overdue tick fires, then the missed ones are skipped: the next
        // tick is the first one of the original schedule still ahead.
        assert_eq!(ticks[0], t0 + p);
        assert!(on_grid(t0, p, ticks[1]), "skip left the schedule");
        assert!(ticks[1] > stall_end, "a missed tick was not skipped");
        assert!(ticks[1] >= t0 + p * 4);
        assert!(ticks[1] - p <= after_first, "skipped a tick still ahead");
        for w in ticks[1..].windows(2) {
            assert!(on_grid(t0, p, w[1]) && w[1] > w[0]);
        }
    });
}
}

both_drivers! {
fn sleep_reset() {
    support::run(async {
        // Registered with a far deadline, then moved closer.
        let mut s = sleep(Duration::from_secs(60));
        assert!(!ready_at_once(&mut s).await);
        let d = Duration::from_millis(15);
        let start = Instant::now();
        s.reset(start + d);
        assert_eq!(s.deadline(), start + d);
        timeout(GUARD, &mut s).await.expect("reset sleep hung");
        assert!(Instant::now() >= start + d && s.is_elapsed());

        // A finished sleep becomes pending again when reset.
        let again = Instant::now() + Duration::from_millis(10);
        s.reset(again);
        assert!(!s.is_elapsed());
        assert!(!ready_at_once(&mut s).await);
        timeout(GUARD, &mut s).await.unwrap();
        assert!(Instant::now() >= again);

        // Moved later after registering: the old deadline must not fire it.
        let mut s = sleep(Duration::from_millis(2));
        assert!(!ready_at_once(&mut s).await);
        let later = Instant::now() + Duration::from_millis(30);
        s.reset(later);
        timeout(GUARD, &mut s).await.unwrap();
        assert!(Instant::now() >= later, "fired at the old deadline");

        // Moved into the past: ready at once.
        s.reset(
            Instant::now()
                .checked_sub(Duration::from_millis(1))
                .unwrap(),
        );
        assert!(ready_at_once(&mut s).await);
    });
}
}

both_drivers! {
fn dropping_ten_thousand_sleeps_leaves_runtime_usable() {
    support::run(async {
        // Half will have fired (woken, never polled again), half are pending.
        let soon = Instant::now() + Duration::from_millis(50);
        let mut sleeps: Vec<Sleep> = (0..10_000u64)
            .map(|i| {
                if i % 2 == 0 {
                    sleep_until(soon + Duration::from_micros(i % 500))
                } else {
                    sleep(Duration::from_secs(30 + i))
                }
            })
            .collect();
        poll_fn(|cx| {
            for (i, s) in sleeps.iter_mut().enumerate() {
                let polled = Pin::new(s).poll(cx);
                // The short ones may already be due where making 10,000
                // sleeps takes 50 ms (valgrind); the long ones never are.
                assert!(i % 2 == 0 || polled.is_pending(), "a 30 s sleep fired");
            }
            Poll::Ready(())
        })
        .await;
        std::thread::sleep(
            (soon + Duration::from_millis(1)).saturating_duration_since(Instant::now()),
        );
        corio::yield_now().await; // lets the runtime fire the due ones
        drop(sleeps);

        // Tasks blocked in sleeps, aborted.
        let handles: Vec<_> = (0..1000)
            .map(|_| corio::spawn(sleep(Duration::from_secs(30))))
            .collect();
        corio::yield_now().await;
        for h in &handles {
            h.abort();
        }
        for h in handles {
            assert!(timeout(GUARD, h).await.unwrap().is_err());
        }

        // New timers still fire, not early, and none hangs.
        let d = Duration::from_millis(10);
        let start = Instant::now();
        timeout(GUARD, sleep(d))
            .await
            .expect("sleep hung after drops");
        assert!(start.elapsed() >= d);
        let mut rng = Rng(5);
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let deadline = Instant::now() + Duration::from_micros(rng.below(20_000));
                corio::spawn(async move {
                    sleep_until(deadline).await;
                    Instant::now() >= deadline
                })
            })
            .collect();
        for h in handles {
            assert!(timeout(GUARD, h).await.unwrap().unwrap());
        }
    });
}
}
