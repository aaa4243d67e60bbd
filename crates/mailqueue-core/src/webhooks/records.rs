//! What the store keeps of webhooks and their deliveries, and what the
//! sender hands back.

use super::account::AccountEvent;
use super::endpoint::Endpoint;
use super::payload::{payload, EventEmail};
use super::signature::SigningSecret;
use super::subscription::WebhookEventType;
use crate::events::EmailEvent;
use crate::ids::{EmailId, EventId, WebhookId};
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookStatus {
    Enabled,
    Disabled,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Enabled => "enabled",
            WebhookStatus::Disabled => "disabled",
        }
    }
}

impl FromStr for WebhookStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "enabled" => Ok(WebhookStatus::Enabled),
            "disabled" => Ok(WebhookStatus::Disabled),
            other => Err(format!(
                "`{other}` is not a status: use enabled or disabled"
            )),
        }
    }
}

impl fmt::Display for WebhookStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook endpoint and its subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub endpoint: Endpoint,
    pub events: Vec<WebhookEventType>,
    pub status: WebhookStatus,
    pub signing_secret: SigningSecret,
    /// Rotated-out secrets that also sign until their `until`, the latest
    /// rotation first; at most [`MAX_PREVIOUS_SECRETS`].
    pub previous_secrets: Vec<PreviousSecret>,
    pub created_at: DateTime<Utc>,
    /// Since when every delivery has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Why the webhook was disabled by the disable policy.
    pub disabled_reason: Option<String>,
}

/// A secret rotated out, still signing until `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousSecret {
    pub secret: SigningSecret,
    pub until: DateTime<Utc>,
}

/// Most rotated-out secrets kept signing at once. Rotating again before a
/// grace period ends (a client retrying a rotation that timed out, say)
/// keeps the earlier secrets signing; beyond this many, the ones whose
/// grace ends first stop. Each costs every delivery one more signature.
pub const MAX_PREVIOUS_SECRETS: usize = 4;

/// A rotation decided for a webhook: applied only if its signing secret is
/// still `replaces`, so two rotations at once cannot lose a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRotation {
    pub replaces: SigningSecret,
    pub signing_secret: SigningSecret,
    pub previous_secrets: Vec<PreviousSecret>,
}

/// The secrets that sign at `now`: `current`, then every previous one
/// whose grace period has not ended.
pub fn signing_secrets(
    current: &SigningSecret,
    previous: &[PreviousSecret],
    now: DateTime<Utc>,
) -> Vec<SigningSecret> {
    std::iter::once(current.clone())
        .chain(live_previous_secrets(previous, now).map(|p| p.secret.clone()))
        .collect()
}

impl Webhook {
    /// The secrets that sign at `now`: the current one, then every
    /// previous one whose grace period has not ended.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<SigningSecret> {
        signing_secrets(&self.signing_secret, &self.previous_secrets, now)
    }

    /// Makes `new` the signing secret at `now`: the current one keeps
    /// signing until `until`, and so does every previous one still in its
    /// grace period, at most [`MAX_PREVIOUS_SECRETS`] of them.
    pub fn rotation(
        &self,
        new: SigningSecret,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> SecretRotation {
        let mut previous: Vec<PreviousSecret> = std::iter::once(PreviousSecret {
            secret: self.signing_secret.clone(),
            until,
        })
        .chain(live_previous_secrets(&self.previous_secrets, now).cloned())
        .collect();
        previous.sort_by_key(|p| std::cmp::Reverse(p.until));
        previous.truncate(MAX_PREVIOUS_SECRETS);
        SecretRotation {
            replaces: self.signing_secret.clone(),
            signing_secret: new,
            previous_secrets: previous,
        }
    }
}

/// The previous secrets whose grace has not ended at `now`.
pub fn live_previous_secrets(
    previous: &[PreviousSecret],
    now: DateTime<Utc>,
) -> impl Iterator<Item = &PreviousSecret> {
    previous.iter().filter(move |p| p.until > now)
}

/// `PATCH /v1/webhooks/{id}`: the fields given change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookChange {
    pub endpoint: Option<Endpoint>,
    pub events: Option<Vec<WebhookEventType>>,
    pub status: Option<WebhookStatus>,
}

/// A page of webhooks (or of a webhook's deliveries), newest first.
#[derive(Clone, Copy, Debug, Default)]
pub struct WebhookPage<Id> {
    pub limit: u32,
    /// Older than this one.
    pub after: Option<Id>,
    /// Newer than this one (read oldest first, then flipped by the caller).
    pub before: Option<Id>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a delivery status"))
    }
}

/// One event's delivery to one webhook, as its log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub webhook_id: WebhookId,
    pub event: OutboxEvent<()>,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The event an outbox row delivers: an email's, with what its payload
/// tells of the email (`E`: [`EventEmail`] when claimed to be sent,
/// nothing in a delivery log), or an account's, stored with its payload.
// Nearly every delivery is an email's: boxing it would cost an allocation
// per delivery to save the rare account event a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxEvent<E = EventEmail> {
    Email { event: EmailEvent, email: E },
    Account(AccountEvent),
}

