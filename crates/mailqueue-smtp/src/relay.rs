//! Delivery to an SMTP relay over a pool of reused connections.
//!
//! `MAILQUEUE_SMTP_URL` selects the security of the connection:
//! `smtp://` upgrades with STARTTLS when the relay offers it (port 587 by
//! default), `smtps://` is TLS from the first byte (465), and `smtp+plain://`
//! never uses TLS (25; meant for loopback relays and tests).
//!
//! At most `pool_size` transactions run at once. A connection goes back to
//! the pool after a successful transaction; after any error lettre closes
//! it. A connection idle for more than a few seconds is checked with NOOP
//! before reuse, and one idle for a minute is dropped.

use crate::connection::{open, tls_connector, Endpoint, Security};
use crate::mime::build_message;
use async_trait::async_trait;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use mailqueue_core::delivery::{DeliveryError, FailureClass, SmtpReply};
use mailqueue_core::transport::{OutgoingEmail, Transport};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const CHECK_AFTER_IDLE: Duration = Duration::from_secs(3);
const DROP_AFTER_IDLE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("MAILQUEUE_SMTP_URL is not a valid URL: {0}")]
    Url(String),
    #[error("MAILQUEUE_SMTP_URL has scheme `{0}`; use smtp://, smtps:// or smtp+plain://")]
    Scheme(String),
    #[error("MAILQUEUE_SMTP_URL has no host")]
    NoHost,
    #[error("TLS could not be set up for {host}: {reason}")]
    Tls { host: String, reason: String },
}

#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub url: String,
    /// Most connections (and transactions) at once.
    pub pool_size: u32,
    /// For connecting and for each step of a transaction.
    pub timeout: Duration,
    /// The EHLO name; the host name when unset.
    pub hello_name: Option<String>,
}

pub struct SmtpRelay {
    endpoint: Endpoint,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    slots: Semaphore,
    description: String,
}

impl SmtpRelay {
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpConfigError> {
        let url =
            url::Url::parse(&settings.url).map_err(|e| SmtpConfigError::Url(e.to_string()))?;
        let host = url.host_str().ok_or(SmtpConfigError::NoHost)?.to_string();
        let tls_error = |reason: String| SmtpConfigError::Tls {
            host: host.clone(),
            reason,
        };
        let (security, default_port) = match url.scheme() {
            "smtp" => (
                Security::StartTls(
                    TlsParameters::new(host.clone()).map_err(|e| tls_error(e.to_string()))?,
                ),
                587,
            ),
            "smtps" => (Security::Implicit(tls_connector().map_err(tls_error)?), 465),
            "smtp+plain" => (Security::Plain, 25),
            other => return Err(SmtpConfigError::Scheme(other.to_string())),
        };
        let port = url.port().unwrap_or(default_port);
        let credentials = (!url.username().is_empty()).then(|| {
            Credentials::new(
                percent_decode(url.username()),
                percent_decode(url.password().unwrap_or("")),
            )
        });
        let hello = match &settings.hello_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        Ok(Self {
            description: format!("{}://{host}:{port}", url.scheme()),
            endpoint: Endpoint {
                host,
                port,
                security,
                credentials,
                hello,
                timeout: settings.timeout,
            },
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(settings.pool_size.max(1) as usize),
        })
    }

    fn take_idle(&self) -> Option<(AsyncSmtpConnection, Instant)> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// A connection ready for a transaction: an idle one that still
    /// answers, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        while let Some((mut conn, since)) = self.take_idle() {
            let idle = since.elapsed();
            if idle > DROP_AFTER_IDLE || conn.has_broken() {
                conn.abort().await;
                continue;
            }
            if idle > CHECK_AFTER_IDLE && !conn.test_connected().await {
                conn.abort().await;
                continue;
            }
            return Ok(conn);
        }
        open(&self.endpoint, classify).await
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((conn, Instant::now()));
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Sorts lettre's errors into retryable and permanent ones.
fn classify(e: lettre::transport::smtp::Error) -> DeliveryError {
    let code = e.status().and_then(|c| c.to_string().parse::<u16>().ok());
    let detail = e.to_string();
    if e.is_permanent() {
        DeliveryError::permanent(FailureClass::Reply5xx, code, detail)
    } else if e.is_transient() {
        DeliveryError::transient(FailureClass::Reply4xx, code, detail)
    } else if e.is_timeout() {
        DeliveryError::transient(FailureClass::Timeout, None, detail)
    } else if e.is_tls() {
        DeliveryError::transient(FailureClass::Tls, None, detail)
    } else {
        DeliveryError::transient(FailureClass::Connection, None, detail)
    }
}

#[async_trait]
impl Transport for SmtpRelay {
    async fn send(&self, out: &OutgoingEmail<'_>) -> Result<SmtpReply, DeliveryError> {
        let message = build_message(out)?;
        let bytes = message.formatted();
        let _slot = self.slots.acquire().await.map_err(|_| {
            DeliveryError::transient(FailureClass::Connection, None, "the relay pool is closed")
        })?;
        let mut conn = self.checkout().await?;
        let timeout = self.endpoint.timeout;
        match tokio::time::timeout(timeout * 2, conn.send(message.envelope(), &bytes)).await {
            Ok(Ok(response)) => {
                self.checkin(conn);
                Ok(SmtpReply {
                    code: response.code().to_string().parse().unwrap_or(250),
                    message: response.message().collect::<Vec<_>>().join(" "),
                })
            }
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => {
                conn.abort().await;
                Err(DeliveryError::transient(
                    FailureClass::Timeout,
                    None,
                    format!("the SMTP transaction took longer than {:?}", timeout * 2),
                ))
            }
        }
    }

    fn describe(&self) -> String {
        format!("SMTP relay {}", self.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> SmtpSettings {
        SmtpSettings {
            url: url.into(),
            pool_size: 4,
            timeout: Duration::from_secs(5),
            hello_name: None,
        }
    }

    #[test]
    fn accepts_the_three_schemes_and_their_default_ports() {
        assert_eq!(
            SmtpRelay::new(&settings("smtp://relay.test"))
                .unwrap()
                .description,
            "smtp://relay.test:587"
        );
        assert_eq!(
            SmtpRelay::new(&settings("smtps://u:p@relay.test"))
                .unwrap()
                .description,
            "smtps://relay.test:465"
        );
        assert_eq!(
            SmtpRelay::new(&settings("smtp+plain://127.0.0.1:2525"))
                .unwrap()
                .description,
            "smtp+plain://127.0.0.1:2525"
        );
    }

    #[test]
    fn refuses_other_schemes_and_hostless_urls() {
        assert!(matches!(
            SmtpRelay::new(&settings("http://x")),
            Err(SmtpConfigError::Scheme(_))
        ));
        assert!(SmtpRelay::new(&settings("not a url")).is_err());
    }

    #[test]
    fn decodes_credentials() {
        assert_eq!(percent_decode("p%40ss%2Bword"), "p@ss+word");
        assert_eq!(percent_decode("a+b"), "a+b");
    }
}
