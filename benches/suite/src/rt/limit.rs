//! The limit: a hand-written io_uring server with no runtime at all — one
//! loop over the io-uring crate, the fastest setup this kernel offers:
//! `SINGLE_ISSUER | DEFER_TASKRUN`, a registered ring fd, a multishot accept,
//! and per connection one multishot receive into a provided-buffer ring.
//! Each arrival is answered (echoed, or parsed by the same HTTP code every
//! runtime uses) with one `SEND` of an owned buffer; a connection sends one
//! buffer at a time and gathers what comes meanwhile. What a runtime costs
//! is what it spends above this.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{IoUring, cqueue, opcode, squeue, types};
use slab::Slab;

use super::App;
use crate::app;

/// Provided buffers: count (a power of two) and size.
const BUFS: u16 = 1024;
const BUF_SIZE: usize = 4096;
const GROUP: u16 = 0;

const ACCEPT: u64 = u64::MAX;
const KIND_SHIFT: u32 = 56;
const RECV: u64 = 1;
const SEND: u64 = 2;
const CLOSE: u64 = 3;

struct Conn {
    fd: RawFd,
    /// HTTP: bytes received and not yet parsed.
    input: Vec<u8>,
    /// Bytes to send after the one in flight.
    pending: Vec<u8>,
    /// The buffer of the send in flight, if any.
    sending: Option<Vec<u8>>,
    closing: bool,
    /// The multishot receive has ended / the fd is closed: the slot goes
    /// when both are true (no stale completion can reach a reused slot).
    recv_done: bool,
    closed: bool,
}

/// The provided-buffer ring: buffer memory and the ring entries.
struct BufRing {
    mem: Vec<u8>,
    entries: *mut io_uring::types::BufRingEntry,
    tail: u16,
    layout: std::alloc::Layout,
}

impl BufRing {
    fn new() -> io::Result<BufRing> {
        let layout = std::alloc::Layout::from_size_align(BUFS as usize * 16, 4096)
            .map_err(io::Error::other)?;
        // SAFETY: a non-zero layout; zeroed memory is a valid empty ring.
        let entries: *mut io_uring::types::BufRingEntry =
            unsafe { std::alloc::alloc_zeroed(layout) }.cast();
        if entries.is_null() {
            return Err(io::Error::other("out of memory"));
        }
        let mut ring = BufRing {
            mem: vec![0u8; BUFS as usize * BUF_SIZE],
            entries,
            tail: 0,
            layout,
        };
        for bid in 0..BUFS {
            ring.push(bid);
        }
        ring.publish();
        Ok(ring)
    }

