//! The webhook use cases: creating one (its id and signing secret) and
//! rotating its secret. The endpoint and event types come parsed from the
//! front end.

use crate::ServiceError;
use chrono::{DateTime, Utc};
use mailqueue_core::store::WebhookStore;
use mailqueue_core::webhooks::{Endpoint, SigningSecret, Webhook, WebhookEventType, WebhookStatus};
use mailqueue_core::WebhookId;

/// Rotations of one webhook racing each other: each loser decides again.
const ROTATION_TRIES: usize = 8;

/// A fresh signing secret: 24 random bytes, as Svix makes them.
pub fn new_secret() -> Result<SigningSecret, ServiceError> {
    let mut key = [0u8; 24];
    crate::random::fill(&mut key)?;
    Ok(SigningSecret::from_key(&key))
}

/// Stores a new, enabled webhook with a fresh secret.
pub async fn create_webhook(
    store: &dyn WebhookStore,
    endpoint: Endpoint,
    events: Vec<WebhookEventType>,
    now: DateTime<Utc>,
) -> Result<Webhook, ServiceError> {
    let webhook = Webhook {
        id: WebhookId::generate(now),
        endpoint,
        events,
        status: WebhookStatus::Enabled,
        signing_secret: new_secret()?,
        previous_secrets: Vec::new(),
        created_at: now,
        failing_since: None,
        disabled_reason: None,
    };
    store.create_webhook(&webhook).await?;
    Ok(webhook)
}

/// Gives webhook `id` a new secret at `now`; the old one (and those
/// rotated out before it, in their grace) keeps signing until `now +
/// grace`. The webhook as rotated, or `None` when there is no such webhook.
pub async fn rotate_webhook_secret(
    store: &dyn WebhookStore,
    id: WebhookId,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> Result<Option<Webhook>, ServiceError> {
    // A rotation applies only to the secret it was decided on; when
    // another rotation got in between, decide again from what it left.
    for _ in 0..ROTATION_TRIES {
        let Some(webhook) = store.get_webhook(id).await? else {
            return Ok(None);
        };
        let rotation = webhook.rotation(new_secret()?, now, now + grace);
        if store.rotate_webhook_secret(id, &rotation).await? {
            return Ok(Some(Webhook {
                signing_secret: rotation.signing_secret,
                previous_secrets: rotation.previous_secrets,
                ..webhook
            }));
        }
    }
    Err(ServiceError::Overtaken(
        "other rotations of this webhook's secret kept overtaking this one",
    ))
}
