//! The listeners: in the clear with STARTTLS offered (submission's port
//! 587, the MX's port 25) or TLS from the first byte (port 465), each
//! capped in connections per client address and in all.

use crate::intake::Intake;
use crate::reply::Reply;
use crate::session::Session;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// How a listener's connections start.
#[derive(Clone)]
pub enum Security {
    /// In the clear, with STARTTLS offered when there is a certificate.
    StartTls(Option<TlsAcceptor>),
    /// TLS from the first byte (RFC 8314).
    Implicit(TlsAcceptor),
}

/// A certificate that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("reading the certificate chain {path}: {reason}")]
    Certificate { path: String, reason: String },
    #[error("reading the private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the certificate and key do not make a TLS server: {0}")]
    Config(String),
}

/// A TLS acceptor from PEM files: the certificate chain and its key.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsSetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsSetupError::Certificate {
            path: cert.display().to_string(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::Certificate {
            path: cert.display().to_string(),
            reason: "it holds no certificate".into(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsSetupError::Key {
        path: key.display().to_string(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private_key)
        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Open connections, per client address and in all.
#[derive(Default)]
pub struct Connections {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A connection counted open until dropped.
pub struct OpenConnection {
    connections: Arc<Connections>,
    peer: IpAddr,
}

impl Connections {
    /// Counts a new connection from `peer`, unless a cap is reached.
    fn open(
        self: &Arc<Self>,
        peer: IpAddr,
        per_client: usize,
        total: usize,
    ) -> Option<OpenConnection> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let from_peer = open.1.get(&peer).copied().unwrap_or(0);
        if open.0 >= total || from_peer >= per_client {
            return None;
        }
        open.0 += 1;
        open.1.insert(peer, from_peer + 1);
        Some(OpenConnection {
            connections: self.clone(),
            peer,
        })
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.peer);
            }
        }
    }
}

/// Accepts connections on `listener` until `shutdown` completes; each is
/// served in a task of its own.
pub async fn serve(
    listener: TcpListener,
    security: Security,
    intake: Arc<dyn Intake>,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an SMTP connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let settings = intake.settings();
        let open = connections.open(
            peer.ip(),
            settings.max_connections_per_client,
            settings.max_connections,
        );
        let intake = intake.clone();
        let security = security.clone();
        tokio::spawn(async move {
            match open {
                Some(open) => {
                    connect(stream, peer.ip(), security, intake).await;
                    drop(open);
                }
                None => turn_away(stream, security).await,
            }
        });
    }
}

/// Serves one connection, after its TLS handshake when TLS is implicit.
async fn connect(stream: TcpStream, peer: IpAddr, security: Security, intake: Arc<dyn Intake>) {
    let _ = stream.set_nodelay(true);
    let session = match security {
        Security::StartTls(tls) => Session::new(Box::new(stream), peer, intake, tls, false),
        Security::Implicit(acceptor) => {
            let timeout = intake.settings().command_timeout;
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Session::new(Box::new(tls), peer, intake, None, true),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "an SMTP client's TLS handshake failed");
                    return;
                }
                Err(_) => return,
            }
        }
    };
    session.run().await;
}

/// Answers a connection over the caps with 421 and closes it (over TLS on
/// an implicit-TLS port, where a client reads nothing in the clear).
async fn turn_away(stream: TcpStream, security: Security) {
    let reply = Reply::new(421, "4.7.0", "too many connections; try again later");
    let mut bytes = Vec::new();
    reply.write_to(&mut bytes);
    match security {
        Security::StartTls(_) => {
            let mut stream = stream;
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Security::Implicit(acceptor) => {
            let handshake = acceptor.accept(stream);
            if let Ok(Ok(mut tls)) =
                tokio::time::timeout(std::time::Duration::from_secs(10), handshake).await
            {
                let _ = tls.write_all(&bytes).await;
                let _ = tls.shutdown().await;
            }
        }
    }
}
