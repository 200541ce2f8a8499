//! The contract between op families and the driver: [`OpCode`].
//!
//! How it works: an op type (in `op/`) holds its fd, buffers and arguments
//! and implements `OpCode` once for every backend: its io_uring SQE (built
//! inside [`uring!`], so op files need no `cfg`), how it waits where the
//! kernel does not wait for it ([`Wait`]), its non-blocking syscall, and
//! what each completion means — for the future that awaits it (`complete`)
//! and, once that future is gone, for whatever the result carries
//! (`release`). Reads and accepts name their fd in [`Role`]: the driver then
//! serialises reads, hands them what dropped ops kept (`recover`), and lets
//! an op consume a multishot op armed on the fd (`arm`).

use std::io;

use crate::fd::SharedFd;
use crate::release::Released;

/// Readiness an op waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    Readable,
    Writable,
}

/// How an op waits where the kernel does not wait for it: on the poll
/// driver, and on io_uring after a socket in `O_NONBLOCK` mode said `EAGAIN`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait<'a> {
    /// Its syscall waits for this readiness of this fd.
    Ready(&'a SharedFd, Interest),
    /// Its syscall completes at once (a no-op, a shutdown).
    Never,
    /// Its syscall blocks and has no readiness (regular files): on the poll
    /// driver it runs on the blocking pool.
    Blocking,
}

/// What kind of op consults an fd's cancel-recovery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Reads one socket's bytes or datagrams: serialised, in order.
    Read,
    /// Accepts connections: any accept may take any kept connection.
    Accept,
}

/// A read or accept op names its fd so the driver can recover for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Role<'a> {
    pub(crate) fd: &'a SharedFd,
    pub(crate) kind: Kind,
    /// On io_uring, the op takes its result from a multishot op armed on
    /// the fd (armed with this op's `sqe` and `arm` when there is none).
    pub(crate) multishot: bool,
}

/// After a completion: more will follow for this op, or it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    More,
    Done,
}

/// `IORING_CQE_F_BUFFER`: the completion carries a pool buffer.
pub(crate) const CQE_F_BUFFER: u32 = 1 << 0;
/// `IORING_CQE_F_MORE`: more completions of this op will follow.
pub(crate) const CQE_F_MORE: u32 = 1 << 1;
/// `IORING_CQE_F_NOTIF`: a zero-copy send's notification (the kernel is done
/// with the buffer); its result is not the send's.
pub(crate) const CQE_F_NOTIF: u32 = 1 << 3;
/// `IORING_CQE_F_BUF_MORE`: the kernel keeps using the completion's last
/// buffer (an incremental buffer ring).
pub(crate) const CQE_F_BUF_MORE: u32 = 1 << 4;
/// The buffer id's bits (`IORING_CQE_BUFFER_SHIFT` = 16).
pub(crate) const CQE_BID_MASK: u32 = 0xffff_0000;

impl Step {
    /// `More` when the completion's flags say more will come.
    #[inline]
    pub(crate) fn from_flags(flags: u32) -> Step {
        if flags & CQE_F_MORE != 0 {
            Step::More
        } else {
            Step::Done
        }
    }
}

/// The pool buffer a completion carries, if any.
#[inline]
pub(crate) fn cqe_buffer(flags: u32) -> Option<u16> {
    (flags & CQE_F_BUFFER != 0).then_some((flags >> 16) as u16)
}

/// A CQE's result as `io::Result`, keeping the kernel's errno (the one
/// place a negative result becomes an error).
#[inline]
pub(crate) fn cqe_result(res: i32) -> io::Result<u32> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as u32)
    }
}

/// The result of a raw syscall returning `-1` on error.
#[inline]
pub(crate) fn syscall_result(res: libc::ssize_t) -> io::Result<u32> {
    if res < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(res as u32)
    }
}

/// The value of an op whose future has not finished (the driver's polls
/// run only then). Its failure is a cold call with no arguments: an
/// `expect` would have the hot path build its message and caller location
/// on every poll (four stores per poll, hoisted out of the state loop).
#[inline(always)]
pub(crate) fn op_data<T>(data: &mut Option<T>) -> &mut T {
    match data {
        Some(op) => op,
        None => missing("corio: Op polled after completion"),
    }
}

