//! `corio::fs` path functions: directories, listings, rename, links, read/write/copy of whole files.

mod fs_util;
mod support;

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::pin::pin;

use corio::fs;
use fs_util::{TempDir, pattern_vec, poll_once};

both_drivers! {
fn create_and_remove_directories() {
    let dir = TempDir::new("mkdir");
    support::run(async {
        let a = dir.join("a");
        fs::create_dir(&a).await.unwrap();
        assert!(fs::metadata(&a).await.unwrap().is_dir());
        assert_eq!(fs::create_dir(&a).await.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            fs::create_dir(dir.join("x/y")).await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );

        let deep = dir.join("b/c/d/e");
        fs::create_dir_all(&deep).await.unwrap();
        assert!(deep.is_dir());
        fs::create_dir_all(&deep).await.unwrap();
        fs::create_dir_all(dir.join("b/c")).await.unwrap();
        fs::create_dir_all("").await.unwrap();
        // A file in the way.
        std::fs::write(dir.join("file"), b"f").unwrap();
        assert!(fs::create_dir_all(dir.join("file/sub")).await.is_err());
        assert!(fs::create_dir_all(dir.join("file")).await.is_err());

        // remove_dir: only empty directories.
        assert_eq!(
            fs::remove_dir(dir.join("b")).await.unwrap_err().kind(),
            io::ErrorKind::DirectoryNotEmpty
        );
        fs::remove_dir(&deep).await.unwrap();
        assert!(!deep.exists());
        assert_eq!(fs::remove_dir(&deep).await.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(
            fs::remove_dir(dir.join("file")).await.unwrap_err().kind(),
            io::ErrorKind::NotADirectory
        );
        assert_eq!(fs::remove_file(&a).await.unwrap_err().kind(), io::ErrorKind::IsADirectory);
    });
}
}

both_drivers! {
fn read_dir_lists_every_entry() {
    let dir = TempDir::new("readdir");
    // More entries than one batch, of three types.
    let mut want = BTreeSet::new();
    for i in 0..300 {
        let name = format!("f{i:03}");
        std::fs::write(dir.join(&name), b"").unwrap();
        want.insert(name);
    }
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink("f000", dir.join("link")).unwrap();
    want.insert("sub".into());
    want.insert("link".into());
    support::run(async {
        let mut rd = fs::read_dir(dir.path()).await.unwrap();
        let mut got = BTreeSet::new();
        while let Some(e) = rd.next_entry().await.unwrap() {
            let name = e.file_name().into_string().unwrap();
            assert_eq!(e.path(), dir.join(&name));
            let t = e.file_type().unwrap();
            match name.as_str() {
                "sub" => assert!(t.is_dir()),
                "link" => {
                    assert!(t.is_symlink());
                    assert!(e.metadata().await.unwrap().is_symlink());
                }
                _ => {
                    assert!(t.is_file());
                    assert_eq!(e.ino(), e.metadata().await.unwrap().ino());
                }
            }
            assert!(got.insert(name), "an entry came twice");
        }
        assert_eq!(got, want);
        // Exhausted stays exhausted.
        assert!(rd.next_entry().await.unwrap().is_none());

        let err = fs::read_dir(dir.join("missing")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = fs::read_dir(dir.join("f000")).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory);
    });
}
}

both_drivers! {
fn read_dir_next_entry_is_cancel_safe() {
    let dir = TempDir::new("readdir-cancel");
    for i in 0..500 {
        std::fs::write(dir.join(&format!("e{i}")), b"").unwrap();
    }
    support::run(async {
        let mut rd = fs::read_dir(dir.path()).await.unwrap();
        let mut names = BTreeSet::new();
        let mut dropped = 0;
        loop {
            // Poll once and drop, every other time.
            {
                let mut fut = pin!(rd.next_entry());
                match poll_once(fut.as_mut()).await {
                    std::task::Poll::Ready(e) => match e.unwrap() {
                        Some(e) => assert!(names.insert(e.file_name())),
                        None => break,
                    },
                    std::task::Poll::Pending => dropped += 1,
                }
            }
            match rd.next_entry().await.unwrap() {
                Some(e) => assert!(names.insert(e.file_name()), "an entry came twice"),
                None => break,
            }
        }
        assert_eq!(names.len(), 500, "entries were lost ({dropped} calls dropped)");
        assert!(dropped > 0, "no call was dropped while a batch was pending");
    });
}
}

both_drivers! {
fn rename_remove_and_links() {
    let dir = TempDir::new("links");
    let a = dir.join("a");
    std::fs::write(&a, b"content").unwrap();
    support::run(async {
        let b = dir.join("b");
        fs::rename(&a, &b).await.unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read(&b).unwrap(), b"content");
        // Rename over an existing file replaces it.
        std::fs::write(&a, b"other").unwrap();
        fs::rename(&a, &b).await.unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"other");

        let hard = dir.join("hard");
        fs::hard_link(&b, &hard).await.unwrap();
        let (mb, mh) = (fs::metadata(&b).await.unwrap(), fs::metadata(&hard).await.unwrap());
        assert_eq!(mb.ino(), mh.ino());
        assert_eq!(mb.nlink(), 2);
        assert_eq!(
            fs::hard_link(&b, &hard).await.unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );

        let soft = dir.join("soft");
        fs::symlink("b", &soft).await.unwrap();
        assert_eq!(std::fs::read_link(&soft).unwrap(), std::path::Path::new("b"));
        let follow = fs::metadata(&soft).await.unwrap();
        assert!(follow.is_file());
        assert_eq!(follow.ino(), mb.ino());
        let own = fs::symlink_metadata(&soft).await.unwrap();
        assert!(own.is_symlink() && !own.is_file());
        assert_ne!(own.ino(), mb.ino());
        // A dangling link: metadata fails, symlink_metadata works.
        fs::symlink("nowhere", dir.join("dangling")).await.unwrap();
        assert_eq!(
            fs::metadata(dir.join("dangling")).await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(fs::symlink_metadata(dir.join("dangling")).await.unwrap().is_symlink());

        fs::remove_file(&soft).await.unwrap();
        assert!(b.exists(), "removing a link keeps its target");
        fs::remove_file(&b).await.unwrap();
        assert_eq!(fs::metadata(&hard).await.unwrap().nlink(), 1);
    });
}
}

