//! The use cases of mailqueue, whatever the front end: the HTTP API, the
//! SMTP submission server, the bounce domain's MX and the CLI call the
//! same ones.
//!
//! Each use case changes the store first and only then tells the dispatch
//! queue, so the queue never holds an email the store does not; a lost
//! enqueue only delays an email until the reconciler finds it.
//! `accept` (with idempotency) lives in `accept.rs`; the changes to an
//! existing email in `changes.rs`; creating API keys, webhooks (and
//! rotating their secrets) and listing suppressions in `api_keys.rs`,
//! `webhooks.rs` and `suppressions.rs`, offered to front ends as methods
//! of the service in `account.rs`; reports that arrive after sending
//! (late bounces, complaints) in `reports.rs`.

mod accept;
mod account;
pub mod api_keys;
mod changes;
pub mod domains;
mod error;
mod random;
mod reports;
pub mod suppressions;
pub mod webhooks;

pub use accept::{AcceptOutcome, AcceptedEmail, Idempotency};
pub use error::ServiceError;
pub use mailqueue_core::queue::RequeueCounts;
pub use reports::ReportOutcome;

use chrono::{DateTime, DurationRound, Utc};
use mailqueue_core::queue::DispatchQueue;
use mailqueue_core::store::{EmailInserts, Store};
use mailqueue_core::Clock;
use mailqueue_metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// The choices the use cases make.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// The domain of generated Message-IDs; the sender's domain when unset.
    pub message_id_domain: Option<String>,
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: Duration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            message_id_domain: None,
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// The use cases, over the store and the dispatch queue.
pub struct EmailService {
    store: Arc<dyn Store>,
    /// Where new emails are committed: the store itself, or a group
    /// committer in front of it.
    inserts: Arc<dyn EmailInserts>,
    queue: Arc<dyn DispatchQueue>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    settings: ServiceSettings,
    /// The sending domains' use cases, when the server has them set up.
    domains: Option<Arc<domains::Domains>>,
}

impl EmailService {
    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn DispatchQueue>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        settings: ServiceSettings,
    ) -> Self {
        Self {
            inserts: store.clone(),
            store,
            queue,
            clock,
            metrics,
            settings,
            domains: None,
        }
    }

    /// Offers the sending-domain use cases.
    pub fn with_domains(mut self, domains: Arc<domains::Domains>) -> Self {
        self.domains = Some(domains);
        self
    }

    /// Refuses senders that a key limited to `restricted_to` may not use,
    /// or (when the server requires it) whose domain is not verified.
    pub async fn check_senders(
        &self,
        restricted_to: Option<mailqueue_core::DomainId>,
        senders: &[&mailqueue_core::EmailAddress],
    ) -> Result<(), ServiceError> {
        match &self.domains {
            Some(domains) => domains.check_senders(restricted_to, senders).await,
            None => match (restricted_to, senders.first()) {
                (Some(_), Some(sender)) => Err(ServiceError::SenderRefused(
                    mailqueue_core::domains::SenderRefusal::OutsideKeyDomain(
                        sender.domain().to_string(),
                    ),
                )),
                _ => Ok(()),
            },
        }
    }

    /// The sending-domain use cases.
    pub fn domains(&self) -> Result<&Arc<domains::Domains>, ServiceError> {
        self.domains.as_ref().ok_or_else(|| {
            ServiceError::Domains("sending domains are not set up on this server".into())
        })
    }

    /// Commits new emails through `inserts` (a group committer) instead of
    /// the store itself.
    pub fn inserting_through(mut self, inserts: Arc<dyn EmailInserts>) -> Self {
        self.inserts = inserts;
        self
    }

    /// The current time at the stores' precision (milliseconds).
    pub fn now(&self) -> DateTime<Utc> {
        at_store_precision(self.clock.now())
    }

    /// Puts emails whose store change is committed into the queue.
    async fn dispatch(&self, due: &[mailqueue_core::store::DueEmail], what: &str) {
        enqueue_committed(self.queue.as_ref(), due, what).await;
    }
}

/// `now` at the stores' precision (milliseconds).
fn at_store_precision(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(chrono::Duration::milliseconds(1))
        .unwrap_or(now)
}

/// Puts emails whose store change is committed into the queue; a failure
/// is logged, never returned: the reconciler restores them.
async fn enqueue_committed(
    queue: &dyn DispatchQueue,
    due: &[mailqueue_core::store::DueEmail],
    what: &str,
) {
    if let Err(e) = queue.enqueue(due).await {
        tracing::warn!(error = %e, count = due.len(),
            "{what} not enqueued; the reconciler will dispatch them");
    }
}
