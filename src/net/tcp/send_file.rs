//! `TcpStream::send_file`: a file's bytes to the socket without passing
//! through user space.
//!
//! How it works: on io_uring with SPLICE, each pipeful is spliced from the
//! file (at its offset) into an empty pipe the driver keeps for reuse, then
//! from the pipe into the socket (as often as short splices need). A pipe
//! left holding bytes by an error or a dropped future is closed, never
//! reused. Elsewhere it is sendfile(2) in a loop (see `op/net/splice.rs`).

use std::io;
use std::rc::Rc;

use crate::driver::SparePipe;
use crate::fd::SharedFd;
use crate::fs::File;
use crate::op::Op;
use crate::op::net::{MAX_MOVE, SendFile, Splice, new_pipe, pipe_capacity, splice_opcode};
use crate::runtime::context;
use crate::runtime::core::Core;

/// Sends up to `len` bytes of `file` from `offset` to `sock`; the count
/// sent (fewer at the end of the file).
pub(crate) async fn send_file(
    sock: &SharedFd,
    file: &File,
    offset: u64,
    len: u64,
) -> io::Result<u64> {
    let end = offset.checked_add(len).filter(|e| *e <= i64::MAX as u64);
    if end.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "corio: send_file: offset + len is past the largest file offset (i64::MAX)",
        ));
    }
    let core = context::current("TcpStream::send_file");
    let splice = core.driver.borrow().supports(splice_opcode());
    if splice {
        by_splice(core, sock, file.shared_fd(), offset, len).await
    } else {
        by_sendfile(core, sock, file.shared_fd(), offset, len).await
    }
}

async fn by_sendfile(
    core: Rc<Core>,
    sock: &SharedFd,
    file: &SharedFd,
    offset: u64,
    len: u64,
) -> io::Result<u64> {
    let mut sent = 0u64;
    // Bounded: each round sends at least one byte or ends.
    while sent < len {
        let chunk = (len - sent).min(MAX_MOVE as u64) as usize;
        let op = SendFile::new(sock, file, (offset + sent) as i64, chunk);
        let n = Op::on(core.clone(), op).await?;
        if n == 0 {
            break; // end of file
        }
        sent += n as u64;
    }
    Ok(sent)
}

/// An empty pipe taken from the driver; closed unless given back.
struct Pipe {
    r: SharedFd,
    w: SharedFd,
    capacity: usize,
}

impl Pipe {
    fn take(core: &Core) -> io::Result<Pipe> {
        let kept = core.driver.borrow_mut().take_pipe();
        if let Some(SparePipe { r, w, capacity }) = kept {
            return Ok(Pipe {
                r: SharedFd::new(r),
                w: SharedFd::new(w),
                capacity,
            });
        }
        let (r, w) = new_pipe()?;
        let w = SharedFd::new(w);
        let capacity = pipe_capacity(&w);
        Ok(Pipe {
            r: SharedFd::new(r),
            w,
            capacity,
        })
    }

    /// Gives the pipe (empty, no op on it) back for reuse.
    fn give_back(self, core: &Core) {
        if let (Ok(r), Ok(w)) = (self.r.try_release(), self.w.try_release()) {
            core.driver.borrow_mut().put_pipe(SparePipe {
                r,
                w,
                capacity: self.capacity,
            });
        }
    }
}

async fn by_splice(
    core: Rc<Core>,
    sock: &SharedFd,
    file: &SharedFd,
    offset: u64,
    len: u64,
) -> io::Result<u64> {
    let pipe = Pipe::take(&core)?;
    let mut sent = 0u64;
    // Bounded: each round moves at least one byte or ends.
    while sent < len {
        let chunk = (len - sent).min(pipe.capacity as u64) as usize;
        let into_pipe = Splice::new(file, (offset + sent) as i64, &pipe.w, chunk);
        let n = Op::on(core.clone(), into_pipe).await?;
        if n == 0 {
            break; // end of file
        }
        let mut out = 0;
        while out < n {
            let to_sock = Splice::new(&pipe.r, -1, sock, n - out);
            match Op::on(core.clone(), to_sock).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                m => out += m,
            }
        }
        sent += n as u64;
    }
    pipe.give_back(&core);
    Ok(sent)
}
