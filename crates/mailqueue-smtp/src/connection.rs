//! Opening one SMTP connection: TCP with `TCP_NODELAY`, TLS from the first
//! byte (`smtps://`) or STARTTLS (`smtp://`), EHLO (again after STARTTLS),
//! and AUTH when credentials are configured.
//!
//! STARTTLS is required unless the relay was configured as opportunistic:
//! a relay (or an attacker on the path who strips `250-STARTTLS` from its
//! EHLO reply) that does not offer it gets `QUIT` and nothing else, so
//! neither the credentials nor a message ever cross the network in clear.
//!
//! Each step has the per-command timeout on its own: connecting, the TLS
//! handshake, and every reply. `TCP_NODELAY` is set so that Nagle's
//! algorithm cannot hold the final `.` of each message back for a delayed
//! ACK (40 ms a message on Linux).

use crate::client::{ClientError, Credentials, Session, Step};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How the connection is secured.
pub enum Security {
    /// No TLS (loopback relays, tests).
    Plain,
    /// STARTTLS; when `required`, a relay that does not offer it is left
    /// before anything is sent.
    StartTls {
        connector: tokio_rustls::TlsConnector,
        required: bool,
    },
    /// TLS from the first byte.
    Implicit(tokio_rustls::TlsConnector),
}

/// Where and how to connect.
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<Credentials>,
    /// The EHLO name.
    pub hello_name: String,
    pub timeout: Duration,
}

/// A byte stream a session can run over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A session on an open connection, TLS or not.
pub type RelaySession = Session<Box<dyn Io>>;

/// A TLS client configuration trusting the system's root certificates
/// (and `SSL_CERT_FILE` when set).
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

async fn connect(endpoint: &Endpoint) -> Result<TcpStream, ClientError> {
    let address = format!("{}:{}", endpoint.host, endpoint.port);
    let tcp = match tokio::time::timeout(endpoint.timeout, TcpStream::connect(&address)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => {
            return Err(ClientError::Io {
                step: Step::Connect,
                source: std::io::Error::new(source.kind(), format!("{address}: {source}")),
            })
        }
        Err(_) => {
            return Err(ClientError::Timeout {
                step: Step::Connect,
                after: endpoint.timeout,
            })
        }
    };
    tcp.set_nodelay(true).map_err(|source| ClientError::Io {
        step: Step::Connect,
        source,
    })?;
    Ok(tcp)
}

async fn handshake(
    endpoint: &Endpoint,
    connector: &tokio_rustls::TlsConnector,
    tcp: TcpStream,
) -> Result<Box<dyn Io>, ClientError> {
    let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
        .map_err(|e| ClientError::Tls(format!("{}: {e}", endpoint.host)))?;
    match tokio::time::timeout(endpoint.timeout, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => Ok(Box::new(tls)),
        Ok(Err(e)) => Err(ClientError::Tls(format!(
            "{}:{}: {e}",
            endpoint.host, endpoint.port
        ))),
        Err(_) => Err(ClientError::Timeout {
            step: Step::TlsHandshake,
            after: endpoint.timeout,
        }),
    }
}

/// Opens a connection ready for `MAIL FROM`; whether it runs over TLS.
pub async fn open(endpoint: &Endpoint) -> Result<(RelaySession, bool), ClientError> {
    let mut encrypted = true;
    let tcp = connect(endpoint).await?;
    let mut session: RelaySession = match &endpoint.security {
        Security::Implicit(connector) => {
            let tls = handshake(endpoint, connector, tcp).await?;
            let mut session = Session::greet(tls, endpoint.timeout).await?;
            session.ehlo(&endpoint.hello_name).await?;
            session
        }
        Security::Plain | Security::StartTls { .. } => {
            let mut session = Session::greet(tcp, endpoint.timeout).await?;
            session.ehlo(&endpoint.hello_name).await?;
            match &endpoint.security {
                Security::StartTls { connector, .. } if session.capabilities().starttls => {
                    session.starttls().await?;
                    let tls = handshake(endpoint, connector, session.into_stream()).await?;
                    let mut session = Session::new(tls, endpoint.timeout);
                    session.ehlo(&endpoint.hello_name).await?;
                    session
                }
                Security::StartTls { required: true, .. } => {
                    session.quit().await;
                    return Err(ClientError::StartTlsMissing);
                }
                _ => {
                    encrypted = false;
                    session.map_stream(|tcp| Box::new(tcp) as Box<dyn Io>)
                }
            }
        }
    };
    if let Some(credentials) = &endpoint.credentials {
        session.authenticate(credentials).await?;
    }
    Ok((session, encrypted))
}
