//! `corio::fs::File`: positional reads and writes, vectored I/O, syncs, sizes, metadata, open options and bad input.

mod fs_util;
mod support;

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, SystemTime};

use corio::IoBuf;
use corio::fs::{self, AlignedBuf, File, OpenOptions};
use fs_util::{TempDir, pattern_vec};

both_drivers! {
fn write_then_read_round_trip() {
    let dir = TempDir::new("rw");
    let path = dir.join("data");
    support::run(async {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .open(&path)
            .await
            .unwrap();
        let data = pattern_vec(0, 100_000);
        let (res, data) = file.write_all_at(data, 0).await;
        res.unwrap();
        // Overwrite a middle part at an odd position.
        let (res, _) = file.write_at(b"corio".as_slice(), 12_345).await;
        assert_eq!(res.unwrap(), 5);

        let (res, buf) = file.read_exact_at(vec![0u8; 100_000], 0).await;
        res.unwrap();
        let mut want = data.clone();
        want[12_345..12_350].copy_from_slice(b"corio");
        assert!(buf == want, "file contents differ from what was written");

        // A read into part of a buffer keeps what is before the slice.
        let mut buf = vec![7u8; 4];
        buf.reserve_exact(6);
        let (res, slice) = file.read_at(buf.slice(4..9), 12_345).await;
        assert_eq!(res.unwrap(), 5);
        assert_eq!(&slice.into_inner()[..], b"\x07\x07\x07\x07corio");

        assert_eq!(file.metadata().await.unwrap().len(), 100_000);
        file.close().await.unwrap();
    });
    // What corio wrote is what std reads.
    let mut want = pattern_vec(0, 100_000);
    want[12_345..12_350].copy_from_slice(b"corio");
    assert!(std::fs::read(&path).unwrap() == want);
}
}

both_drivers! {
fn short_reads_at_end_of_file() {
    let dir = TempDir::new("eof");
    let path = dir.join("small");
    std::fs::write(&path, pattern_vec(0, 100)).unwrap();
    support::run(async {
        let file = File::open(&path).await.unwrap();
        let (res, buf) = file.read_at(Vec::with_capacity(4096), 50).await;
        assert_eq!(res.unwrap(), 50, "a read across the end returns what is there");
        assert_eq!(buf, pattern_vec(50, 50));
        let (res, buf) = file.read_at(Vec::with_capacity(4096), 100).await;
        assert_eq!(res.unwrap(), 0, "a read at the end returns 0");
        assert!(buf.is_empty());
        let (res, _) = file.read_at(Vec::with_capacity(16), 1 << 40).await;
        assert_eq!(res.unwrap(), 0, "a read far past the end returns 0");
        // An empty buffer reads nothing, without error.
        let (res, _) = file.read_at(Vec::new(), 0).await;
        assert_eq!(res.unwrap(), 0);
    });
}
}

both_drivers! {
fn read_exact_past_end_is_unexpected_eof() {
    let dir = TempDir::new("exact");
    let path = dir.join("small");
    std::fs::write(&path, pattern_vec(0, 1000)).unwrap();
    support::run(async {
        let file = File::open(&path).await.unwrap();
        let (res, buf) = file.read_exact_at(vec![0u8; 600], 500).await;
        let err = res.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // What could be read is in the buffer.
        assert_eq!(&buf[..500], &pattern_vec(500, 500)[..]);
        let (res, _) = file.read_exact_at(vec![0u8; 600], 400).await;
        res.unwrap();
    });
}
}

