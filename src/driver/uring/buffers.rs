//! Memory the ring is told about: the receive pool's provided-buffer ring,
//! fixed buffers (`IORING_REGISTER_BUFFERS`), and the ring's own fd.
//!
//! How it works: the receive pool is registered as provided-buffer group 0
//! the first time a pooled receive needs it (and a plain group 1 for
//! datagrams when group 0 is incremental); the ring keeps an `Rc` of it so
//! its memory outlives the registration. A ring has one table of fixed
//! buffers: its owner is named by a token (a `FixedBufPool`'s), and a
//! registration whose owner has gone is dropped before a new one is made.

use std::io;
use std::os::fd::AsRawFd;
use std::rc::{Rc, Weak};

use io_uring::IoUring;

use super::Ring;
use crate::buf::pool::{Pool, RingMode};

/// `struct io_uring_rsrc_update`.
#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

const REGISTER_RING_FDS: u32 = 20;
/// `IOU_PBUF_RING_INC`: buffers are consumed incrementally.
const PBUF_RING_INC: u16 = 2;
const UNREGISTER_RING_FDS: u32 = 21;

/// Registers the ring's own fd (Linux 5.18+); returns its index, or -1.
pub(super) fn register_ring_fd(ring: &IoUring) -> i32 {
    let mut up = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: ring.as_raw_fd() as u64,
    };
    // SAFETY: io_uring_register with one valid `io_uring_rsrc_update`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            REGISTER_RING_FDS,
            &mut up as *mut RsrcUpdate,
            1u32,
        )
    };
    if r == 1 { up.offset as i32 } else { -1 }
}

/// Drops the registration of the ring's fd at `index`, which holds a
/// reference to the ring until the thread exits.
pub(super) fn unregister_ring_fd(ring: &IoUring, index: i32) {
    let mut up = RsrcUpdate {
        offset: index as u32,
        resv: 0,
        data: 0,
    };
    // SAFETY: io_uring_register with one valid `io_uring_rsrc_update`.
    unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            UNREGISTER_RING_FDS,
            &mut up as *mut RsrcUpdate,
            1u32,
        )
    };
}

impl Ring {
    /// Registers `pool` as its provided-buffer group. Group 0 is
    /// incremental (`IOU_PBUF_RING_INC`, Linux 6.12) where allowed and the
    /// kernel takes it, with bundles where the kernel has them; group 1
    /// (datagrams) is plain. The pool learns which.
    pub(crate) fn register_pool(&mut self, pool: &Rc<Pool>) -> io::Result<()> {
        let addr = pool.ring_addr().expect("a ring pool");
        let group = pool.group();
        let mut mode = if group == 0 {
            self.pool_mode
        } else {
            RingMode::default()
        };
        let register = |flags: u16| {
            // SAFETY: `addr` is a page-aligned mapping of `count` ring
            // entries that `pool` owns; the ring keeps an `Rc` of it so the
            // memory outlives the registration (the ring goes away with the
            // driver).
            unsafe {
                self.ring
                    .submitter()
                    .register_buf_ring_with_flags(addr, pool.count(), group, flags)
            }
        };
        let mut res = register(if mode.inc { PBUF_RING_INC } else { 0 });
        if mode.inc
            && res
                .as_ref()
                .is_err_and(|e| e.raw_os_error() == Some(libc::EINVAL))
        {
            // Before Linux 6.12: a plain ring.
            mode.inc = false;
            res = register(0);
        }
        res.map_err(|e| {
            super::setup::explain_memlock(e, "registering the receive pool's buffer ring")
        })?;
        pool.set_mode(mode);
        self.pools[group as usize] = Some(pool.clone());
        Ok(())
    }

    /// Registers `iovecs` as the ring's fixed buffers on behalf of the
    /// owner `token`. A registration whose owner is gone (its unregister was
    /// deferred) is dropped first; one whose owner lives gives
    /// `ResourceBusy`: a ring has one buffer table.
    ///
    /// # Safety
    ///
    /// Each iovec must point at memory that stays allocated while `token`
    /// lives, and no fixed-buffer op may name an index after that memory is
    /// freed.
    pub(crate) unsafe fn register_buffers(
        &mut self,
        iovecs: &[libc::iovec],
        token: Weak<()>,
    ) -> io::Result<()> {
        if let Some(owner) = &self.buffers {
            if owner.strong_count() > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "corio: this runtime's ring already has registered buffers \
                     (one FixedBufPool per runtime at a time)",
                ));
            }
            self.ring.submitter().unregister_buffers()?;
            self.buffers = None;
        }
        // SAFETY: the caller keeps the memory valid while `token` lives.
        match unsafe { self.ring.submitter().register_buffers(iovecs) } {
            Ok(()) => {
                self.buffers = Some(token);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "corio: the ring already has registered buffers",
            )),
            Err(e) => Err(super::setup::explain_memlock(
                e,
                "registering fixed buffers (IORING_REGISTER_BUFFERS)",
            )),
        }
    }

    /// True when the ring's fixed buffers are those registered for `token`.
    pub(crate) fn buffers_owned_by(&self, token: &Weak<()>) -> bool {
        self.buffers.as_ref().is_some_and(|o| o.ptr_eq(token))
    }

    /// Unregisters the ring's fixed buffers if `token` owns them. No op may
    /// use them any more (each holds its buffer until its completion).
    pub(crate) fn unregister_buffers(&mut self, token: &Weak<()>) {
        if self.buffers_owned_by(token) {
            self.buffers = None;
            let _ = self.ring.submitter().unregister_buffers();
        }
    }
}
