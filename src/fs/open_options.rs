//! [`OpenOptions`]: how to open a file, like `std::fs::OpenOptions`.
//!
//! How it works: the options become the flags of one openat(2) (an
//! `IORING_OP_OPENAT` on io_uring), always with `O_CLOEXEC`. Invalid
//! combinations are refused before anything reaches the kernel, as std does.

use std::io;
use std::path::Path;

use super::File;
use crate::op::Op;
use crate::op::fs::{Open, c_path};

/// Options to open a file: access mode, creation, truncation, permission
/// bits and extra `open(2)` flags.
///
/// ```no_run
/// use corio::fs::OpenOptions;
///
/// corio::run(async {
///     let file = OpenOptions::new()
///         .write(true)
///         .create(true)
///         .mode(0o600)
///         .open("/tmp/corio-example.log")
///         .await?;
///     let (res, _) = file.write_all_at(b"hello\n".as_slice(), 0).await;
///     res
/// })
/// .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
    custom_flags: i32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenOptions {
    /// No access mode set (opening fails until one is), mode `0o666`.
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut Self {
        self.read = read;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut Self {
        self.write = write;
        self
    }

    /// Open for appending (implies writing): every write goes to the end,
    /// whatever position it names.
    pub fn append(&mut self, append: bool) -> &mut Self {
        self.append = append;
        self
    }

    /// Truncate the file to length 0 (needs write access).
    pub fn truncate(&mut self, truncate: bool) -> &mut Self {
        self.truncate = truncate;
        self
    }

    /// Create the file if it does not exist (needs write or append access).
    pub fn create(&mut self, create: bool) -> &mut Self {
        self.create = create;
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists
    /// (`O_CREAT | O_EXCL`; `create` and `truncate` are then ignored).
    pub fn create_new(&mut self, create_new: bool) -> &mut Self {
        self.create_new = create_new;
        self
    }

    /// Permission bits of a created file, before the umask (default `0o666`).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }

    /// Extra `open(2)` flags, such as `libc::O_DIRECT` or `libc::O_NOATIME`.
    /// The access-mode bits are ignored (use `read`/`write`); `O_CLOEXEC` is
    /// always set.
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.custom_flags = flags;
        self
    }

    fn access_mode(&self) -> io::Result<i32> {
        match (self.read, self.write, self.append) {
            (true, false, false) => Ok(libc::O_RDONLY),
            (false, true, false) => Ok(libc::O_WRONLY),
            (true, true, false) => Ok(libc::O_RDWR),
            (false, _, true) => Ok(libc::O_WRONLY | libc::O_APPEND),
            (true, _, true) => Ok(libc::O_RDWR | libc::O_APPEND),
            (false, false, false) => Err(invalid("no access mode: set read, write or append")),
        }
    }

    fn creation_mode(&self) -> io::Result<i32> {
        if !self.write && !self.append && (self.truncate || self.create || self.create_new) {
            return Err(invalid("creating or truncating a file needs write access"));
        }
        if self.append && self.truncate && !self.create_new {
            return Err(invalid("append and truncate together"));
        }
        Ok(match (self.create, self.truncate, self.create_new) {
            (_, _, true) => libc::O_CREAT | libc::O_EXCL,
            (false, false, false) => 0,
            (true, false, false) => libc::O_CREAT,
            (false, true, false) => libc::O_TRUNC,
            (true, true, false) => libc::O_CREAT | libc::O_TRUNC,
        })
    }

    /// The `open(2)` flags these options give (without `O_CLOEXEC`).
    pub(crate) fn flags(&self) -> io::Result<i32> {
        Ok(self.access_mode()? | self.creation_mode()? | (self.custom_flags & !libc::O_ACCMODE))
    }

    /// Opens `path` with these options, like openat(2).
    ///
    /// A missing file gives `NotFound`, a refused one `PermissionDenied`.
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let flags = self.flags()?;
        let path = c_path(path.as_ref())?;
        let fd = Op::new(Open::new(path, flags, self.mode)).await?;
        let file = File::from_owned(fd, flags & libc::O_DIRECT == 0);
        crate::op::install_file(file.shared_fd());
        Ok(file)
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("corio: {msg}"))
}
