//! `TlsAcceptor`: the server side of a TLS handshake.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection};

use super::stream::tls_error;
use super::{DEFAULT_HANDSHAKE_TIMEOUT, TlsStream, Transport};

/// Runs the server side of TLS handshakes with one rustls [`ServerConfig`].
///
/// Cheap to clone (the config is shared). Call [`accept`](Self::accept) in
/// each connection's own task, so a slow client delays only itself.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use corio::net::TcpListener;
/// use corio::tls::{TlsAcceptor, rustls};
///
/// # fn config() -> rustls::ServerConfig { unimplemented!() }
/// let acceptor = TlsAcceptor::from(Arc::new(config())).handshake_timeout(Duration::from_secs(5));
/// corio::run(async move {
///     let listener = TcpListener::bind("127.0.0.1:9443")?;
///     loop {
///         let (tcp, _) = listener.accept().await?;
///         let acceptor = acceptor.clone();
///         corio::spawn(async move {
///             match acceptor.accept(tcp).await {
///                 Ok(_tls) => { /* serve `_tls` */ }
///                 Err(e) => eprintln!("handshake failed: {e}"),
///             }
///         });
///     }
///     # #[allow(unreachable_code)]
///     # Ok::<(), std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<ServerConfig>,
    timeout: Duration,
}

impl TlsAcceptor {
    /// An acceptor with the default handshake timeout (10 s).
    pub fn new(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor {
            config,
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Sets how long a handshake may take before [`accept`](Self::accept)
    /// fails with `TimedOut` and closes the connection.
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsAcceptor {
        self.timeout = timeout;
        self
    }

    /// The config handshakes use.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the server side of the handshake on `stream`.
    ///
    /// Fails with `TimedOut` when the handshake outlasts the timeout,
    /// `InvalidData` (with the [`rustls::Error`] inside) when the peer sends
    /// something that is not TLS or that the config refuses, `UnexpectedEof`
    /// when the peer closes first; in each case the connection is closed
    /// (after an alert, where TLS allows one).
    ///
    /// Not cancel-safe: a dropped `accept` abandons the handshake (and the
    /// connection with it).
    pub async fn accept<S: Transport>(&self, stream: S) -> io::Result<TlsStream<S>> {
        let conn = ServerConnection::new(self.config.clone()).map_err(tls_error)?;
        let mut tls = TlsStream::new(stream, conn.into());
        super::with_timeout(self.timeout, tls.handshake()).await?;
        Ok(tls)
    }
}

impl From<Arc<ServerConfig>> for TlsAcceptor {
    fn from(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor::new(config)
    }
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
