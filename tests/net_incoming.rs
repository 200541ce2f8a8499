//! `TcpListener::incoming()` as a `Stream`, mixed with `next()`, cancelled
//! mid-wait (the listener still accepts after), and without leaking fds.

mod support;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use corio::net::{TcpListener, TcpStream};
use corio::stream::{Stream, StreamExt};
use corio::time::timeout;

const GUARD: Duration = Duration::from_secs(10);

both_drivers! {
fn incoming_is_a_stream_and_mixes_with_next() {
    let _serial = support::serial(); // the leak test below counts fds
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = listener.incoming();
        let clients = corio::spawn(async move {
            let mut v = Vec::new();
            for _ in 0..4 {
                v.push(TcpStream::connect(addr).await.unwrap());
            }
            v
        });
        let a = timeout(GUARD, StreamExt::next(&mut incoming)).await.unwrap();
        let a = a.expect("the stream never ends").unwrap();
        let b = timeout(GUARD, incoming.next()).await.unwrap().unwrap();
        // A poll_next left pending, then next(): the connection it waits
        // for is not lost.
        let pending = poll_fn(|cx| {
            Poll::Ready(Pin::new(&mut incoming).poll_next(cx).is_pending())
        })
        .await;
        let c = if pending {
            timeout(GUARD, incoming.next()).await.unwrap().unwrap()
        } else {
            // Already there: the stream returned it; take the next one.
            timeout(GUARD, incoming.next()).await.unwrap().unwrap()
        };
        let d = timeout(GUARD, StreamExt::next(&mut incoming)).await.unwrap().unwrap().unwrap();
        let clients = clients.await.unwrap();
        assert_eq!(clients.len(), 4);
        let mut peers: Vec<_> = [a, b, c, d].iter().map(|s| s.peer_addr().unwrap()).collect();
        let mut locals: Vec<_> = clients.iter().map(|s| s.local_addr().unwrap()).collect();
        if pending {
            peers.sort();
            locals.sort();
            assert_eq!(peers, locals);
        }
        assert_eq!(Stream::size_hint(&incoming), (0, None));
    });
}
}

both_drivers! {
fn dropped_pending_stream_polls_leak_nothing() {
    let _serial = support::serial();
    let before = support::open_fds();
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..200 {
            let mut incoming = listener.incoming();
            let mut next = StreamExt::next(&mut incoming);
            let ready = poll_fn(|cx| Poll::Ready(Pin::new(&mut next).poll(cx).is_ready())).await;
            assert!(!ready);
        }
        // A connection made now is closed with the listener: never leaked.
        let client = TcpStream::connect(addr).await.unwrap();
        drop(client);
    });
    // Cancels complete asynchronously: give the driver's fds time to settle.
    let deadline = std::time::Instant::now() + GUARD;
    while support::open_fds() > before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(support::open_fds(), before);
}
}

both_drivers! {
fn accept_after_dropping_an_armed_incoming() {
    let _serial = support::serial();
    support::run(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        {
            let mut incoming = listener.incoming();
            let mut next = std::pin::pin!(incoming.next());
            let ready = poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx).is_ready())).await;
            assert!(!ready);
        }
        let client = corio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (s, _) = timeout(GUARD, listener.accept()).await.expect("accept hung").unwrap();
        drop((s, client.await.unwrap()));
    });
}
}