both_drivers! {
fn missing_file_is_not_found() {
    let dir = TempDir::new("missing");
    let path = dir.join("nope");
    support::run(async {
        let kind = |r: io::Result<()>| r.unwrap_err().kind();
        assert_eq!(File::open(&path).await.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(kind(fs::metadata(&path).await.map(drop)), io::ErrorKind::NotFound);
        assert_eq!(kind(fs::remove_file(&path).await), io::ErrorKind::NotFound);
        assert_eq!(kind(fs::rename(&path, dir.join("b")).await), io::ErrorKind::NotFound);
        assert_eq!(kind(fs::read(&path).await.map(drop)), io::ErrorKind::NotFound);
        assert_eq!(
            kind(File::create(dir.join("no/such/dir")).await.map(drop)),
            io::ErrorKind::NotFound
        );
        // A NUL in a path is refused before the kernel sees it.
        assert_eq!(
            File::open("a\0b").await.unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    });
}
}

both_drivers! {
fn writing_a_read_only_file_fails_and_changes_nothing() {
    let dir = TempDir::new("rdonly");
    let path = dir.join("file");
    std::fs::write(&path, b"original").unwrap();
    support::run(async {
        let file = File::open(&path).await.unwrap();
        let (res, buf) = file.write_at(b"CHANGED!".as_slice(), 0).await;
        let err = res.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
        assert_eq!(buf, b"CHANGED!", "the buffer comes back on error");
        let (res, _) = file.write_all_at(b"x".as_slice(), 3).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
        let (res, _) = file.writev_at(vec![b"y".as_slice()], 0).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
        assert_eq!(file.set_len(0).await.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"original");
}
}

/// Root bypasses permission bits, so the check runs in a child process
/// that has dropped to the `nobody` user.
fn perm_dir() -> std::path::PathBuf {
    // The parent and its child agree on the path through the parent's pid.
    // SAFETY: getppid/getpid cannot fail.
    let pid = if support::is_child("permission_denied") {
        unsafe { libc::getppid() }
    } else {
        unsafe { libc::getpid() }
    };
    // One directory per variant: where io_uring is missing both variants run
    // on the poll driver, at the same time. The child knows its variant from
    // the environment (its test may run on a thread named otherwise).
    let variant = match std::env::var(support::CHILD_ENV) {
        Ok(test) => test,
        Err(_) => std::thread::current().name().unwrap_or("main").to_string(),
    };
    let variant = variant.replace("::", "-");
    std::env::temp_dir().join(format!("corio-perm-{pid}-{variant}"))
}

both_drivers! {
fn permission_denied() {
    let dir = perm_dir();
    if !support::is_child("permission_denied") {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("secret"), b"s").unwrap();
        std::fs::set_permissions(dir.join("secret"), std::fs::Permissions::from_mode(0o000))
            .unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let res = std::panic::catch_unwind(|| {
            if root {
                support::run_in_child("permission_denied", Duration::from_secs(30));
            }
        });
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(p) = res {
            std::panic::resume_unwind(p);
        }
        if root {
            return;
        }
        // Not root: this process itself lacks the permissions.
    } else {
        // SAFETY: setgid/setuid to `nobody`; the child process is disposable.
        let dropped = unsafe { libc::setgid(65534) == 0 && libc::setuid(65534) == 0 };
        assert!(dropped, "cannot drop to nobody: {}", io::Error::last_os_error());
    }
    support::run(async {
        let err = File::open(dir.join("secret")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        let err = OpenOptions::new().write(true).open(dir.join("secret")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        let err = File::create(dir.join("new")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        let err = fs::create_dir(dir.join("sub")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        let err = fs::remove_file(dir.join("secret")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
    });
}
}

both_drivers! {
fn offsets_past_4_gib_on_a_sparse_file() {
    let dir = TempDir::new("sparse");
    let path = dir.join("sparse");
    support::run(async {
        let file = File::options().read(true).write(true).create(true).open(&path).await.unwrap();
        let far = (5u64 << 30) + 123;
        let data = pattern_vec(far, 10_000);
        let (res, _) = file.write_all_at(data.clone(), far).await;
        res.unwrap();
        let meta = file.metadata().await.unwrap();
        assert_eq!(meta.len(), far + 10_000);
        assert!(meta.blocks() * 512 < 1 << 20, "the file is sparse: {} blocks", meta.blocks());

        let (res, buf) = file.read_exact_at(vec![0u8; 10_000], far).await;
        res.unwrap();
        assert!(buf == data, "data beyond 4 GiB differs");
        // Across the 4 GiB boundary (a 32-bit offset would wrap): a hole.
        let (res, buf) = file.read_exact_at(vec![1u8; 8192], (4u64 << 30) - 4096).await;
        res.unwrap();
        assert!(buf.iter().all(|&b| b == 0), "a hole reads as zeros");
        // Vectored I/O far out as well.
        let (res, _) = file.writev_at(vec![b"abc".to_vec(), b"def".to_vec()], 6u64 << 30).await;
        assert_eq!(res.unwrap(), 6);
        let (res, bufs) =
            file.readv_at(vec![Vec::with_capacity(2), Vec::with_capacity(10)], 6u64 << 30).await;
        assert_eq!(res.unwrap(), 6);
        assert_eq!(bufs[0], b"ab");
        assert_eq!(bufs[1], b"cdef");
    });
}
}

both_drivers! {
fn positions_beyond_i64_are_refused() {
    let dir = TempDir::new("pos");
    let path = dir.join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    support::run(async {
        let file = File::options().read(true).write(true).open(&path).await.unwrap();
        for pos in [u64::MAX, 1 << 63] {
            let (res, buf) = file.read_at(Vec::with_capacity(4), pos).await;
            assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
            assert!(buf.is_empty());
            let (res, _) = file.write_at(b"x".as_slice(), pos).await;
            assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
            assert_eq!(file.set_len(pos).await.unwrap_err().kind(), io::ErrorKind::InvalidInput);
            let (res, bufs) = file.readv_at(vec![Vec::with_capacity(4), Vec::new()], pos).await;
            assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
            assert_eq!(bufs.len(), 2, "the buffers come back");
            let (res, bufs) = file.writev_at(vec![b"y".as_slice()], pos).await;
            assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidInput);
            assert_eq!(bufs, [b"y".as_slice()]);
            let err = file.fallocate(pos, 1, 0).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
}
}

both_drivers! {
fn vectored_reads_and_writes() {
    let dir = TempDir::new("vec");
    let path = dir.join("v");
    support::run(async {
        let file = File::options().read(true).write(true).create(true).open(&path).await.unwrap();
        let bufs = vec![b"hello ".to_vec(), Vec::new(), b"vectored ".to_vec(), b"world".to_vec()];
        let (res, bufs) = file.writev_at(bufs, 3).await;
        assert_eq!(res.unwrap(), 20);
        assert_eq!(bufs[3], b"world", "the buffers come back");

        let bufs = vec![Vec::with_capacity(3), Vec::with_capacity(6), Vec::with_capacity(100)];
        let caps: Vec<usize> = bufs.iter().map(|b| b.capacity()).collect();
        let (res, bufs) = file.readv_at(bufs, 0).await;
        let n = res.unwrap();
        assert_eq!(n, 23);
        let all: Vec<u8> = bufs.concat();
        assert_eq!(&all[..], b"\0\0\0hello vectored world");
        // Filled in order, each up to its capacity.
        assert_eq!(bufs[0].len(), caps[0].min(23));
        assert_eq!(bufs[1].len(), caps[1].min(23 - bufs[0].len()));
    });
}
}

both_drivers! {
fn sync_fallocate_and_set_len() {
    let dir = TempDir::new("size");
    let path = dir.join("s");
    support::run(async {
        let file = File::options().read(true).write(true).create(true).open(&path).await.unwrap();
        let (res, _) = file.write_all_at(pattern_vec(0, 50_000), 0).await;
        res.unwrap();
        file.sync_range(0, 0).await.unwrap();
        file.sync_range(4096, 8192).await.unwrap();
        file.sync_data().await.unwrap();
        file.sync_all().await.unwrap();

        file.set_len(1000).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 1000);
        file.set_len(3000).await.unwrap();
        let (res, buf) = file.read_exact_at(vec![9u8; 2000], 1000).await;
        res.unwrap();
        assert!(buf.iter().all(|&b| b == 0), "an extension reads as zeros");
        let (res, buf) = file.read_exact_at(vec![0u8; 1000], 0).await;
        res.unwrap();
        assert_eq!(buf, pattern_vec(0, 1000), "set_len keeps the start");

        match file.fallocate(0, 1 << 20, 0).await {
            Ok(()) => {
                let meta = file.metadata().await.unwrap();
                assert_eq!(meta.len(), 1 << 20, "fallocate extends the file");
                assert!(meta.blocks() * 512 >= 1 << 20, "the space is allocated");
                file.fallocate(2 << 20, 4096, libc::FALLOC_FL_KEEP_SIZE).await.unwrap();
                assert_eq!(file.metadata().await.unwrap().len(), 1 << 20);
            }
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                eprintln!("skipped fallocate: the filesystem refuses it ({e})");
            }
            Err(e) => panic!("fallocate: {e}"),
        }
        // Bad input: a negative-sized fallocate.
        assert_eq!(
            file.fallocate(0, 0, 0).await.unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    });
}
}

both_drivers! {
fn metadata_reports_type_permissions_times_inode() {
    let dir = TempDir::new("meta");
    let path = dir.join("m");
    let before = SystemTime::now() - Duration::from_secs(2);
    support::run(async {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&path)
            .await
            .unwrap();
        let (res, _) = file.write_all_at(vec![1u8; 1234], 0).await;
        res.unwrap();
        let meta = file.metadata().await.unwrap();
        let by_path = fs::metadata(&path).await.unwrap();
        let std_meta = std::fs::metadata(&path).unwrap();
        for m in [&meta, &by_path] {
            assert_eq!(m.len(), 1234);
            assert!(m.is_file() && !m.is_dir() && !m.is_symlink());
            assert!(m.file_type().is_file());
            assert_eq!(m.permissions().mode(), 0o640 & !0o022 & 0o777);
            assert!(!m.permissions().readonly());
            assert_eq!(m.ino(), std_meta.ino());
            assert_eq!(m.dev(), std_meta.dev());
            assert_eq!(m.blksize(), std_meta.blksize());
            assert_eq!(m.nlink(), 1);
            assert_eq!(m.uid(), std_meta.uid());
            assert!(m.blksize() >= 512);
            assert!(m.direct_io_align() >= 512);
            let modified = m.modified().unwrap();
            assert!(modified >= before, "modified time is recent");
            assert_eq!(modified, std_meta.modified().unwrap());
            assert_eq!(m.accessed().unwrap(), std_meta.accessed().unwrap());
            match m.created() {
                Ok(t) => assert!(t >= before),
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::Unsupported),
            }
        }
        let d = fs::metadata(dir.path()).await.unwrap();
        assert!(d.is_dir() && !d.is_file());
    });
}
}

both_drivers! {
fn open_options_behave_like_std() {
    let dir = TempDir::new("opts");
    let path = dir.join("o");
    support::run(async {
        let kind = |r: io::Result<File>| r.unwrap_err().kind();
        // No access mode, or creation without write access: refused.
        assert_eq!(kind(OpenOptions::new().open(&path).await), io::ErrorKind::InvalidInput);
        assert_eq!(
            kind(OpenOptions::new().read(true).create(true).open(&path).await),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(OpenOptions::new().append(true).truncate(true).open(&path).await),
            io::ErrorKind::InvalidInput
        );
        assert!(!path.exists(), "nothing was created");

        let f = File::create_new(&path).await.unwrap();
        let (res, _) = f.write_all_at(b"0123456789".as_slice(), 0).await;
        res.unwrap();
        drop(f);
        assert_eq!(kind(File::create_new(&path).await), io::ErrorKind::AlreadyExists);

        // Append: writes go to the end whatever the position.
        let f = OpenOptions::new().append(true).open(&path).await.unwrap();
        let (res, _) = f.write_at(b"END".as_slice(), 0).await;
        res.unwrap();
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789END");

        // Truncate.
        let f = OpenOptions::new().write(true).truncate(true).open(&path).await.unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), 0);

        // Custom flags are passed through, the access mode bits are not.
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_RDWR)
            .open(&path)
            .await
            .unwrap();
        let (res, _) = f.write_at(b"x".as_slice(), 0).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
        // SAFETY: fcntl on an fd the file keeps open.
        let fl = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&f), libc::F_GETFD) };
        assert!(fl & libc::FD_CLOEXEC != 0, "O_CLOEXEC is always set");
        std::os::unix::fs::symlink(&path, dir.join("link")).unwrap();
        let err = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join("link"))
            .await
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    });
}
}