/// The role of an op that has one by its kind (see [`op_data`]).
#[inline(always)]
pub(crate) fn role_of<T: OpCode>(op: &T) -> Role<'_> {
    match op.role() {
        Some(role) => role,
        None => missing("corio: an op of this kind has a role"),
    }
}

/// Takes the value of a finished op out of its future (see [`op_data`]).
#[inline(always)]
pub(crate) fn take_op_data<T>(data: &mut Option<T>) -> T {
    match data.take() {
        Some(op) => op,
        None => missing("corio: Op polled after completion"),
    }
}

#[cold]
#[inline(never)]
fn missing(what: &'static str) -> ! {
    panic!("{what}")
}

/// One io_uring submission entry (its `user_data` is set by the driver).
#[cfg(target_os = "linux")]
pub(crate) type Sqe = io_uring::squeue::Entry;

/// Where io_uring does not exist, a stand-in: no driver ever submits it.
#[cfg(not(target_os = "linux"))]
#[derive(Debug, Default)]
pub(crate) struct Sqe;

/// Evaluates io_uring code (an SQE, an opcode number) with `opcode`,
/// `types` and `squeue` of the io-uring crate in scope; where the crate does
/// not exist, the code is not compiled and the value is its type's default
/// (never used: no io_uring driver runs there).
#[cfg(target_os = "linux")]
macro_rules! uring {
    ($($t:tt)*) => {{
        #[allow(unused_imports)]
        use ::io_uring::{opcode, squeue, types};
        $($t)*
    }};
}

#[cfg(not(target_os = "linux"))]
macro_rules! uring {
    ($($t:tt)*) => {
        ::core::default::Default::default()
    };
}

pub(crate) use uring;

