//! `UCred`: who is at the other end of a Unix socket (`SO_PEERCRED`).
//!
//! How it works: the kernel records the peer's process, user and group ids
//! when the connection is made (by `connect(2)`, or by `socketpair(2)`);
//! getsockopt(2) reads them, without an op.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The credentials of a Unix socket's peer, as they were when it connected.
///
/// ```
/// corio::run(async {
///     let (a, _b) = corio::net::UnixStream::pair()?;
///     let cred = a.peer_cred()?;
///     assert_eq!(cred.pid(), std::process::id() as i32);
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UCred {
    pid: i32,
    uid: u32,
    gid: u32,
}

impl UCred {
    /// The peer's process id (0 when that process is in a pid namespace
    /// this one cannot see).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The peer's effective user id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The peer's effective group id.
    pub fn gid(&self) -> u32 {
        self.gid
    }
}

/// `SO_PEERCRED` of a connected Unix socket.
pub(crate) fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<UCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given, and
    // the fd is open for the borrow.
    let res = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if res < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}
