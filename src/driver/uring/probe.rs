//! What the kernel's io_uring offers corio: setup flags, features and
//! opcodes, each tried on a tiny ring (for `corio::probe()`).

use io_uring::opcode;

use super::setup::{Flags, Spec};

/// One thing the kernel has or lacks: name, supported, note.
pub(crate) type Entry = (&'static str, bool, String);

/// The opcodes corio submits: needed by `Auto`, used by `corio::fs`, or
/// used with a blocking-pool fallback when missing.
const OPCODES: &[(&str, u8, &str)] = &[
    ("NOP", opcode::Nop::CODE, NEEDED),
    ("READ", opcode::Read::CODE, NEEDED),
    ("POLL_ADD", opcode::PollAdd::CODE, NEEDED),
    ("ASYNC_CANCEL", opcode::AsyncCancel::CODE, NEEDED),
    ("ACCEPT", opcode::Accept::CODE, NEEDED),
    ("CONNECT", opcode::Connect::CODE, NEEDED),
    ("CLOSE", opcode::Close::CODE, NEEDED),
    ("SEND", opcode::Send::CODE, NEEDED),
    ("RECV", opcode::Recv::CODE, NEEDED),
    ("SENDMSG", opcode::SendMsg::CODE, NEEDED),
    ("RECVMSG", opcode::RecvMsg::CODE, NEEDED),
    ("SHUTDOWN", opcode::Shutdown::CODE, NEEDED),
    ("WRITE", opcode::Write::CODE, FS),
    ("READV", opcode::Readv::CODE, FS),
    ("WRITEV", opcode::Writev::CODE, FS),
    ("READ_FIXED", opcode::ReadFixed::CODE, FS),
    ("WRITE_FIXED", opcode::WriteFixed::CODE, FS),
    ("OPENAT", opcode::OpenAt::CODE, FS),
    ("STATX", opcode::Statx::CODE, FS),
    ("FSYNC", opcode::Fsync::CODE, FS),
    ("SYNC_FILE_RANGE", opcode::SyncFileRange::CODE, FS),
    ("FALLOCATE", opcode::Fallocate::CODE, FS),
    ("RENAMEAT", opcode::RenameAt::CODE, FS),
    ("UNLINKAT", opcode::UnlinkAt::CODE, FS),
    ("MKDIRAT", opcode::MkDirAt::CODE, FALLBACK),
    ("SYMLINKAT", opcode::SymlinkAt::CODE, FALLBACK),
    ("LINKAT", opcode::LinkAt::CODE, FALLBACK),
    ("FTRUNCATE", opcode::Ftruncate::CODE, FALLBACK),
    ("MSG_RING", opcode::MsgRingData::CODE, WAKE),
    ("SEND_ZC", opcode::SendZc::CODE, ZC),
    ("SPLICE", opcode::Splice::CODE, SPLICE),
    ("LINK_TIMEOUT", opcode::LinkTimeout::CODE, LINK_TIMEOUT),
];
const NEEDED: &str = "needed: without it Auto picks the poll driver";
const FS: &str = "used by corio::fs";
const FALLBACK: &str = "used by corio::fs; runs on the blocking pool when missing";
const ZC: &str = "TcpStream::send_zc/write_all_zc (Linux 6.0); a plain send when missing";
const SPLICE: &str = "TcpStream::send_file through a pipe (Linux 5.7); sendfile(2) when missing";
const LINK_TIMEOUT: &str =
    "TcpStream::read_timeout in one SQE pair (Linux 5.5); a user-space timer when missing";
const WAKE: &str = "wakes other shards (msg_ring_wakeups); an eventfd write when missing";

fn tiny(flags: Flags, sqpoll: Option<(u32, Option<u32>)>) -> std::io::Result<io_uring::IoUring> {
    Spec {
        entries: 4,
        cq_entries: 8,
        flags,
        sqpoll,
    }
    .build()
}

fn flag(name: &'static str, r: std::io::Result<io_uring::IoUring>, note: &str) -> Entry {
    match r {
        Ok(_) => (name, true, note.into()),
        Err(e) => (name, false, format!("refused: {e}")),
    }
}

/// The opcode named `name` in the table above.
pub(crate) fn opcode_named(name: &str) -> Option<u8> {
    OPCODES.iter().find(|o| o.0 == name).map(|o| o.1)
}

/// Setup flags, features and opcodes, from tiny rings.
pub(crate) fn probe() -> (Vec<Entry>, Vec<Entry>, Vec<Entry>) {
    let none = Flags::default();
    let si = Flags {
        single_issuer: true,
        ..none
    };
    let dt = Flags {
        defer_taskrun: true,
        ..si
    };
    let ct = Flags {
        coop_taskrun: true,
        ..none
    };
    let flags = vec![
        flag(
            "SINGLE_ISSUER",
            tiny(si, None),
            "Builder::single_issuer (tried by default)",
        ),
        flag(
            "DEFER_TASKRUN",
            tiny(dt, None),
            "Builder::defer_taskrun, with SINGLE_ISSUER (tried first by default)",
        ),
        flag(
            "COOP_TASKRUN",
            tiny(ct, None),
            "Builder::coop_taskrun (the default when DEFER_TASKRUN is refused)",
        ),
        flag(
            "TASKRUN_FLAG",
            tiny(ct, None),
            "set with either taskrun mode",
        ),
        flag(
            "SQPOLL",
            tiny(none, Some((10, None))),
            "Builder::sqpoll (off by default)",
        ),
    ];
    let ring = match tiny(none, None) {
        Ok(r) => r,
        Err(e) => {
            let err = ("io_uring_setup", false, format!("refused: {e}"));
            return (flags, vec![err], Vec::new());
        }
    };
    let p = ring.params();
    let feat = |name, on: bool, note: &str| (name, on, note.to_string());
    let features = vec![
        feat(
            "NODROP",
            p.is_feature_nodrop(),
            "needed: no completion is lost on overflow",
        ),
        feat(
            "EXT_ARG",
            p.is_feature_ext_arg(),
            "needed: timed waits in io_uring_enter",
        ),
        feat(
            "FAST_POLL",
            p.is_feature_fast_poll(),
            "socket ops wait in the kernel without a worker thread",
        ),
        feat(
            "NATIVE_WORKERS",
            p.is_feature_native_workers(),
            "blocking work runs on io-wq threads",
        ),
        feat(
            "SKIP_CQE_ON_SUCCESS",
            p.is_feature_skip_cqe_on_success(),
            "linked ops without completions",
        ),
        feat(
            "LINKED_FILE",
            p.is_feature_linked_file(),
            "fds resolved when a linked op starts",
        ),
        feat(
            "RECVSEND_BUNDLE",
            p.is_feature_recvsend_bundle(),
            "pooled stream receives take several buffers per completion (off: disable_opcodes([\"RECV_BUNDLE\"]))",
        ),
        feat(
            "MIN_TIMEOUT",
            p.is_feature_min_timeout(),
            "batched waits with a minimum timeout",
        ),
    ];
    let mut probe = io_uring::Probe::new();
    let probed = ring.submitter().register_probe(&mut probe);
    let opcodes = OPCODES
        .iter()
        .map(|&(name, code, note)| {
            let on = probed.is_ok() && probe.is_supported(code);
            (name, on, note.to_string())
        })
        .collect();
    (flags, features, opcodes)
}