both_drivers! {
fn o_direct_read_and_write() {
    let dir = TempDir::new("direct");
    let path = dir.join("d");
    support::run(async {
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .custom_flags(libc::O_DIRECT)
            .open(&path)
            .await;
        let file = match opened {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                eprintln!("skipped: {} refuses O_DIRECT ({e})", dir.path().display());
                return;
            }
            Err(e) => panic!("open with O_DIRECT: {e}"),
        };
        let align = file.metadata().await.unwrap().direct_io_align();
        assert!(align >= 512 && align.is_power_of_two());
        let len = 16 * align;
        let mut buf = AlignedBuf::new(len, align);
        assert_eq!(buf.as_ptr() as usize % align, 0);
        buf.extend_from_slice(&pattern_vec(0, len));
        let (res, _) = file.write_all_at(buf, align as u64).await;
        match res {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                eprintln!("skipped: O_DIRECT writes refused here ({e})");
                return;
            }
            Err(e) => panic!("O_DIRECT write: {e}"),
        }
        let (res, buf) = file.read_exact_at(AlignedBuf::new(len, align), align as u64).await;
        res.unwrap();
        assert!(buf[..] == pattern_vec(0, len)[..], "O_DIRECT data differs");
        // A misaligned position is refused (or, where the filesystem
        // allows it, still reads the right bytes).
        let (res, buf) = file.read_at(AlignedBuf::new(align, align), align as u64 + 1).await;
        match res {
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}"),
            Ok(n) => assert!(buf[..n] == pattern_vec(1, n)[..]),
        }
    });
}
}
