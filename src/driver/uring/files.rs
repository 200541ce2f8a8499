//! The registered-file table (`Builder::registered_files`): accepted
//! sockets and opened files named by slot, which saves the kernel an fd
//! lookup per op.
//!
//! How it works: with the knob on, the ring registers a sparse table of n
//! empty slots at setup (`IORING_REGISTER_FILES2` with
//! `IORING_RSRC_REGISTER_SPARSE`, Linux 5.19). An accepted TCP connection or
//! an opened file is installed in a free slot with `IORING_REGISTER_FILES_UPDATE`
//! (a syscall: the kernel copies the fd at once, and a failure is known
//! before any op names the slot); the fd keeps its plain number and records
//! the slot and this driver's token. Every op pushed on the ring
//! (`submit_single`, `arm`) whose opcode takes a fixed file and whose SQE
//! names that fd's number is rewritten to name the slot with
//! `IOSQE_FIXED_FILE`.
//!
//! When the fd goes (or is taken back), `Release::Unfix` reaches this ring
//! before the fd's close: an `IORING_OP_FILES_UPDATE` SQE puts -1 in the
//! slot, queued after every SQE that may name it, and the slot is free
//! again only once that SQE has completed. An op the kernel has already
//! started keeps its own reference to the file, so emptying a slot never
//! pulls a file from under an op. A full table (or a refused install)
//! leaves the fd plain: it works as without the table.

use std::io;
use std::os::fd::RawFd;

use io_uring::{IoUring, opcode, squeue};

use super::Ring;
use crate::fd::SharedFd;

/// `user_data` of a slot's `FILES_UPDATE` that empties it: this base plus
/// the slot (the high half is the generation no op key has, the low half
/// far below the other internal tokens).
pub(super) const TOKEN_UNFIX: u64 = 0xffff_ffff_0000_0000;

/// What an emptying `FILES_UPDATE` reads: "no file".
static NO_FILE: RawFd = -1;

/// The opcodes whose SQE `fd` may name a registered file, one bit each.
const FIXED_OPCODES: [u64; 4] = opcode_bits(&[
    opcode::Read::CODE,
    opcode::Write::CODE,
    opcode::Readv::CODE,
    opcode::Writev::CODE,
    opcode::ReadFixed::CODE,
    opcode::WriteFixed::CODE,
    opcode::Fsync::CODE,
    opcode::SyncFileRange::CODE,
    opcode::Fallocate::CODE,
    opcode::Ftruncate::CODE,
    opcode::Send::CODE,
    opcode::Recv::CODE,
    opcode::SendMsg::CODE,
    opcode::RecvMsg::CODE,
    opcode::SendZc::CODE,
    opcode::SendMsgZc::CODE,
    opcode::Shutdown::CODE,
    opcode::PollAdd::CODE,
    // The SQE's fd is the splice's output (its input has its own flag).
    opcode::Splice::CODE,
]);

const fn opcode_bits(codes: &[u8]) -> [u64; 4] {
    let mut bits = [0u64; 4];
    let mut i = 0;
    while i < codes.len() {
        bits[codes[i] as usize / 64] |= 1 << (codes[i] % 64);
        i += 1;
    }
    bits
}

/// One ring's registered-file table.
#[derive(Debug)]
pub(super) struct Files {
    /// The fd installed in each slot; -1 when the slot is free or being
    /// emptied.
    fds: Box<[RawFd]>,
    /// Slots emptied and free again.
    free: Vec<u16>,
    /// Slots below this were handed out at least once.
    next: u16,
}

impl Files {
    /// Registers a sparse table of `n` slots on `ring`.
    pub(super) fn register(ring: &IoUring, n: u32) -> io::Result<Files> {
        ring.submitter().register_files_sparse(n)?;
        Ok(Files {
            fds: vec![-1; n as usize].into_boxed_slice(),
            free: Vec::new(),
            next: 0,
        })
    }

    fn alloc(&mut self) -> Option<u16> {
        if let Some(slot) = self.free.pop() {
            return Some(slot);
        }
        if (self.next as usize) < self.fds.len() {
            self.next += 1;
            return Some(self.next - 1);
        }
        None
    }
}

