//! Opening one SMTP connection: TCP with `TCP_NODELAY`, TLS from the first
//! byte (`smtps://`) or STARTTLS when offered (`smtp://`), EHLO, and AUTH
//! when credentials are configured. lettre speaks the protocol; the socket
//! is ours so that Nagle's algorithm cannot hold the final `.` of each
//! message back for a delayed ACK (40 ms a message on Linux).

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use mailqueue_core::delivery::{DeliveryError, FailureClass};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How the connection is secured.
pub enum Security {
    /// No TLS (loopback relays, tests).
    Plain,
    /// STARTTLS when the relay offers it.
    StartTls(TlsParameters),
    /// TLS from the first byte.
    Implicit(tokio_rustls::TlsConnector),
}

/// Where and how to connect.
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<Credentials>,
    pub hello: ClientId,
    pub timeout: Duration,
}

/// A TLS stream lettre can drive.
#[derive(Debug)]
struct TlsOverTcp(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsOverTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsOverTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsOverTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// A TLS client configuration trusting the system's root certificates.
pub fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

fn connection_error(what: &str, e: impl std::fmt::Display) -> DeliveryError {
    DeliveryError::transient(FailureClass::Connection, None, format!("{what}: {e}"))
}

async fn within<T>(
    timeout: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, DeliveryError>>,
) -> Result<T, DeliveryError> {
    tokio::time::timeout(timeout, f).await.unwrap_or_else(|_| {
        Err(DeliveryError::transient(
            FailureClass::Timeout,
            None,
            format!("{what} took longer than {timeout:?}"),
        ))
    })
}

/// Opens a connection ready for `MAIL FROM`.
pub async fn open(
    endpoint: &Endpoint,
    classify: fn(lettre::transport::smtp::Error) -> DeliveryError,
) -> Result<AsyncSmtpConnection, DeliveryError> {
    let address = format!("{}:{}", endpoint.host, endpoint.port);
    let tcp = within(endpoint.timeout, "connecting to the relay", async {
        TcpStream::connect(&address)
            .await
            .map_err(|e| connection_error(&format!("connecting to {address}"), e))
    })
    .await?;
    tcp.set_nodelay(true)
        .map_err(|e| connection_error("setting TCP_NODELAY", e))?;
    let stream: Box<dyn AsyncTokioStream> = match &endpoint.security {
        Security::Implicit(connector) => {
            let name =
                rustls::pki_types::ServerName::try_from(endpoint.host.clone()).map_err(|e| {
                    DeliveryError::transient(
                        FailureClass::Tls,
                        None,
                        format!("{}: {e}", endpoint.host),
                    )
                })?;
            let tls = within(endpoint.timeout, "the TLS handshake", async {
                connector.connect(name, tcp).await.map_err(|e| {
                    DeliveryError::transient(
                        FailureClass::Tls,
                        None,
                        format!("TLS with {address}: {e}"),
                    )
                })
            })
            .await?;
            Box::new(TlsOverTcp(tls))
        }
        _ => Box::new(tcp),
    };
    within(endpoint.timeout, "greeting the relay", async {
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &endpoint.hello)
            .await
            .map_err(classify)?;
        if let Security::StartTls(params) = &endpoint.security {
            if conn.can_starttls() {
                conn.starttls(params.clone(), &endpoint.hello)
                    .await
                    .map_err(classify)?;
            }
        }
        if let Some(credentials) = &endpoint.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(classify)?;
        }
        Ok(conn)
    })
    .await
}