/// One kind of operation, written once for every driver.
///
/// # Safety
///
/// Every address the SQE built by `sqe` passes to the kernel must point into
/// memory owned by `self` (or by the value `arm` returns, for a multishot op)
/// that does not move when `self` is moved — heap allocations, buffers
/// satisfying `IoBuf` — or into `'static` memory, and must stay valid until
/// the op's last completion. The driver keeps the value alive (even when its
/// future is dropped) until then.
///
/// For [`Wait::Blocking`] ops, [`attempt`](OpCode::attempt) runs on a
/// blocking-pool thread while the runtime's thread leaves the value alone:
/// it must only read plain data (fd numbers, lengths, offsets) and the memory
/// its buffers own, never clone or drop `Rc`s or other thread-bound state.
pub(crate) unsafe trait OpCode: 'static {
    /// What the op's future returns.
    type Output;

    /// How the op waits where the kernel does not wait for it.
    fn wait(&self) -> Wait<'_>;

    /// Reads and accepts: the fd whose cancel-recovery state applies.
    fn role(&self) -> Option<Role<'_>> {
        None
    }

    /// Takes what dropped ops kept on the fd of [`role`](OpCode::role)
    /// instead of asking the kernel, and returns the result as the kernel
    /// would have (`complete` then runs as usual); `None` when nothing fits.
    /// Only called when the fd has something kept.
    fn recover(&mut self) -> Option<io::Result<u32>> {
        None
    }

    /// For a [`Role::multishot`] op: the value the driver keeps armed on the
    /// fd (it owns what the multishot SQE points at, and releases each
    /// completion nobody takes once the op is taken down).
    fn arm(&mut self) -> Option<Box<super::armed::Armed>> {
        None
    }

    /// The op's label in latency histograms, task dumps and traces: the
    /// type's name without its path and generics (`Recv`, `Accept`, `Nop`).
    fn kind_name() -> &'static str
    where
        Self: Sized,
    {
        super::latency::short_type_name(std::any::type_name::<Self>())
    }

    /// The io_uring submission entry, built inside [`uring!`].
    fn sqe(&mut self) -> Sqe;

    /// The fd the SQE names in its `fd` field, which the driver may name by
    /// its registered-file slot instead (`IOSQE_FIXED_FILE`, see
    /// `Builder::registered_files`): by default the fd a readiness op waits
    /// on. The driver rewrites only opcodes that take a fixed file, and only
    /// when the SQE's `fd` is this fd's number.
    #[inline]
    fn fixed_fd(&self) -> Option<&SharedFd> {
        match self.wait() {
            Wait::Ready(fd, _) => Some(fd),
            _ => None,
        }
    }

    /// The opcode `sqe` uses when it is newer than the kernels the io_uring
    /// driver requires (say `FTRUNCATE`, Linux 6.9). Where the kernel's probe
    /// lacks it, the op runs its `attempt` on the blocking pool instead, so
    /// only ops whose `attempt` is a plain blocking syscall name one.
    fn optional_opcode(&self) -> Option<u8> {
        None
    }

    /// Where the kernel's probe lacks [`optional_opcode`](OpCode::optional_opcode)
    /// (or it is turned off): an op with a plain equivalent on an opcode the
    /// driver requires (SEND_ZC → SEND) switches to it and returns true; the
    /// default (false) runs `attempt` on the blocking pool instead.
    fn downgrade(&mut self) -> bool {
        false
    }

    /// An SQE to submit linked after [`sqe`](OpCode::sqe)'s (which then
    /// carries `IOSQE_IO_LINK`), say an `IORING_OP_LINK_TIMEOUT` bounding it.
    /// Its own completion is the driver's and is not seen by the op; what it
    /// points at must stay valid until the pair is submitted (the kernel
    /// reads a link timeout's timespec at submission).
    fn linked(&mut self) -> Option<Sqe> {
        None
    }

    /// True for ops that may finish on their first poll without the driver
    /// ([`try_now`](OpCode::try_now)); a constant, so every other op's poll
    /// has no trace of the check.
    const TRY_NOW: bool = false;

    /// Only when [`TRY_NOW`](OpCode::TRY_NOW): finishes the op at once if
    /// that is cheap and cannot block (a positional read the page cache
    /// holds), returning its result as a completion would; `None` sends it
    /// to the driver as usual. Called once, on the first poll, on the
    /// runtime's thread.
    fn try_now(&mut self) -> Option<u32> {
        None
    }

    /// One attempt of the syscall: non-blocking for [`Wait::Ready`] ops
    /// (`WouldBlock` means "wait and try again"), blocking for
    /// [`Wait::Blocking`] ones.
    fn attempt(&mut self) -> io::Result<u32>;

    /// A successful `attempt` returned `n` and that shows the fd has no more
    /// of its readiness right now (a short read of a stream socket, a short
    /// write): the poll driver then forgets the fd's readiness instead of
    /// learning it from an `EAGAIN` on the next attempt.
    fn drained(&self, n: u32) -> bool {
        let _ = n;
        false
    }

    /// One completion of the op in the kernel, whether or not its future is
    /// still there: `Done` when it is the op's last. The default follows
    /// `IORING_CQE_F_MORE`; a zero-copy send records its result here and
    /// waits for its notification.
    fn on_cqe(&mut self, res: i32, flags: u32) -> Step {
        let _ = res;
        Step::from_flags(flags)
    }

    /// The op's final result given its last completion's `res`: that
    /// result itself, except for ops whose last completion is only a
    /// notification (a zero-copy send gives the result `on_cqe` recorded).
    #[inline(always)]
    fn final_res(&self, last: i32) -> i32 {
        last
    }

    /// Turns the final result (a count or an fd, or the error) into the
    /// output.
    fn complete(self, res: io::Result<u32>, flags: u32) -> Self::Output;

    /// The future is gone and a completion arrived anyway: keep or release
    /// what it carries (keep received bytes or an accepted fd for the next
    /// op on the socket; close the fd of an open nobody awaits). Runs inside
    /// the driver: must not call into it (dropping fds is fine).
    fn release(&mut self, res: io::Result<u32>, flags: u32) {
        let _ = (res, flags);
    }
}

/// Every op can be released to the driver.
impl<T: OpCode> Released for T {
    fn completion(&mut self, res: i32, flags: u32) -> bool {
        let step = self.on_cqe(res, flags);
        self.release(cqe_result(res), flags);
        if step == Step::More {
            return false;
        }
        // A read released in the kernel held its fd's turn: the next read
        // may go now that what it got is kept.
        if let Some(role) = self.role()
            && role.kind == Kind::Read
            && !role.multishot
        {
            role.fd.end_read();
        }
        true
    }
}
