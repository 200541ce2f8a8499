//! Socket addresses and message headers the kernel reads or writes.

use socket2::{SockAddr, SockAddrStorage};

use super::cmsg::{self, Control};

/// Storage the kernel writes a peer address into (boxed by its owner, so
/// its address is stable).
pub(crate) struct AddrBuf {
    storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

const STORAGE_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_storage>() as _;

impl AddrBuf {
    pub(crate) fn new() -> Box<AddrBuf> {
        // SAFETY: sockaddr_storage is plain data; all-zero is valid.
        let storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        Box::new(AddrBuf {
            storage,
            len: STORAGE_LEN,
        })
    }

    /// Room for a whole address again.
    pub(crate) fn reset(&mut self) {
        self.len = STORAGE_LEN;
    }

    /// No address (say the result came from a kept connection).
    pub(crate) fn clear(&mut self) {
        self.storage.ss_family = libc::AF_UNSPEC as libc::sa_family_t;
        self.len = 0;
    }

    pub(crate) fn ptr(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }

    /// Stores `addr` as if the kernel had written it.
    pub(crate) fn set(&mut self, addr: &SockAddr) {
        let len = addr.len().min(STORAGE_LEN);
        // SAFETY: both are sockaddr_storage-sized; `len` bytes are copied.
        unsafe {
            std::ptr::copy_nonoverlapping(
                addr.as_ptr().cast::<u8>(),
                (&mut self.storage as *mut libc::sockaddr_storage).cast::<u8>(),
                len as usize,
            )
        };
        self.len = len;
    }

    /// The address the kernel wrote, if any.
    pub(crate) fn get(&self) -> Option<SockAddr> {
        if self.len == 0 || self.storage.ss_family == libc::AF_UNSPEC as libc::sa_family_t {
            return None;
        }
        Some(sock_addr_from(&self.storage, self.len))
    }
}

/// A `SockAddr` from `len` bytes of `storage` the kernel wrote.
pub(crate) fn sock_addr_from(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> SockAddr {
    let mut out = SockAddrStorage::zeroed();
    let len = len.min(out.size_of());
    // SAFETY: `SockAddrStorage` wraps a sockaddr_storage, so both are the
    // same size; we copy `len` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            (storage as *const libc::sockaddr_storage).cast::<u8>(),
            (&mut out as *mut SockAddrStorage).cast::<u8>(),
            len as usize,
        )
    };
    // SAFETY: the kernel initialised `len` bytes (the rest is zero) and set
    // the family that matches them.
    unsafe { SockAddr::new(out, len) }
}

/// The boxed `msghdr` of a sendmsg/recvmsg and what it points at: the
/// iovecs and the control area (empty, and not allocated, when the op
/// carries no control messages).
pub(crate) struct MsgParts {
    pub(crate) msg: libc::msghdr,
    iovecs: Vec<libc::iovec>,
    control: Box<[usize]>,
}

impl MsgParts {
    /// With a control area (messages to send, or room for a receive's).
    pub(crate) fn with_control(iovecs: Vec<libc::iovec>, control: Box<[usize]>) -> Box<MsgParts> {
        // SAFETY: msghdr is plain data; all-zero is a valid empty header.
        let msg: libc::msghdr = unsafe { std::mem::zeroed() };
        let mut parts = Box::new(MsgParts {
            msg,
            iovecs,
            control,
        });
        parts.msg.msg_iov = parts.iovecs.as_mut_ptr();
        parts.msg.msg_iovlen = parts.iovecs.len() as _;
        parts.reattach();
        parts
    }

    /// Points the header at the whole control area again and clears the
    /// flags (before each receive).
    pub(crate) fn reattach(&mut self) {
        if !self.control.is_empty() {
            cmsg::attach(&mut self.msg, &mut self.control);
        }
        self.msg.msg_flags = 0;
    }

    /// Takes what a receive wrote into the control area, and its flags.
    pub(crate) fn take_control(&mut self) -> Control {
        #[allow(clippy::unnecessary_cast)] // socklen_t on some targets
        let len = self.msg.msg_controllen as usize;
        let flags = self.msg.msg_flags;
        self.msg.msg_control = std::ptr::null_mut();
        self.msg.msg_controllen = 0;
        Control::new(std::mem::take(&mut self.control), len, flags)
    }
}
