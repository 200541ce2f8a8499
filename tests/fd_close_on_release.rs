//! A socket whose last holder is an op the driver finishes after its future
//! was dropped is closed as soon as that op is finished, before the thread
//! parks again: the peer sees its end of stream at once.
//!
//! Regression test for a hang found by `tests/fault_schedules.rs` (seed
//! 2264, about one run in a hundred): a writer task was aborted with its
//! send completed but not yet taken; the driver finished the send while
//! draining its release queue, which dropped the last handle of the socket
//! and queued its close — for the next drain, after the park. The reader
//! waited in that park for the end of stream the close would have caused.

mod support;

use std::task::Poll;
use std::time::Duration;

use corio::net::UnixStream;
use corio::time::timeout;

both_drivers! {
fn a_dropped_write_that_held_the_last_handle_closes_its_socket_at_once() {
    support::run(async {
        for round in 0..20 {
            let (w, r) = UnixStream::pair().unwrap();
            let mut write = Box::pin(w.write(vec![7u8; 10]));
            // On io_uring: submitted at the end of this tick, completed by
            // the kernel and taken by the driver, but the future is not
            // polled again. (The poll driver writes at once.)
            let _ = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
            let (res, buf) = r.read_exact(vec![0u8; 10]).await;
            res.unwrap();
            assert_eq!(buf, [7u8; 10], "round {round}");
            // The reader waits in the kernel for its end of stream...
            let mut eof = Box::pin(timeout(Duration::from_secs(5), r.read(vec![0u8; 16])));
            let polled = std::future::poll_fn(|cx| Poll::Ready(eof.as_mut().poll(cx))).await;
            assert!(polled.is_pending(), "round {round}: the stream is still open");
            corio::yield_now().await;
            // ...when the write and the stream go: the op, finished by the
            // driver's next drain, is the socket's last holder.
            drop(write);
            drop(w);
            let (res, _) = eof
                .await
                .unwrap_or_else(|_| panic!("round {round}: no end of stream"));
            assert_eq!(res.unwrap(), 0, "round {round}: end of stream");
        }
    });
}
}
