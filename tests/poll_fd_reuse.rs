//! An fd number reused while the file it named still lives elsewhere.
//!
//! epoll forgets a registration when the file goes, not when the fd number
//! is closed: a child forked by any thread at that moment holds the file
//! until it execs, and its events keep coming under the old number, which a
//! new fd may have by then. Seen as a hang of `process::output_collects_*`
//! under a full `cargo test`: a sibling test's fork kept an old pipe alive,
//! its hang-up marked the new pidfd with that number "closed", and the
//! child-wait op retried `waitid` for ever without yielding. Here the fork
//! is a `dup`, and the test is the only one of its binary so that it may
//! place a new file under a chosen number.

mod support;

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Duration;

use corio::net::UnixStream;

both_drivers! {
    fn a_reused_fd_number_ignores_the_old_files_events() {
        let _serial = support::serial();
        let _dog = support::watchdog(Duration::from_secs(10), "a read on a reused fd number");
        support::run(async {
            let (old, old_peer) = StdUnixStream::pair().unwrap();
            let n = old.as_raw_fd();
            // The forked child's copy: the old file outlives its fd number.
            let held = old.try_clone().unwrap();
            let old = UnixStream::from_std(old);
            // A read that waits registers the fd with the driver.
            let waited = corio::time::timeout(Duration::from_millis(20), old.read(vec![0u8; 8])).await;
            assert!(waited.is_err(), "nothing was written: {waited:?}");
            drop(old);
            // The runtime closes a dropped fd on its next turn, not at once.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            // SAFETY: F_GETFD only asks whether the number is open.
            while unsafe { libc::fcntl(n, libc::F_GETFD) } >= 0 {
                assert!(std::time::Instant::now() < deadline, "fd {n} never closed");
                corio::time::sleep(Duration::from_millis(1)).await;
            }

            // A new socket under the same number.
            let (new, new_peer) = StdUnixStream::pair().unwrap();
            if new.as_raw_fd() == n {
                // The lowest free number: it got `n` by itself.
                let _ = new.into_raw_fd();
            } else {
                // SAFETY: `n` is closed (and this test is alone in its binary,
                // so nothing else took the number); dup2 puts a copy there.
                assert_eq!(unsafe { libc::dup2(new.as_raw_fd(), n) }, n);
                drop(new);
            }
            // SAFETY: `n` is the copy made above, owned by nothing else.
            let new = UnixStream::from_std(unsafe { StdUnixStream::from_raw_fd(n) });

            // The old file's peer hangs up: an event under the old number.
            drop(old_peer);
            // The data comes from a task of this runtime: a read that retried
            // without yielding would keep it from ever running (the hang).
            let new_peer = UnixStream::from_std(new_peer);
            let writer = corio::spawn(async move {
                corio::time::sleep(Duration::from_millis(50)).await;
                let (res, _) = new_peer.write_all(b"new".to_vec()).await;
                res.unwrap();
                new_peer
            });
            // The read waits for the new socket's own data.
            let (res, buf) = new.read(vec![0u8; 8]).await;
            assert_eq!(&buf[..res.unwrap()], b"new");
            drop(writer.await);
            drop(held);
        });
    }
}
