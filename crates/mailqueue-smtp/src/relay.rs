//! Delivery to an SMTP relay over a pool of reused connections.
//!
//! `MAILQUEUE_SMTP_URL` selects the security of the connection:
//! - `smtp://` upgrades with STARTTLS (port 587 by default). STARTTLS is
//!   required: a relay that does not offer it gets nothing, and each
//!   attempt fails as a transient TLS failure, so that an attacker who
//!   strips `250-STARTTLS` learns neither the password nor a message.
//!   Without credentials, `?tls=opportunistic` sends in clear to a relay
//!   that offers no STARTTLS; with credentials it is refused.
//! - `smtps://` is TLS from the first byte (465).
//! - `smtp+plain://` never uses TLS (25), credentials included: the
//!   explicit choice for loopback relays and tests.
//!
//! The certificate is always verified against the system's roots (or
//! `SSL_CERT_FILE`). A user and password in the URL are used for AUTH.
//!
//! At most `pool_size` transactions run at once. A session goes back to the
//! pool after a successful transaction, and after a refused one when RSET
//! still works; a broken session (see `client::session`) is dropped. Before
//! reuse, a session must be quiet (the relay sent nothing since its last
//! reply); one idle for more than a few seconds is also checked with NOOP,
//! and one idle for a minute is closed.
//!
//! With a fleet-wide cap (`with_fleet_slots`), each open connection also
//! holds one of the fleet's slots; when none is free, a send waits a little
//! for one (or for a connection of its own pool to come back), then gives
//! up with `SendError::NoConnectionSlot`: not an attempt, the email goes
//! back to wait.
//!
//! The relay's health follows its set-up: refused credentials or a missing
//! STARTTLS make it [`TransportHealth::Failing`] (readiness reports it),
//! and the next connection that gets through TLS and AUTH makes it `Ok`
//! again. Without credentials, a 530 (authentication required) makes it
//! failing and the next delivery clears it.

use crate::client::error::rejected_recipient;
use crate::client::{ClientError, Credentials};
use crate::connection::{open, tls_connector, Endpoint, RelaySession, Security};
use crate::fleet_slots::{FleetSlots, SlotGuard};
use crate::mime::build_message;
use async_trait::async_trait;
use mailqueue_core::delivery::{Delivered, DeliveryError, FailureClass, SmtpReply};
use mailqueue_core::transport::{
    ConnectionSlots, OutgoingEmail, SendError, Transport, TransportHealth,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

const CHECK_AFTER_IDLE: Duration = Duration::from_secs(3);
const DROP_AFTER_IDLE: Duration = Duration::from_secs(60);
/// How long a send waits for a fleet connection slot before it goes back.
const SLOT_WAIT: Duration = Duration::from_secs(2);
/// Under a fleet-wide cap, how long a connection may sit idle holding one
/// of the fleet's slots before it is closed, so that a process that ran
/// out of work hands its slots to those that have some.
const FLEET_IDLE_RELEASE: Duration = Duration::from_millis(500);

/// An open session, and the fleet slot it holds (if the fleet is capped).
struct Connection {
    session: RelaySession,
    /// Whether it runs over TLS.
    encrypted: bool,
    _slot: Option<SlotGuard>,
}

#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("MAILQUEUE_SMTP_URL is not a valid URL: {0}")]
    Url(String),
    #[error("MAILQUEUE_SMTP_URL has scheme `{0}`; use smtp://, smtps:// or smtp+plain://")]
    Scheme(String),
    #[error("MAILQUEUE_SMTP_URL has no host")]
    NoHost,
    #[error("MAILQUEUE_SMTP_URL: {0}")]
    Option(String),
    #[error("TLS could not be set up for {host}: {reason}")]
    Tls { host: String, reason: String },
}

#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub url: String,
    /// Most connections (and transactions) at once.
    pub pool_size: u32,
    /// For each step on its own: connecting, the TLS handshake, each reply,
    /// and each write of the message (a write that makes no progress for
    /// this long). A whole send has no cap here.
    pub timeout: Duration,
    /// The EHLO name; the host name when unset.
    pub hello_name: Option<String>,
}

pub struct SmtpRelay {
    endpoint: Endpoint,
    idle: Arc<Mutex<Vec<(Connection, Instant)>>>,
    /// Woken when a connection goes back to the pool.
    returned: Notify,
    slots: Semaphore,
    fleet: Option<Arc<FleetSlots>>,
    health: Mutex<TransportHealth>,
    description: String,
}

