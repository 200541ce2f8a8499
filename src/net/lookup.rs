//! Name resolution off the runtime's thread: [`lookup_host`] and the
//! [`ToSocketAddrs`] trait that `connect` and `send_to` take.
//!
//! How it works: an address is first looked at on the runtime's thread. A
//! literal (`SocketAddr`, `"127.0.0.1:80"`, `("::1", 80)`) becomes its
//! address at once, with no syscall and no thread hop. Anything else is a
//! host name: `getaddrinfo(3)` (through std's resolver) runs on the
//! runtime's blocking pool, as asyncio's `getaddrinfo` runs in the
//! executor, so a slow DNS server stalls only the task that asked, never the
//! runtime. Dropping the future leaves the lookup to finish on its pool
//! thread; its result is then dropped.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Addresses a socket can connect or send to, resolved without blocking
/// the runtime: corio's counterpart of [`std::net::ToSocketAddrs`],
/// implemented for the same types.
///
/// Literal addresses are used as they are; host names (`"example.com:80"`,
/// `("localhost", 8080)`) are resolved on the blocking pool (see
/// [`lookup_host`]). The trait is sealed: its methods are corio's own.
pub trait ToSocketAddrs: sealed::Resolve {}

mod sealed {
    use super::Addrs;

    /// How an address value resolves (corio-internal).
    pub trait Resolve {
        /// The addresses, or the name to look up.
        #[doc(hidden)]
        fn addrs(&self) -> std::io::Result<Addrs>;
    }
}

use sealed::Resolve;

/// An address value, looked at: literal addresses, or a name to look up.
#[doc(hidden)]
#[derive(Debug)]
pub enum Addrs {
    /// Literal addresses.
    Ready(Vec<SocketAddr>),
    /// A host name and port, for `getaddrinfo`.
    Lookup(String, u16),
}

macro_rules! literal {
    ($($t:ty => |$v:ident| $e:expr;)*) => {$(
        impl ToSocketAddrs for $t {}
        impl Resolve for $t {
            fn addrs(&self) -> io::Result<Addrs> {
                let $v = self;
                Ok(Addrs::Ready(vec![$e]))
            }
        }
    )*};
}

literal! {
    SocketAddr => |a| *a;
    SocketAddrV4 => |a| SocketAddr::V4(*a);
    SocketAddrV6 => |a| SocketAddr::V6(*a);
    (IpAddr, u16) => |a| SocketAddr::new(a.0, a.1);
    (Ipv4Addr, u16) => |a| SocketAddr::new(IpAddr::V4(a.0), a.1);
    (Ipv6Addr, u16) => |a| SocketAddr::new(IpAddr::V6(a.0), a.1);
}

/// A host and a port: an IP literal, or a name to look up.
fn host_port(host: &str, port: u16) -> Addrs {
    match host.parse::<IpAddr>() {
        Ok(ip) => Addrs::Ready(vec![SocketAddr::new(ip, port)]),
        Err(_) => Addrs::Lookup(host.to_string(), port),
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl Resolve for (&str, u16) {
    fn addrs(&self) -> io::Result<Addrs> {
        Ok(host_port(self.0, self.1))
    }
}

impl ToSocketAddrs for (String, u16) {}
impl Resolve for (String, u16) {
    fn addrs(&self) -> io::Result<Addrs> {
        Ok(host_port(&self.0, self.1))
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl ToSocketAddrs for str {}
impl Resolve for str {
    /// `"host:port"`, as std reads it: a socket address literal, else a host
    /// (an IP, or a name to look up) and a port after the last colon.
    fn addrs(&self) -> io::Result<Addrs> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(Addrs::Ready(vec![addr]));
        }
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| invalid("invalid socket address"))?;
        let port = port.parse().map_err(|_| invalid("invalid port value"))?;
        Ok(host_port(host, port))
    }
}

impl ToSocketAddrs for String {}
impl Resolve for String {
    fn addrs(&self) -> io::Result<Addrs> {
        self.as_str().addrs()
    }
}

impl ToSocketAddrs for &[SocketAddr] {}
impl Resolve for &[SocketAddr] {
    fn addrs(&self) -> io::Result<Addrs> {
        Ok(Addrs::Ready(self.to_vec()))
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: Resolve + ?Sized> Resolve for &T {
    fn addrs(&self) -> io::Result<Addrs> {
        (**self).addrs()
    }
}

/// Resolves `addr` into a non-empty list: literals at once, names on the
/// blocking pool.
pub(crate) async fn resolve<A: ToSocketAddrs + ?Sized>(addr: &A) -> io::Result<Vec<SocketAddr>> {
    let addrs = match addr.addrs()? {
        Addrs::Ready(addrs) => addrs,
        Addrs::Lookup(host, port) => getaddrinfo(host, port).await?,
    };
    if addrs.is_empty() {
        return Err(invalid("could not resolve to any address"));
    }
    Ok(addrs)
}

/// Runs std's resolver (`getaddrinfo`) for `host` on the blocking pool.
async fn getaddrinfo(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    crate::spawn_blocking(move || {
        std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port)).map(Iterator::collect)
    })
    .await?
}

/// Resolves a host and port into socket addresses, like `getaddrinfo(3)`,
/// without blocking the runtime: a host name is looked up on the runtime's
/// blocking pool (other tasks keep running meanwhile); a literal address is
/// returned as it is, with no lookup.
///
/// Takes what [`TcpStream::connect`](crate::net::TcpStream::connect) takes:
/// `"host:port"`, `(host, port)`, a `SocketAddr`... An unknown host is an
/// error from the resolver; a string without a port is `InvalidInput`.
///
/// # Panics
///
/// Panics outside a corio runtime when a name has to be looked up.
///
/// ```no_run
/// corio::run(async {
///     for addr in corio::net::lookup_host("localhost:80").await? {
///         println!("{addr}");
///     }
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
pub async fn lookup_host(host: impl ToSocketAddrs) -> io::Result<impl Iterator<Item = SocketAddr>> {
    Ok(resolve(&host).await?.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(a: &(impl ToSocketAddrs + ?Sized)) -> Vec<SocketAddr> {
        match a.addrs().unwrap() {
            Addrs::Ready(v) => v,
            Addrs::Lookup(h, p) => panic!("expected a literal, got a lookup of {h}:{p}"),
        }
    }

    #[test]
    fn literals_need_no_lookup() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:443".parse().unwrap();
        assert_eq!(ready("127.0.0.1:80"), vec![v4]);
        assert_eq!(ready("[::1]:443"), vec![v6]);
        assert_eq!(ready(&("::1", 443)), vec![v6]);
        assert_eq!(ready(&(String::from("127.0.0.1"), 80)), vec![v4]);
        assert_eq!(ready(&v4), vec![v4]);
        assert_eq!(ready(&&[v4, v6][..]), vec![v4, v6]);
        assert_eq!(ready(&(Ipv4Addr::LOCALHOST, 80)), vec![v4]);
    }

    #[test]
    fn names_are_looked_up_and_bad_input_is_refused() {
        match "localhost:8080".addrs().unwrap() {
            Addrs::Lookup(h, p) => assert_eq!((h.as_str(), p), ("localhost", 8080)),
            other => panic!("{other:?}"),
        }
        for bad in ["localhost", "localhost:http", "127.0.0.1:70000", ""] {
            let e = bad.addrs().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
    }
}