both_drivers! {
fn read_write_and_copy_whole_files() {
    let dir = TempDir::new("whole");
    support::run(async {
        let path = dir.join("w");
        fs::write(&path, b"hello".as_slice()).await.unwrap();
        assert_eq!(fs::read(&path).await.unwrap(), b"hello");
        // write truncates.
        fs::write(&path, b"hi".to_vec()).await.unwrap();
        assert_eq!(fs::read(&path).await.unwrap(), b"hi");
        // Empty and large files.
        fs::write(&path, Vec::new()).await.unwrap();
        assert!(fs::read(&path).await.unwrap().is_empty());
        let big = pattern_vec(0, 3 * 1024 * 1024 + 7);
        fs::write(&path, big.clone()).await.unwrap();
        assert!(fs::read(&path).await.unwrap() == big);
        // A file whose size the metadata does not tell (procfs).
        let status = fs::read("/proc/self/status").await.unwrap();
        assert!(status.starts_with(b"Name:"));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let to = dir.join("copy");
        assert_eq!(fs::copy(&path, &to).await.unwrap(), big.len() as u64);
        assert!(std::fs::read(&to).unwrap() == big);
        assert_eq!(std::fs::metadata(&to).unwrap().permissions().mode() & 0o777, 0o640);
        // Copy over an existing, longer file truncates it.
        fs::write(&path, b"short".as_slice()).await.unwrap();
        assert_eq!(fs::copy(&path, &to).await.unwrap(), 5);
        assert_eq!(std::fs::read(&to).unwrap(), b"short");

        assert_eq!(
            fs::copy(dir.join("missing"), &to).await.unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            fs::copy(dir.path(), &to).await.unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    });
}
}
