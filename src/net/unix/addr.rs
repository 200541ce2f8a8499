//! `SocketAddr`: where a Unix socket lives — a path, a Linux abstract name,
//! or nowhere (unnamed).
//!
//! How it works: the address is a `socket2::SockAddr` holding a
//! `sockaddr_un`, the form every op passes to the kernel. The constructors
//! check what the kernel would reject less clearly (or misread): a path too
//! long for `sun_path`, an empty path, a NUL byte inside a path. std's
//! `std::os::unix::net::SocketAddr` (say from `SocketAddrExt::from_abstract_name`)
//! converts into it.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use socket2::SockAddr;

/// Bytes in `sun_path`: a path needs one more for its terminating NUL, an
/// abstract name one more for its leading NUL.
const SUN_PATH: usize = 108;

/// The address of a Unix socket: a path in the file system, a Linux
/// abstract name (no file; gone with the last socket bound to it), or
/// unnamed (a socket that was never bound, say the client side of most
/// connections).
///
/// ```
/// use corio::net::unix::SocketAddr;
///
/// let a = SocketAddr::from_pathname("/tmp/app.sock").unwrap();
/// assert_eq!(a.as_pathname().unwrap().to_str(), Some("/tmp/app.sock"));
/// let b = SocketAddr::from_abstract_name(b"app").unwrap();
/// assert_eq!(b.as_abstract_name(), Some(&b"app"[..]));
/// // Too long for `sun_path`:
/// let long = "x".repeat(200);
/// assert_eq!(
///     SocketAddr::from_pathname(&long).unwrap_err().kind(),
///     std::io::ErrorKind::InvalidInput
/// );
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SocketAddr(SockAddr);

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl SocketAddr {
    /// The address of the socket file at `path`.
    ///
    /// `InvalidInput` when the path is empty, holds a NUL byte, or is longer
    /// than 107 bytes (`sun_path` holds 108 with the terminating NUL).
    pub fn from_pathname(path: impl AsRef<Path>) -> io::Result<SocketAddr> {
        let bytes = path.as_ref().as_os_str().as_bytes();
        if bytes.is_empty() {
            return Err(invalid("corio: an empty path is not a Unix socket address"));
        }
        if bytes.contains(&0) {
            return Err(invalid(
                "corio: a Unix socket path must not hold a NUL byte",
            ));
        }
        if bytes.len() >= SUN_PATH {
            return Err(invalid(
                "corio: a Unix socket path must be shorter than 108 bytes (sun_path)",
            ));
        }
        SockAddr::unix(path.as_ref()).map(SocketAddr)
    }

    /// The Linux abstract address `name` (any bytes, up to 107 of them):
    /// no file is created, and the name is free again once the last socket
    /// bound to it is closed.
    pub fn from_abstract_name(name: impl AsRef<[u8]>) -> io::Result<SocketAddr> {
        let name = name.as_ref();
        if name.len() >= SUN_PATH {
            return Err(invalid(
                "corio: an abstract socket name must be shorter than 108 bytes (sun_path)",
            ));
        }
        // socket2 reads a leading NUL as "abstract" and does not add one.
        let mut bytes = Vec::with_capacity(name.len() + 1);
        bytes.push(0);
        bytes.extend_from_slice(name);
        SockAddr::unix(OsStr::from_bytes(&bytes)).map(SocketAddr)
    }

    /// The path, for an address in the file system.
    pub fn as_pathname(&self) -> Option<&Path> {
        self.0.as_pathname()
    }

    /// The name (without its leading NUL), for a Linux abstract address.
    pub fn as_abstract_name(&self) -> Option<&[u8]> {
        self.0.as_abstract_namespace()
    }

    /// True for the address of a socket that was never bound.
    pub fn is_unnamed(&self) -> bool {
        self.0.is_unnamed()
    }

    /// An address the kernel reported for a Unix socket.
    pub(crate) fn from_sock(addr: SockAddr) -> io::Result<SocketAddr> {
        if addr.is_unix() {
            Ok(SocketAddr(addr))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "corio: not a Unix socket address",
            ))
        }
    }

    /// The address of an unbound socket.
    pub(crate) fn unnamed() -> SocketAddr {
        // SAFETY: an all-zero sockaddr_un with only its family set is the
        // unnamed address; its length is that of `sun_family` alone.
        let addr = unsafe {
            SockAddr::try_init(|storage, len| {
                let un = storage.cast::<libc::sockaddr_un>();
                (*un).sun_family = libc::AF_UNIX as libc::sa_family_t;
                *len = std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t;
                Ok(())
            })
        };
        SocketAddr(addr.expect("the closure does not fail").1)
    }

    /// The address as the ops pass it to the kernel.
    pub(crate) fn as_sock(&self) -> &SockAddr {
        &self.0
    }
}