impl<E> OutboxEvent<E> {
    pub fn id(&self) -> EventId {
        match self {
            OutboxEvent::Email { event, .. } => event.id,
            OutboxEvent::Account(a) => a.id,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            OutboxEvent::Email { event, .. } => event.event_type.as_str(),
            OutboxEvent::Account(a) => a.event_type.as_str(),
        }
    }

    /// The email it concerns; none for an account event.
    pub fn email_id(&self) -> Option<EmailId> {
        match self {
            OutboxEvent::Email { event, .. } => Some(event.email_id),
            OutboxEvent::Account(_) => None,
        }
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        match self {
            OutboxEvent::Email { event, .. } => event.created_at,
            OutboxEvent::Account(a) => a.created_at,
        }
    }
}

impl OutboxEvent {
    /// The body POSTed, in Resend's shape.
    pub fn payload(&self) -> serde_json::Value {
        match self {
            OutboxEvent::Email { event, email } => payload(event, email),
            OutboxEvent::Account(a) => a.payload.clone(),
        }
    }
}

/// One try of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub duration_ms: u32,
    pub error: Option<String>,
}

/// A delivery handed to a sender, with all it needs to send.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub webhook_id: WebhookId,
    /// The number of this attempt (1 for the first); with the holder it
    /// fences the outcome.
    pub attempt: u32,
    pub endpoint: Endpoint,
    pub secrets: Vec<SigningSecret>,
    /// Its id is also the `svix-id`, the same on every attempt.
    pub event: OutboxEvent,
}

/// How an attempt leaves its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered,
    /// It failed; the next attempt is due then.
    RetryAt(DateTime<Utc>),
    /// It failed and the schedule has no attempt left.
    Failed,
}

/// What one attempt ended in, ready to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReport {
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub attempt: u32,
    pub attempted_at: DateTime<Utc>,
    pub duration_ms: u32,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub outcome: DeliveryOutcome,
}

/// The outbox at a glance, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub pending: u64,
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

/// The terms of a claim of deliveries.
#[derive(Clone, Debug)]
pub struct DeliveryClaim {
    pub holder: String,
    pub now: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
    /// Most deliveries claimed by this call.
    pub limit: u32,
    /// Most deliveries of one webhook the claimer holds at once.
    pub per_webhook: u32,
    /// The deliveries of each webhook the claimer holds now (claimed and
    /// not yet reported); a webhook not listed holds none. The claim
    /// takes at most `per_webhook` minus these of each webhook, so a slow
    /// endpoint cannot take every slot of a sender.
    pub held: Vec<(WebhookId, u32)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn secret(n: u8) -> SigningSecret {
        SigningSecret::from_key(&[n; 24])
    }

    fn webhook(now: DateTime<Utc>) -> Webhook {
        Webhook {
            id: WebhookId(uuid::Uuid::nil()),
            endpoint: Endpoint::parse("https://hooks.example.com/")
                .unwrap_or_else(|e| panic!("{e}")),
            events: vec![WebhookEventType::EmailSent],
            status: WebhookStatus::Enabled,
            signing_secret: secret(0),
            previous_secrets: vec![],
            created_at: now,
            failing_since: None,
            disabled_reason: None,
        }
    }

    #[test]
    fn rotating_twice_keeps_both_earlier_secrets_signing() {
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
        let grace = Duration::hours(24);
        let mut w = webhook(now);
        for (i, at) in [now, now + Duration::seconds(30)].into_iter().enumerate() {
            let r = w.rotation(secret(i as u8 + 1), at, at + grace);
            assert_eq!(r.replaces, w.signing_secret);
            w.signing_secret = r.signing_secret;
            w.previous_secrets = r.previous_secrets;
        }
        let signing = w.signing_secrets(now + Duration::hours(1));
        assert_eq!(signing, vec![secret(2), secret(1), secret(0)]);
        // Each stops at the end of its own grace period.
        assert_eq!(
            w.signing_secrets(now + grace + Duration::seconds(1)),
            vec![secret(2), secret(1)]
        );
        assert_eq!(w.signing_secrets(now + grace * 2), vec![secret(2)]);
    }

    #[test]
    fn at_most_a_few_previous_secrets_sign_and_expired_ones_go() {
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
        let mut w = webhook(now);
        w.previous_secrets = vec![PreviousSecret {
            secret: secret(99),
            until: now - Duration::seconds(1),
        }];
        for i in 1..=10u8 {
            let at = now + Duration::seconds(i64::from(i));
            let r = w.rotation(secret(i), at, at + Duration::hours(1));
            w.signing_secret = r.signing_secret;
            w.previous_secrets = r.previous_secrets;
        }
        assert_eq!(w.previous_secrets.len(), MAX_PREVIOUS_SECRETS);
        assert_eq!(
            w.signing_secrets(now + Duration::seconds(11)),
            vec![secret(10), secret(9), secret(8), secret(7), secret(6)]
        );
    }
}
