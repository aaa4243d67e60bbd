//! The SMTP settings, each group checked together: submission
//! (`MAILQUEUE_SUBMISSION_*`: a listener needs a certificate unless
//! plaintext AUTH is allowed, and a certificate needs its key) and the
//! bounce domain (`MAILQUEUE_BOUNCE_*`, `MAILQUEUE_INBOUND_*`: a domain
//! needs its secret, an MX its domain).

use super::{ConfigError, Layers};
use mailqueue_core::return_path::ReturnPaths;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The submission listeners; both off by default, and opened only by the
/// roles that serve the API (`all`, `api`).
#[derive(Clone, Debug, Default)]
pub struct SubmissionConfig {
    /// Offers STARTTLS (port 587).
    pub listen: Option<SocketAddr>,
    /// TLS from the first byte (port 465).
    pub tls_listen: Option<SocketAddr>,
    /// The certificate chain and its key, PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    pub allow_plaintext_auth: bool,
    pub hostname: Option<String>,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub max_connections_per_client: usize,
}

fn invalid(source: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        source_name: source.into(),
        reason: reason.into(),
    }
}

pub(super) fn submission_config(l: &Layers) -> Result<SubmissionConfig, ConfigError> {
    let listen: Option<SocketAddr> = l.opt("submission_listen")?;
    let tls_listen: Option<SocketAddr> = l.opt("submission_tls_listen")?;
    let cert: Option<PathBuf> = l.opt("submission_tls_cert")?;
    let key: Option<PathBuf> = l.opt("submission_tls_key")?;
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                "MAILQUEUE_SUBMISSION_TLS_CERT",
                "its key is missing (MAILQUEUE_SUBMISSION_TLS_KEY)",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "MAILQUEUE_SUBMISSION_TLS_KEY",
                "its certificate is missing (MAILQUEUE_SUBMISSION_TLS_CERT)",
            ))
        }
    };
    let allow_plaintext_auth: bool = l.get("submission_allow_plaintext_auth")?;
    if tls_listen.is_some() && tls.is_none() {
        return Err(invalid(
            "MAILQUEUE_SUBMISSION_TLS_LISTEN",
            "implicit TLS needs MAILQUEUE_SUBMISSION_TLS_CERT and MAILQUEUE_SUBMISSION_TLS_KEY",
        ));
    }
    if listen.is_some() && tls.is_none() && !allow_plaintext_auth {
        return Err(invalid(
            "MAILQUEUE_SUBMISSION_LISTEN",
            "clients could never authenticate: set MAILQUEUE_SUBMISSION_TLS_CERT and \
             MAILQUEUE_SUBMISSION_TLS_KEY (STARTTLS), or, for loopback clients only, \
             MAILQUEUE_SUBMISSION_ALLOW_PLAINTEXT_AUTH=true",
        ));
    }
    let command_timeout = l.seconds("submission_command_timeout_seconds")?;
    let data_timeout = l.seconds("submission_data_timeout_seconds")?;
    if command_timeout.is_zero() || data_timeout.is_zero() {
        return Err(invalid(
            "MAILQUEUE_SUBMISSION_COMMAND_TIMEOUT_SECONDS",
            "the command and data timeouts must be above 0",
        ));
    }
    Ok(SubmissionConfig {
        listen,
        tls_listen,
        tls,
        allow_plaintext_auth,
        hostname: l.opt("submission_hostname")?,
        command_timeout,
        data_timeout,
        max_connections_per_client: l.positive("submission_max_connections_per_client")?,
    })
}

/// Late bounces and complaints: the bounce domain whose return addresses
/// every email is sent from, the secret their MACs are made with, and the
/// MX that takes the reports.
#[derive(Clone, Debug)]
pub struct BounceConfig {
    /// The domain and the secret of the return addresses (its `Debug`
    /// shows no secret).
    pub return_paths: ReturnPaths,
    /// The bounce domain's MX (e.g. `0.0.0.0:25`); roles `all` and `api`.
    pub inbound_listen: Option<SocketAddr>,
    /// Messages the MX takes from one client address per minute.
    pub messages_per_minute: u32,
}

pub(super) fn bounce_config(l: &Layers) -> Result<Option<BounceConfig>, ConfigError> {
    let domain: Option<String> = l.opt("bounce_domain")?;
    let secret: Option<String> = l.opt("bounce_secret")?;
    let inbound_listen: Option<SocketAddr> = l.opt("inbound_listen")?;
    let Some(domain) = domain else {
        if inbound_listen.is_some() {
            return Err(invalid(
                "MAILQUEUE_INBOUND_LISTEN",
                "the MX takes reports for the bounce domain: set MAILQUEUE_BOUNCE_DOMAIN",
            ));
        }
        return Ok(None);
    };
    let Some(secret) = secret else {
        return Err(invalid(
            "MAILQUEUE_BOUNCE_DOMAIN",
            "return addresses are signed: set MAILQUEUE_BOUNCE_SECRET (at least 16 characters, the same on every process)",
        ));
    };
    let return_paths = ReturnPaths::new(&domain, secret.as_bytes())
        .map_err(|reason| invalid("MAILQUEUE_BOUNCE_DOMAIN", &reason))?;
    let messages_per_minute = u32::try_from(l.positive("inbound_messages_per_minute")?)
        .map_err(|_| invalid("MAILQUEUE_INBOUND_MESSAGES_PER_MINUTE", "is too large"))?;
    Ok(Some(BounceConfig {
        return_paths,
        inbound_listen,
        messages_per_minute,
    }))
}