impl fmt::Debug for SocketAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = self.as_pathname() {
            write!(f, "{path:?} (pathname)")
        } else if let Some(name) = self.as_abstract_name() {
            write!(f, "\"{}\" (abstract)", name.escape_ascii())
        } else {
            f.write_str("(unnamed)")
        }
    }
}

impl From<&std::os::unix::net::SocketAddr> for SocketAddr {
    fn from(addr: &std::os::unix::net::SocketAddr) -> SocketAddr {
        let ours = if let Some(path) = addr.as_pathname() {
            SocketAddr::from_pathname(path)
        } else if let Some(name) = addr.as_abstract_name() {
            SocketAddr::from_abstract_name(name)
        } else {
            Ok(SocketAddr::unnamed())
        };
        // std made these from the same limits.
        ours.expect("std's Unix socket address is valid")
    }
}

impl From<std::os::unix::net::SocketAddr> for SocketAddr {
    fn from(addr: std::os::unix::net::SocketAddr) -> SocketAddr {
        SocketAddr::from(&addr)
    }
}

impl From<&SocketAddr> for SocketAddr {
    fn from(addr: &SocketAddr) -> SocketAddr {
        addr.clone()
    }
}

impl TryFrom<&SocketAddr> for std::os::unix::net::SocketAddr {
    type Error = io::Error;

    /// std's form of a path or abstract address; `InvalidInput` for an
    /// unnamed one (std cannot make one).
    fn try_from(addr: &SocketAddr) -> io::Result<std::os::unix::net::SocketAddr> {
        if let Some(path) = addr.as_pathname() {
            std::os::unix::net::SocketAddr::from_pathname(path)
        } else if let Some(name) = addr.as_abstract_name() {
            std::os::unix::net::SocketAddr::from_abstract_name(name)
        } else {
            Err(invalid("corio: std cannot represent an unnamed address"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        let p = SocketAddr::from_pathname("/run/x.sock").unwrap();
        assert_eq!(p.as_pathname(), Some(Path::new("/run/x.sock")));
        assert!(p.as_abstract_name().is_none() && !p.is_unnamed());
        let a = SocketAddr::from_abstract_name(b"n\0x").unwrap();
        assert_eq!(a.as_abstract_name(), Some(&b"n\0x"[..]));
        assert!(a.as_pathname().is_none() && !a.is_unnamed());
        let u = SocketAddr::unnamed();
        assert!(u.is_unnamed() && u.as_pathname().is_none() && u.as_abstract_name().is_none());
        assert_eq!(format!("{u:?}"), "(unnamed)");
        assert_eq!(format!("{a:?}"), "\"n\\x00x\" (abstract)");
        assert_eq!(format!("{p:?}"), "\"/run/x.sock\" (pathname)");
    }

    #[test]
    fn bad_paths_are_invalid_input() {
        let longest = "x".repeat(SUN_PATH - 1);
        assert!(SocketAddr::from_pathname(&longest).is_ok());
        for bad in ["x".repeat(SUN_PATH), String::new(), "a\0b".to_string()] {
            let e = SocketAddr::from_pathname(&bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert!(SocketAddr::from_abstract_name(vec![b'x'; SUN_PATH - 1]).is_ok());
        let e = SocketAddr::from_abstract_name(vec![b'x'; SUN_PATH]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn std_addresses_convert_both_ways() {
        let std_abs = std::os::unix::net::SocketAddr::from_abstract_name(b"abc").unwrap();
        let ours = SocketAddr::from(&std_abs);
        assert_eq!(ours.as_abstract_name(), Some(&b"abc"[..]));
        let back = std::os::unix::net::SocketAddr::try_from(&ours).unwrap();
        assert_eq!(back.as_abstract_name(), Some(&b"abc"[..]));
        let std_path = std::os::unix::net::SocketAddr::from_pathname("/a/b").unwrap();
        assert_eq!(
            SocketAddr::from(std_path).as_pathname(),
            Some(Path::new("/a/b"))
        );
        assert!(std::os::unix::net::SocketAddr::try_from(&SocketAddr::unnamed()).is_err());
    }
}
