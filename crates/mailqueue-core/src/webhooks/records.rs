//! What the store keeps of webhooks and their deliveries, and what the
//! sender hands back.

use super::endpoint::Endpoint;
use super::payload::EventEmail;
use super::signature::SigningSecret;
use crate::events::EmailEvent;
use crate::ids::{EventId, WebhookId};
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
    /// Event type names (see [`super::WEBHOOK_EVENT_TYPES`]).
    pub events: Vec<String>,
    pub status: WebhookStatus,
    pub signing_secret: SigningSecret,
    /// After a rotation, the secret that also signs until `until`.
    pub previous_secret: Option<(SigningSecret, DateTime<Utc>)>,
    pub created_at: DateTime<Utc>,
    /// Since when every delivery has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Why the webhook was disabled by the disable policy.
    pub disabled_reason: Option<String>,
}

impl Webhook {
    /// The secrets that sign at `now`: the current one, and the previous
    /// one during its grace period.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<SigningSecret> {
        let mut secrets = vec![self.signing_secret.clone()];
        if let Some((previous, until)) = &self.previous_secret {
            if *until > now {
                secrets.push(previous.clone());
            }
        }
        secrets
    }
}

/// `PATCH /v1/webhooks/{id}`: the fields given change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookChange {
    pub endpoint: Option<Endpoint>,
    pub events: Option<Vec<String>>,
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
    pub event: EmailEvent,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
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
    /// Also the `svix-id`, the same on every attempt.
    pub event_id: EventId,
    /// The number of this attempt (1 for the first); with the holder it
    /// fences the outcome.
    pub attempt: u32,
    pub endpoint: Endpoint,
    pub secrets: Vec<SigningSecret>,
    pub event: EmailEvent,
    pub email: EventEmail,
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
