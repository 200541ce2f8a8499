//! TLS over corio's owned-buffer streams, on rustls with the ring provider.
//!
//! How it works: a [`TlsStream`] owns the transport (a [`TcpStream`]) and a
//! rustls [`Connection`](rustls::Connection). rustls itself does no I/O: the
//! stream reads ciphertext from the socket into a buffer it owns, hands it to
//! rustls, and copies the decrypted bytes into the caller's buffer; writes go
//! the other way, rustls's records being gathered into a second owned buffer
//! that is sent with one write. Those internal buffers move into the socket
//! operation and back, so the driver owns them while the kernel may touch
//! them, as for any corio I/O.
//!
//! [`TlsAcceptor`] (server side, from an `Arc<ServerConfig>`) and
//! [`TlsConnector`] (client side, from an `Arc<ClientConfig>`) run the
//! handshake under a timeout (10 s unless set) and give a [`TlsStream`]. ALPN,
//! SNI-based certificate choice, client authentication and the protocol
//! versions are set on the rustls configs; the [`rustls`] crate is re-exported
//! so its version always matches. [`load_certs`] and [`load_private_key`]
//! read PEM files.
//!
//! Run a server's handshakes in each connection's own task (accept the TCP
//! connection, `spawn`, then `acceptor.accept(stream)` inside the task), so a
//! client that stalls mid-handshake delays nobody else.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use corio::IoBuf;
//! use corio::net::TcpListener;
//! use corio::tls::{self, TlsAcceptor, rustls};
//!
//! fn main() -> std::io::Result<()> {
//!     let certs = tls::load_certs("cert.pem")?;
//!     let key = tls::load_private_key("key.pem")?;
//!     let provider = Arc::new(rustls::crypto::ring::default_provider());
//!     let config = rustls::ServerConfig::builder_with_provider(provider)
//!         .with_safe_default_protocol_versions()
//!         .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
//!         .map_err(std::io::Error::other)?;
//!     let acceptor = TlsAcceptor::from(Arc::new(config));
//!     corio::run(async move {
//!         let listener = TcpListener::bind("127.0.0.1:9443")?;
//!         loop {
//!             let (tcp, _) = listener.accept().await?;
//!             let acceptor = acceptor.clone();
//!             corio::spawn(async move {
//!                 let Ok(mut stream) = acceptor.accept(tcp).await else { return };
//!                 let mut buf = vec![0u8; 16 * 1024];
//!                 loop {
//!                     let (res, b) = stream.read(buf).await;
//!                     let n = match res {
//!                         Ok(0) | Err(_) => break,
//!                         Ok(n) => n,
//!                     };
//!                     let (res, b) = stream.write_all(b.slice(..n)).await;
//!                     buf = b.into_inner();
//!                     if res.is_err() {
//!                         return;
//!                     }
//!                 }
//!                 let _ = stream.shutdown().await;
//!             });
//!         }
//!     })
//! }
//! ```
//!
//! [`TcpStream`]: crate::net::TcpStream

mod acceptor;
mod connector;
mod pem;
pub(crate) mod stream;
mod transport;

pub use acceptor::TlsAcceptor;
pub use connector::TlsConnector;
pub use pem::{certs_from_pem, load_certs, load_private_key, private_key_from_pem};
/// The rustls crate corio's TLS is built on, for its configs and types.
pub use rustls;
pub use stream::TlsStream;
pub use transport::Transport;

use std::time::Duration;

/// The default time a handshake may take before it fails with `TimedOut`.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a handshake, failing with `TimedOut` after `timeout`.
async fn with_timeout(
    timeout: Duration,
    handshake: impl std::future::Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    match crate::time::timeout(timeout, handshake).await {
        Ok(res) => res,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}