    fn push(&mut self, bid: u16) {
        let idx = (self.tail & (BUFS - 1)) as usize;
        // SAFETY: `idx < BUFS`, inside the entries allocation.
        let e = unsafe { &mut *self.entries.add(idx) };
        e.set_addr(self.mem[bid as usize * BUF_SIZE..].as_ptr() as u64);
        e.set_len(BUF_SIZE as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the ring's tail lives in entry 0's reserved field; the
        // release store orders the entries before it.
        unsafe {
            let tail = io_uring::types::BufRingEntry::tail(self.entries);
            (*(tail as *const std::sync::atomic::AtomicU16))
                .store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    fn data(&self, bid: u16, len: usize) -> &[u8] {
        &self.mem[bid as usize * BUF_SIZE..][..len]
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.entries.cast(), self.layout) };
    }
}

fn key(kind: u64, idx: usize) -> u64 {
    (kind << KIND_SHIFT) | idx as u64
}

fn push(sq: &mut squeue::SubmissionQueue<'_>, sub: &io_uring::Submitter<'_>, e: squeue::Entry) {
    // SAFETY: every SQE names memory that outlives its completion (the
    // buffer ring, a connection's sending buffer kept until the send's CQE).
    while unsafe { sq.push(&e) }.is_err() {
        sq.sync();
        sub.submit().expect("submit");
        sq.sync();
    }
}

pub fn serve(app: App, listener: TcpListener) -> io::Result<()> {
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(4096)
        .build(1024)?;
    let mut bufs = BufRing::new()?;
    // SAFETY: the entries stay allocated (and `bufs` alive) while the ring
    // lives: both drop at the end of this function, the ring first.
    unsafe {
        ring.submitter()
            .register_buf_ring_with_flags(bufs.entries as u64, BUFS, GROUP, 0)?
    };
    let (mut sub, mut sq, mut cq) = ring.split();
    let _ = sub.register_ring_fd();
    let lfd = listener.as_raw_fd();
    let mut conns: Slab<Conn> = Slab::with_capacity(1024);
    push(
        &mut sq,
        &sub,
        opcode::AcceptMulti::new(types::Fd(lfd))
            .build()
            .user_data(ACCEPT),
    );
    let mut out = Vec::with_capacity(4096);
    loop {
        sq.sync();
        match sub.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
        cq.sync();
        let mut recycled = false;
        for cqe in &mut cq {
            let (ud, res, flags) = (cqe.user_data(), cqe.result(), cqe.flags());
            if ud == ACCEPT {
                if res >= 0 {
                    let _ = socket2::SockRef::from(&unsafe_borrow(res)).set_tcp_nodelay(true);
                    let idx = conns.insert(Conn {
                        fd: res,
                        input: Vec::new(),
                        pending: Vec::new(),
                        sending: None,
                        closing: false,
                        recv_done: false,
                        closed: false,
                    });
                    let e = opcode::RecvMulti::new(types::Fd(res), GROUP).build();
                    push(&mut sq, &sub, e.user_data(key(RECV, idx)));
                }
                if !cqueue::more(flags) {
                    let e = opcode::AcceptMulti::new(types::Fd(lfd)).build();
                    push(&mut sq, &sub, e.user_data(ACCEPT));
                }
                continue;
            }
            let idx = (ud & ((1 << KIND_SHIFT) - 1)) as usize;
            match ud >> KIND_SHIFT {
                RECV => {
                    let Some(conn) = conns.get_mut(idx) else {
                        continue;
                    };
                    if let Some(bid) = cqueue::buffer_select(flags) {
                        let data = bufs.data(bid, res.max(0) as usize);
                        match app {
                            App::Echo => conn.pending.extend_from_slice(data),
                            App::Http => conn.input.extend_from_slice(data),
                        }
                        bufs.push(bid);
                        recycled = true;
                    }
                    let more = cqueue::more(flags);
                    if res > 0 && app == App::Http {
                        let step = app::answer(&conn.input, &mut out);
                        conn.input.drain(..step.parsed);
                        conn.pending.extend_from_slice(&out);
                        out.clear();
                        conn.closing |= step.close;
                    }
                    if !more {
                        if (res > 0 || res == -libc::ENOBUFS) && !conn.closing && conn.fd >= 0 {
                            let e = opcode::RecvMulti::new(types::Fd(conn.fd), GROUP).build();
                            push(&mut sq, &sub, e.user_data(key(RECV, idx)));
                        } else {
                            conn.recv_done = true;
                            conn.closing = true;
                        }
                    }
                    flush(&mut sq, &sub, &mut conns, idx);
                }
                SEND => {
                    let Some(conn) = conns.get_mut(idx) else {
                        continue;
                    };
                    let buf = conn.sending.take().expect("a send in flight");
                    if res < 0 {
                        conn.closing = true;
                    } else if (res as usize) < buf.len() {
                        conn.pending
                            .splice(0..0, buf[res as usize..].iter().copied());
                    }
                    flush(&mut sq, &sub, &mut conns, idx);
                }
                CLOSE => {
                    conns[idx].closed = true;
                }
                _ => {}
            }
            if conns.get(idx).is_some_and(|c| c.recv_done && c.closed) {
                conns.remove(idx);
            }
        }
        if recycled {
            bufs.publish();
        }
    }
}

/// Borrows an accepted fd for a socket option.
fn unsafe_borrow(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the fd was just accepted and stays open while used here.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// Starts the next send of connection `idx`, or its close once nothing is
/// left to send.
fn flush(
    sq: &mut squeue::SubmissionQueue<'_>,
    sub: &io_uring::Submitter<'_>,
    conns: &mut Slab<Conn>,
    idx: usize,
) {
    let conn = &mut conns[idx];
    if conn.sending.is_some() {
        return;
    }
    if conn.pending.is_empty() {
        if conn.closing && conn.fd >= 0 {
            // Ends the multishot receive too (it completes with 0).
            // SAFETY: shutdown(2) on the connection's own fd.
            unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
            let e = opcode::Close::new(types::Fd(conn.fd)).build();
            push(sq, sub, e.user_data(key(CLOSE, idx)));
            conn.closing = false;
            conn.fd = -1;
        }
        return;
    }
    if conn.fd < 0 {
        return;
    }
    let buf = std::mem::take(&mut conn.pending);
    let e = opcode::Send::new(types::Fd(conn.fd), buf.as_ptr(), buf.len() as u32)
        .flags(libc::MSG_NOSIGNAL)
        .build();
    conn.sending = Some(buf);
    push(sq, sub, e.user_data(key(SEND, idx)));
}
