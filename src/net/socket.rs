//! Socket creation and address helpers shared by TCP and UDP.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::fd::SharedFd;
use crate::op::Op;
use crate::op::net::Connect;

/// Resolves `addr` into a non-empty list (like std, via getaddrinfo for names).
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        ));
    }
    Ok(addrs)
}

/// A new close-on-exec socket in blocking mode.
pub(crate) fn new_socket(addr: &SocketAddr, ty: Type) -> io::Result<Socket> {
    let protocol = if ty == Type::STREAM {
        Protocol::TCP
    } else {
        Protocol::UDP
    };
    Socket::new(Domain::for_address(*addr), ty, Some(protocol))
}

/// Tries each address in turn; returns the first success or the last error.
pub(crate) fn each_addr<T>(
    addrs: &[SocketAddr],
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addrs {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("resolve returns at least one address"))
}

/// Connects a fresh socket of type `ty` to the first address that accepts,
/// giving each attempt at most `per_attempt` (then `TimedOut`, and the next
/// address) when set.
pub(crate) async fn connect(
    addrs: &[SocketAddr],
    ty: Type,
    per_attempt: Option<Duration>,
) -> io::Result<SharedFd> {
    let mut last = None;
    for a in addrs {
        let fd = SharedFd::new(OwnedFd::from(new_socket(a, ty)?));
        let op = Op::new(Connect::new(&fd, (*a).into()));
        let res = match per_attempt {
            None => op.await,
            Some(limit) => match crate::time::timeout(limit, op).await {
                Ok(res) => res,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {a} timed out after {limit:?}"),
                )),
            },
        };
        match res {
            Ok(()) => return Ok(fd),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("resolve returns at least one address"))
}