/// The SQE's `fd` field.
fn sqe_fd(sqe: &squeue::Entry) -> RawFd {
    let sqe: *const squeue::Entry = sqe;
    // SAFETY: `Entry` is `repr(C)` around the kernel's `io_uring_sqe`
    // (64 bytes, checked below), whose `fd` is the `i32` at byte 4
    // (after `opcode`, `flags` and `ioprio`); the read is in bounds and
    // aligned (the SQE is 8-aligned).
    unsafe { sqe.cast::<u8>().add(4).cast::<RawFd>().read() }
}

/// Makes the SQE name registered-file `slot` instead of an fd, in place
/// (an SQE is 64 bytes: no copy on the op path).
fn set_fixed(sqe: &mut squeue::Entry, slot: u16) {
    let p: *mut squeue::Entry = sqe;
    // SAFETY: as in `sqe_fd`: `flags` is the `u8` at byte 1 and `fd` the
    // `i32` at byte 4 of a live, exclusively borrowed SQE.
    unsafe {
        let flags = p.cast::<u8>().add(1);
        flags.write(flags.read() | squeue::Flags::FIXED_FILE.bits());
        p.cast::<u8>()
            .add(4)
            .cast::<RawFd>()
            .write(RawFd::from(slot));
    }
}

const _: () = assert!(std::mem::size_of::<squeue::Entry>() == 64);

impl Ring {
    /// Installs `fd` (an accepted connection, an opened file) in a free
    /// slot of the table, if the ring has one and it is not full.
    pub(crate) fn install_file(&mut self, fd: &SharedFd) {
        let Some(files) = self.files.as_mut() else {
            return;
        };
        if self.closed || fd.has_slot() {
            return;
        }
        let Some(slot) = files.alloc() else {
            self.stats.registered_files_full();
            return;
        };
        let raw = fd.raw();
        match self
            .ring
            .submitter()
            .register_files_update(u32::from(slot), &[raw])
        {
            Ok(1) => {
                files.fds[slot as usize] = raw;
                fd.set_slot(slot, self.owner.clone());
                self.stats.registered_file(true);
            }
            // Refused (say ENFILE): the fd stays plain.
            _ => files.free.push(slot),
        }
    }

    /// Makes `sqe` name `fd`'s slot instead of its number when `fd` is in
    /// this ring's table and the opcode takes a fixed file.
    #[inline]
    pub(super) fn fix_sqe(&self, sqe: &mut squeue::Entry, fd: &SharedFd) {
        if let (Some(files), Some(slot)) = (&self.files, fd.fixed_slot(&self.owner))
            && files.fds[slot as usize] == fd.raw()
            && sqe_fd(sqe) == fd.raw()
            && super::has_opcode(&FIXED_OPCODES, sqe.get_opcode() as u8)
        {
            set_fixed(sqe, slot);
        }
    }

    /// Empties `slot`, which holds `fd` (its handles are gone): the slot is
    /// free again once the kernel has done it (`unfixed`).
    pub(crate) fn unfix(&mut self, slot: u16, fd: RawFd) {
        let Some(files) = self.files.as_mut() else {
            return;
        };
        if self.closed || files.fds.get(slot as usize) != Some(&fd) {
            // Shutting down: the table goes with the ring.
            return;
        }
        files.fds[slot as usize] = -1;
        let sqe = opcode::FilesUpdate::new(&NO_FILE, 1)
            .offset(i32::from(slot))
            .build();
        self.untracked += 1;
        self.push(sqe, TOKEN_UNFIX | u64::from(slot));
    }
}

/// The completion of the `FILES_UPDATE` that emptied a slot: it is free.
pub(super) fn unfixed(files: &mut Option<Files>, user_data: u64, res: i32) {
    debug_assert!(res >= 0, "corio: emptying a registered file failed: {res}");
    if let Some(files) = files {
        files.free.push((user_data - TOKEN_UNFIX) as u16);
    }
}
