//! Signals: every listener on every shard sees each delivery, deliveries
//! that arrive while nobody waits are kept, the previous disposition comes
//! back with the last listener. Each test that changes a disposition runs in
//! a child process of its own (`support::run_in_child`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use corio::signal::{SignalKind, ctrl_c, signal};
use corio::time::{sleep, timeout};

/// Bound for every wait here: a hang fails the test instead.
const GUARD: Duration = Duration::from_secs(10);
/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(100);
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `fut` to completion, failing if it takes `GUARD`. Unlike
/// `timeout`, the deadline is looked at first: a lost wake-up rescued only
/// by the timer's own wake-up fails here instead of passing late.
async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut guard = std::pin::pin!(sleep(GUARD));
    std::future::poll_fn(|cx| {
        if guard.as_mut().poll(cx).is_ready() {
            panic!("{what}: not done after {GUARD:?} (a lost wake-up?)");
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// Waits (without blocking the thread) until `n` shards have arrived.
///
/// A std `Barrier` would block a shard's thread, and with it the wake-ups
/// that thread's ring still has to send to the others.
async fn arrive(count: &AtomicUsize, n: usize) {
    count.fetch_add(1, Ordering::SeqCst);
    while count.load(Ordering::SeqCst) < n {
        sleep(Duration::from_millis(1)).await;
    }
}

/// Sends `sig` to this process.
fn raise(sig: i32) {
    // SAFETY: kill(2) on our own pid.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

/// The handler address (or SIG_DFL/SIG_IGN) installed for `sig`.
fn disposition(sig: i32) -> libc::sighandler_t {
    // SAFETY: sigaction(2) only writes the old action into our zeroed struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

fn set_disposition(sig: i32, handler: libc::sighandler_t) {
    // SAFETY: sigaction(2) with a zeroed action and SIG_DFL/SIG_IGN.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        assert_eq!(libc::sigaction(sig, &act, std::ptr::null_mut()), 0);
    }
}

both_drivers! {
fn every_listener_on_every_shard_sees_each_delivery() {
    if !support::is_child("every_listener_on_every_shard_sees_each_delivery") {
        support::run_in_child("every_listener_on_every_shard_sees_each_delivery", CHILD_TIMEOUT);
        return;
    }
    let ready = Arc::new(AtomicUsize::new(0));
    let out = support::builder()
        .shards(2)
        .run(move |shard| {
            let ready = ready.clone();
            async move {
                let mut a = signal(SignalKind::user_defined1()).unwrap();
                let mut b = signal(SignalKind::user_defined1()).unwrap();
                assert_eq!(a.kind(), SignalKind::user_defined1());
                let mut got = 0;
                for round in 0..3 {
                    // Every listener exists (and waited for the last round)
                    // before the signal goes.
                    arrive(&ready, 2 * (round + 1)).await;
                    if shard.index() == 0 {
                        raise(libc::SIGUSR1);
                    }
                    let both = async {
                        a.recv().await.unwrap();
                        b.recv().await.unwrap();
                    };
                    within(&format!("round {round}"), both).await;
                    got += 1;
                }
                got
            }
        })
        .unwrap();
    assert_eq!(out, vec![3, 3]);
}
}

both_drivers! {
fn deliveries_while_nobody_waits_are_kept_and_coalesce() {
    if !support::is_child("deliveries_while_nobody_waits_are_kept_and_coalesce") {
        support::run_in_child("deliveries_while_nobody_waits_are_kept_and_coalesce", CHILD_TIMEOUT);
        return;
    }
    support::run(async {
        let mut sig = signal(SignalKind::user_defined2()).unwrap();
        // Nobody waits: the first recv sees it at once.
        raise(libc::SIGUSR2);
        timeout(GUARD, sig.recv()).await.unwrap().unwrap();
        // Three before the next recv: one delivery, then nothing more.
        for _ in 0..3 {
            raise(libc::SIGUSR2);
        }
        // Let the handler's wake-up reach a listener's read.
        sleep(Duration::from_millis(20)).await;
        timeout(GUARD, sig.recv()).await.unwrap().unwrap();
        assert!(timeout(QUIET, sig.recv()).await.is_err(), "deliveries coalesce");
        // A listener made afterwards starts from now.
        let mut late = signal(SignalKind::user_defined2()).unwrap();
        assert!(timeout(QUIET, late.recv()).await.is_err());
        raise(libc::SIGUSR2);
        timeout(GUARD, late.recv()).await.unwrap().unwrap();
        timeout(GUARD, sig.recv()).await.unwrap().unwrap();
    });
}
}

both_drivers! {
fn dropped_receives_lose_no_delivery_and_leak_no_fd() {
    if !support::is_child("dropped_receives_lose_no_delivery_and_leak_no_fd") {
        support::run_in_child("dropped_receives_lose_no_delivery_and_leak_no_fd", CHILD_TIMEOUT);
        return;
    }
    // Made once beforehand: the process-wide eventfd stays for good.
    drop(signal(SignalKind::hangup()).unwrap());
    let before = support::open_fds();
    support::run(async {
        let mut waiter = signal(SignalKind::hangup()).unwrap();
        let mut fickle = signal(SignalKind::hangup()).unwrap();
        for round in 0..200 {
            // A receive dropped while its eventfd read is in flight...
            assert!(timeout(Duration::from_micros(50), fickle.recv()).await.is_err());
            if round % 20 == 0 {
                // ...or one dropped after the delivery arrived.
                raise(libc::SIGHUP);
                timeout(GUARD, waiter.recv()).await.unwrap().unwrap();
                timeout(GUARD, fickle.recv()).await.unwrap().unwrap();
            }
        }
        // Listeners made and dropped with reads in flight.
        for _ in 0..100 {
            let mut s = signal(SignalKind::hangup()).unwrap();
            assert!(timeout(Duration::from_micros(20), s.recv()).await.is_err());
        }
        raise(libc::SIGHUP);
        timeout(GUARD, waiter.recv()).await.unwrap().unwrap();
    });
    assert_eq!(support::open_fds(), before, "a listener's eventfd leaked");
}
}

both_drivers! {
fn a_read_nobody_polls_any_more_still_dispatches() {
    if !support::is_child("a_read_nobody_polls_any_more_still_dispatches") {
        support::run_in_child("a_read_nobody_polls_any_more_still_dispatches", CHILD_TIMEOUT);
        return;
    }
    support::run(async {
        let mut idle = signal(SignalKind::user_defined1()).unwrap();
        let mut other = signal(SignalKind::user_defined1()).unwrap();
        // Poll `idle` once: its eventfd read is now in flight, and stays so
        // (it lives in the listener) while nobody polls it again.
        let mut first = Box::pin(idle.recv());
        std::future::poll_fn(|cx| {
            assert!(first.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        drop(first);
        // That read, the only one, takes the wake-up: the delivery must
        // still reach `other`, which starts waiting only afterwards.
        raise(libc::SIGUSR1);
        sleep(Duration::from_millis(20)).await;
        within("the other listener", other.recv()).await.unwrap();
        within("the idle listener", idle.recv()).await.unwrap();
    });
}
}

both_drivers! {
fn ctrl_c_returns_on_sigint() {
    if !support::is_child("ctrl_c_returns_on_sigint") {
        support::run_in_child("ctrl_c_returns_on_sigint", CHILD_TIMEOUT);
        return;
    }
    // SIG_DFL, or SIG_IGN when the tests were started as a background job
    // of a non-interactive shell (which ignores SIGINT in such jobs).
    let before = disposition(libc::SIGINT);
    support::run(async move {
        let waiter = corio::spawn(ctrl_c());
        // Until the task has run, SIGINT would still end the process (or be
        // ignored, and the waiter would wait for ever).
        while disposition(libc::SIGINT) == before {
            sleep(Duration::from_millis(1)).await;
        }
        raise(libc::SIGINT);
        timeout(GUARD, waiter).await.unwrap().unwrap().unwrap();
    });
    assert_eq!(disposition(libc::SIGINT), before);
}
}

#[test]
fn the_previous_disposition_comes_back_with_the_last_listener() {
    if !support::is_child("the_previous_disposition_comes_back_with_the_last_listener") {
        support::run_in_child(
            "the_previous_disposition_comes_back_with_the_last_listener",
            CHILD_TIMEOUT,
        );
        return;
    }
    let sig = libc::SIGWINCH;
    set_disposition(sig, libc::SIG_IGN);
    let first = signal(SignalKind::window_change()).unwrap();
    let ours = disposition(sig);
    assert_ne!(ours, libc::SIG_IGN, "corio's handler is installed");
    let second = signal(SignalKind::from_raw(sig)).unwrap();
    drop(first);
    assert_eq!(disposition(sig), ours, "one listener is left");
    drop(second);
    assert_eq!(disposition(sig), libc::SIG_IGN, "restored");
    // A terminating signal with the default action back would end the
    // process: SIGTERM is ignored first, handled, then ignored again.
    set_disposition(libc::SIGTERM, libc::SIG_IGN);
    corio::run(async {
        let mut term = signal(SignalKind::terminate()).unwrap();
        raise(libc::SIGTERM);
        timeout(GUARD, term.recv()).await.unwrap().unwrap();
    });
    assert_eq!(disposition(libc::SIGTERM), libc::SIG_IGN);
    raise(libc::SIGTERM); // ignored again: the child survives
}

#[test]
fn signals_that_cannot_be_caught_are_invalid_input() {
    for sig in [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        0,
        -1,
        65,
    ] {
        let e = signal(SignalKind::from_raw(sig)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "signal {sig}");
    }
}

both_drivers! {
fn a_signal_is_a_stream_of_deliveries() {
    if !support::is_child("a_signal_is_a_stream_of_deliveries") {
        support::run_in_child("a_signal_is_a_stream_of_deliveries", CHILD_TIMEOUT);
        return;
    }
    support::run(async {
        use corio::stream::StreamExt;
        let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
        for _ in 0..3 {
            raise(libc::SIGUSR2);
            within("a delivery through the stream", StreamExt::next(&mut usr2))
                .await
                .expect("the stream ended");
        }
    });
}
}
