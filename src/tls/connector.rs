//! `TlsConnector`: the client side of a TLS handshake.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use super::stream::tls_error;
use super::{DEFAULT_HANDSHAKE_TIMEOUT, TlsStream, Transport};

/// Runs the client side of TLS handshakes with one rustls [`ClientConfig`].
///
/// Cheap to clone (the config is shared).
///
/// ```no_run
/// use std::sync::Arc;
///
/// use corio::net::TcpStream;
/// use corio::tls::{TlsConnector, rustls};
///
/// # fn config() -> rustls::ClientConfig { unimplemented!() }
/// corio::run(async {
///     let connector = TlsConnector::from(Arc::new(config()));
///     let tcp = TcpStream::connect("127.0.0.1:9443").await?;
///     let tls = connector.connect("localhost", tcp).await?;
///     println!("{:?}", tls.protocol_version());
///     Ok::<_, std::io::Error>(())
/// })
/// .unwrap();
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    timeout: Duration,
}

impl TlsConnector {
    /// A connector with the default handshake timeout (10 s).
    pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            config,
            timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Sets how long a handshake may take before [`connect`](Self::connect)
    /// fails with `TimedOut`.
    pub fn handshake_timeout(mut self, timeout: Duration) -> TlsConnector {
        self.timeout = timeout;
        self
    }

    /// The config handshakes use.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Runs the client side of the handshake on `stream`, checking that the
    /// server's certificate is valid for `server_name` (a DNS name, sent as
    /// SNI, or an IP address).
    ///
    /// A certificate that does not verify (wrong name, unknown issuer,
    /// expired) fails with `InvalidData` holding a
    /// [`rustls::Error::InvalidCertificate`]; a name that is neither a DNS name
    /// nor an IP address with `InvalidInput`; a handshake that outlasts the
    /// timeout with `TimedOut`.
    ///
    /// Not cancel-safe: a dropped `connect` abandons the handshake (and the
    /// connection with it).
    pub async fn connect<S: Transport>(
        &self,
        server_name: &str,
        stream: S,
    ) -> io::Result<TlsStream<S>> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid TLS server name {server_name:?}: {e}"),
            )
        })?;
        let conn = ClientConnection::new(self.config.clone(), name).map_err(tls_error)?;
        let mut tls = TlsStream::new(stream, conn.into());
        super::with_timeout(self.timeout, tls.handshake()).await?;
        Ok(tls)
    }
}

impl From<Arc<ClientConfig>> for TlsConnector {
    fn from(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector::new(config)
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("alpn_protocols", &self.config.alpn_protocols)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
