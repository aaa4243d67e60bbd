//! Delivery to an SMTP relay through lettre's connection pool.
//!
//! `MAILQUEUE_SMTP_URL` selects the security of the connection:
//! `smtp://` upgrades with STARTTLS when the relay offers it (port 587 by
//! default), `smtps://` is TLS from the first byte (465), and `smtp+plain://`
//! never uses TLS (25; meant for loopback relays and tests).

use crate::mime::build_message;
use async_trait::async_trait;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mailqueue_core::delivery::{DeliveryError, FailureClass, SmtpReply};
use mailqueue_core::transport::{OutgoingEmail, Transport};
use std::time::Duration;

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
    /// Most connections kept open to the relay.
    pub pool_size: u32,
    /// For connecting and for each command.
    pub timeout: Duration,
    /// The EHLO name; the host name when unset.
    pub hello_name: Option<String>,
}

pub struct SmtpRelay {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    description: String,
}

impl SmtpRelay {
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpConfigError> {
        let url =
            url::Url::parse(&settings.url).map_err(|e| SmtpConfigError::Url(e.to_string()))?;
        let host = url.host_str().ok_or(SmtpConfigError::NoHost)?.to_string();
        let tls_params = || {
            TlsParameters::new(host.clone()).map_err(|e| SmtpConfigError::Tls {
                host: host.clone(),
                reason: e.to_string(),
            })
        };
        let (tls, default_port) = match url.scheme() {
            "smtp" => (Tls::Opportunistic(tls_params()?), 587),
            "smtps" => (Tls::Wrapper(tls_params()?), 465),
            "smtp+plain" => (Tls::None, 25),
            other => return Err(SmtpConfigError::Scheme(other.to_string())),
        };
        let port = url.port().unwrap_or(default_port);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(settings.timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(settings.pool_size.max(1))
                    .idle_timeout(Duration::from_secs(60)),
            );
        if !url.username().is_empty() {
            let decode = |s: &str| percent_decode(s);
            builder = builder.credentials(Credentials::new(
                decode(url.username()),
                decode(url.password().unwrap_or("")),
            ));
        }
        if let Some(name) = &settings.hello_name {
            builder = builder.hello_name(lettre::transport::smtp::extension::ClientId::Domain(
                name.clone(),
            ));
        }
        Ok(Self {
            mailer: builder.build(),
            description: format!("{}://{host}:{port}", url.scheme()),
        })
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
    let code = e
        .status()
        .map(|c| c.to_string().parse::<u16>().unwrap_or(0))
        .filter(|c| *c > 0);
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
        let response = self.mailer.send(message).await.map_err(classify)?;
        Ok(SmtpReply {
            code: response.code().to_string().parse().unwrap_or(250),
            message: response.message().collect::<Vec<_>>().join(" "),
        })
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

    #[tokio::test]
    async fn accepts_the_three_schemes_and_their_default_ports() {
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

    #[tokio::test]
    async fn refuses_other_schemes_and_hostless_urls() {
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