/// This machine's host name, or `localhost`.
pub fn default_hello_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl SmtpRelay {
    pub fn new(settings: &SmtpSettings) -> Result<Self, SmtpConfigError> {
        let url =
            url::Url::parse(&settings.url).map_err(|e| SmtpConfigError::Url(e.to_string()))?;
        let host = url.host_str().ok_or(SmtpConfigError::NoHost)?.to_string();
        let connector = || {
            tls_connector().map_err(|reason| SmtpConfigError::Tls {
                host: host.clone(),
                reason,
            })
        };
        let credentials = (!url.username().is_empty()).then(|| Credentials {
            user: percent_decode(url.username()),
            password: percent_decode(url.password().unwrap_or("")),
        });
        let tls = tls_option(&url, credentials.is_some())?;
        let (security, default_port) = match url.scheme() {
            "smtp" => (
                Security::StartTls {
                    connector: connector()?,
                    required: tls != Some(TlsOption::Opportunistic),
                },
                587,
            ),
            "smtps" => (Security::Implicit(connector()?), 465),
            "smtp+plain" => (Security::Plain, 25),
            other => return Err(SmtpConfigError::Scheme(other.to_string())),
        };
        if tls.is_some() && url.scheme() != "smtp" {
            return Err(SmtpConfigError::Option(format!(
                "`tls=` applies to smtp:// only; {}:// fixes the security itself",
                url.scheme()
            )));
        }
        let port = url.port().unwrap_or(default_port);
        Ok(Self {
            description: format!("{}://{host}:{port}", url.scheme()),
            endpoint: Endpoint {
                host,
                port,
                security,
                credentials,
                hello_name: settings
                    .hello_name
                    .clone()
                    .unwrap_or_else(default_hello_name),
                timeout: settings.timeout,
            },
            idle: Arc::new(Mutex::new(Vec::new())),
            returned: Notify::new(),
            slots: Semaphore::new(settings.pool_size.max(1) as usize),
            fleet: None,
            health: Mutex::new(TransportHealth::Ok),
        })
    }

    /// Caps the connections of the whole fleet (see the module header);
    /// `process` names this process's slots. Needs a Tokio runtime.
    pub fn with_fleet_slots(mut self, slots: Arc<dyn ConnectionSlots>, process: String) -> Self {
        self.fleet = Some(FleetSlots::start(slots, process));
        tokio::spawn(release_idle(Arc::downgrade(&self.idle)));
        self
    }

    fn take_idle(&self) -> Option<(Connection, Instant)> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn set_health(&self, health: TransportHealth) {
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = health;
    }

    /// An idle connection that is quiet (and answers NOOP after a while).
    async fn reusable(&self) -> Option<Connection> {
        while let Some((mut conn, since)) = self.take_idle() {
            let idle = since.elapsed();
            if idle > DROP_AFTER_IDLE {
                conn.session.quit().await;
                continue;
            }
            if !conn.session.is_quiet() {
                tracing::warn!(relay = %self.description,
                    "the relay sent something nobody asked for on an idle connection; closing it");
                continue;
            }
            if idle > CHECK_AFTER_IDLE && conn.session.noop().await.is_err() {
                continue;
            }
            return Some(conn);
        }
        None
    }

    /// A connection ready for a transaction: an idle one, or a new one
    /// (with a fleet slot, waiting up to `SLOT_WAIT` for one).
    async fn checkout(&self) -> Result<Connection, SendError> {
        let deadline = tokio::time::Instant::now() + SLOT_WAIT;
        loop {
            if let Some(conn) = self.reusable().await {
                return Ok(conn);
            }
            let slot = match &self.fleet {
                None => None,
                Some(fleet) => match fleet.try_take().await? {
                    Some(slot) => Some(slot),
                    None if tokio::time::Instant::now() < deadline => {
                        let _ = tokio::time::timeout(
                            Duration::from_millis(100),
                            self.returned.notified(),
                        )
                        .await;
                        continue;
                    }
                    None => return Err(SendError::NoConnectionSlot),
                },
            };
            let (session, encrypted) = open(&self.endpoint).await.map_err(|e| self.failed(&e))?;
            if self.endpoint.credentials.is_some()
                || matches!(
                    self.endpoint.security,
                    Security::StartTls { required: true, .. }
                )
            {
                self.set_health(TransportHealth::Ok);
            }
            return Ok(Connection {
                session,
                encrypted,
                _slot: slot,
            });
        }
    }

    /// Keeps a connection for the next transaction if it is still in step.
    fn checkin(&self, mut conn: Connection) {
        if conn.session.is_quiet() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((conn, Instant::now()));
            self.returned.notify_one();
        }
    }

    /// After a failed transaction: a connection still in step is reset and
    /// kept, any other is dropped.
    async fn recycle(&self, mut conn: Connection) {
        if !conn.session.is_broken() && conn.session.rset().await.is_ok() {
            self.checkin(conn);
        }
    }

    /// The email's error; a failure of the relay's set-up (refused AUTH,
    /// no STARTTLS) also marks the relay failing.
    fn failed(&self, e: &ClientError) -> DeliveryError {
        if e.is_relay_setup() {
            self.set_health(TransportHealth::Failing {
                reason: e.to_string(),
            });
        }
        e.to_delivery_error()
    }
}

