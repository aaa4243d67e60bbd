//! The SMTP listeners: submission (`MAILQUEUE_SUBMISSION_*`) and the
//! bounce domain's MX (`MAILQUEUE_INBOUND_LISTEN`), bound at build time so
//! that a port in use fails the start, and served with the API's own
//! service and keys.

use crate::config::Config;
use anyhow::Context;
use mailqueue_api::ApiContext;
use mailqueue_core::store::ApiKeyReads;
use mailqueue_smtp_server::{BounceMx, Connections, Intake, Security, SessionSettings, Submission};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The bounce MX's largest message: reports are small, and a whole
/// returned message rarely exceeds this.
const MAX_REPORT_BYTES: usize = 10 * 1024 * 1024;

struct Listener {
    listener: TcpListener,
    security: Security,
    intake: Arc<dyn Intake>,
    connections: Arc<Connections>,
}

#[derive(Default)]
pub struct SmtpListeners {
    listeners: Vec<Listener>,
    submission_ports: Vec<u16>,
    inbound_port: Option<u16>,
}

async fn bind(address: SocketAddr, setting: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address} ({setting})"))
}

fn port(listener: &TcpListener) -> u16 {
    listener.local_addr().map(|a| a.port()).unwrap_or(0)
}

/// Binds the configured listeners (none by default).
pub async fn bind_all(
    config: &Config,
    api: &ApiContext,
    keys: Arc<dyn ApiKeyReads>,
) -> anyhow::Result<SmtpListeners> {
    let mut out = SmtpListeners::default();
    let c = &config.submission;
    let hostname = c
        .hostname
        .clone()
        .unwrap_or_else(mailqueue_smtp::default_hello_name);
    let settings = SessionSettings {
        hostname,
        max_message_bytes: config.max_body_bytes,
        allow_plaintext_auth: c.allow_plaintext_auth,
        command_timeout: c.command_timeout,
        data_timeout: c.data_timeout,
        max_connections_per_client: c.max_connections_per_client,
        ..SessionSettings::default()
    };
    if c.listen.is_some() || c.tls_listen.is_some() {
        let acceptor = match &c.tls {
            Some((cert, key)) => Some(mailqueue_smtp_server::tls_acceptor(cert, key)?),
            None => None,
        };
        let intake: Arc<dyn Intake> =
            Arc::new(Submission::new(api.service.clone(), keys, settings.clone()));
        let connections = Arc::new(Connections::default());
        if let Some(address) = c.listen {
            let listener = bind(address, "MAILQUEUE_SUBMISSION_LISTEN").await?;
            out.submission_ports.push(port(&listener));
            out.listeners.push(Listener {
                listener,
                security: Security::StartTls(acceptor.clone()),
                intake: intake.clone(),
                connections: connections.clone(),
            });
        }
        if let (Some(address), Some(acceptor)) = (c.tls_listen, acceptor) {
            let listener = bind(address, "MAILQUEUE_SUBMISSION_TLS_LISTEN").await?;
            out.submission_ports.push(port(&listener));
            out.listeners.push(Listener {
                listener,
                security: Security::Implicit(acceptor),
                intake,
                connections,
            });
        }
    }
    if let Some(bounces) = &config.bounces {
        if let Some(address) = bounces.inbound_listen {
            let listener = bind(address, "MAILQUEUE_INBOUND_LISTEN").await?;
            out.inbound_port = Some(port(&listener));
            let settings = SessionSettings {
                max_message_bytes: config.max_body_bytes.min(MAX_REPORT_BYTES),
                allow_plaintext_auth: false,
                ..settings
            };
            out.listeners.push(Listener {
                listener,
                security: Security::StartTls(None),
                intake: Arc::new(BounceMx::new(
                    api.service.clone(),
                    bounces.return_paths.clone(),
                    settings,
                    bounces.messages_per_minute,
                )),
                connections: Arc::new(Connections::default()),
            });
        }
    }
    Ok(out)
}

impl SmtpListeners {
    /// The submission ports: the STARTTLS one, then the implicit-TLS one.
    pub fn submission_ports(&self) -> Vec<u16> {
        self.submission_ports.clone()
    }

    /// The bounce domain's MX port, when it listens.
    pub fn inbound_port(&self) -> Option<u16> {
        self.inbound_port
    }

    /// Serves every listener until `stopped` turns true.
    pub fn spawn(self, stopped: watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
        self.listeners
            .into_iter()
            .map(|l| {
                if let Ok(address) = l.listener.local_addr() {
                    tracing::info!(%address, "an SMTP listener is ready");
                }
                let mut stopped = stopped.clone();
                tokio::spawn(mailqueue_smtp_server::serve(
                    l.listener,
                    l.security,
                    l.intake,
                    l.connections,
                    async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    },
                ))
            })
            .collect()
    }
}