/// Closes connections idle for longer than `FLEET_IDLE_RELEASE`, giving
/// their fleet slots back, until the pool is gone.
async fn release_idle(idle: std::sync::Weak<Mutex<Vec<(Connection, Instant)>>>) {
    loop {
        tokio::time::sleep(FLEET_IDLE_RELEASE / 2).await;
        let Some(idle) = idle.upgrade() else { return };
        let stale: Vec<(Connection, Instant)> = {
            let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
            let (stale, fresh) = idle
                .drain(..)
                .partition(|(_, since)| since.elapsed() > FLEET_IDLE_RELEASE);
            *idle = fresh;
            stale
        };
        for (conn, _) in stale {
            conn.session.quit().await;
        }
    }
}

/// `?tls=` on `smtp://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TlsOption {
    Required,
    Opportunistic,
}

/// Reads the URL's query: `tls=required|opportunistic`, nothing else.
/// Credentials with `opportunistic` are refused: they could go out in clear.
fn tls_option(url: &url::Url, has_credentials: bool) -> Result<Option<TlsOption>, SmtpConfigError> {
    let mut tls = None;
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "required") => tls = Some(TlsOption::Required),
            ("tls", "opportunistic") => tls = Some(TlsOption::Opportunistic),
            ("tls", other) => {
                return Err(SmtpConfigError::Option(format!(
                    "`tls={other}`: use tls=required (the default) or tls=opportunistic"
                )))
            }
            (other, _) => {
                return Err(SmtpConfigError::Option(format!(
                    "unknown parameter `{other}`; the only one is tls=required|opportunistic"
                )))
            }
        }
    }
    if has_credentials && tls == Some(TlsOption::Opportunistic) {
        return Err(SmtpConfigError::Option(
            "credentials with tls=opportunistic could be sent in clear; drop tls= (STARTTLS is \
             then required), or use smtp+plain:// to send them unencrypted on purpose"
                .into(),
        ));
    }
    Ok(tls)
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[async_trait]
impl Transport for SmtpRelay {
    async fn send(&self, out: &OutgoingEmail<'_>) -> Result<Delivered, SendError> {
        let message = build_message(out)?;
        let _slot = self.slots.acquire().await.map_err(|_| {
            DeliveryError::transient(FailureClass::Connection, None, "the relay pool is closed")
        })?;
        let mut conn = self.checkout().await?;
        if out.require_tls && !conn.encrypted {
            // Nothing was sent; the connection serves other mail.
            self.checkin(conn);
            return Err(DeliveryError::transient(
                FailureClass::Connection,
                None,
                "the sending domain requires TLS (tls: enforced) and the relay connection has none",
            )
            .into());
        }
        match conn
            .session
            .send_mail(&message.from, &message.to, &message.bytes)
            .await
        {
            Ok(accepted) => {
                self.checkin(conn);
                if self.endpoint.credentials.is_none() {
                    self.set_health(TransportHealth::Ok);
                }
                Ok(Delivered {
                    reply: SmtpReply {
                        code: accepted.reply.code,
                        message: accepted.reply.text(),
                    },
                    rejected: accepted.rejected.iter().map(rejected_recipient).collect(),
                })
            }
            Err(e) => {
                self.recycle(conn).await;
                Err(self.failed(&e).into())
            }
        }
    }

    fn describe(&self) -> String {
        format!("SMTP relay {}", self.description)
    }

    fn health(&self) -> TransportHealth {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
    fn tls_is_required_on_smtp_unless_opportunistic_without_credentials() {
        let required = |url: &str| match SmtpRelay::new(&settings(url)).unwrap().endpoint.security {
            Security::StartTls { required, .. } => required,
            _ => panic!("{url} is not STARTTLS"),
        };
        assert!(required("smtp://u:p@relay.test"));
        assert!(required("smtp://relay.test"));
        assert!(required("smtp://relay.test?tls=required"));
        assert!(!required("smtp://relay.test?tls=opportunistic"));
        for bad in [
            "smtp://u:p@relay.test?tls=opportunistic",
            "smtp://relay.test?tls=never",
            "smtp://relay.test?starttls=no",
            "smtps://relay.test?tls=required",
            "smtp+plain://relay.test?tls=opportunistic",
        ] {
            assert!(
                matches!(
                    SmtpRelay::new(&settings(bad)),
                    Err(SmtpConfigError::Option(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn decodes_credentials() {
        assert_eq!(percent_decode("p%40ss%2Bword"), "p@ss+word");
        assert_eq!(percent_decode("a+b"), "a+b");
    }
}
