//! `POST /v1/webhooks/{webhook_id}/signing-secret/rotate`: a new signing
//! secret; the old one keeps signing alongside it (another `v1,`
//! signature in `svix-signature`) for the grace period, so receivers can
//! switch without losing an event. Secrets rotated out earlier keep
//! signing until their own grace ends (a client retrying a rotation that
//! timed out must not cut off receivers still on the first secret), at
//! most `MAX_PREVIOUS_SECRETS` of them. Answers the webhook with its new
//! secret and `previous_secret_expires_at`.

use crate::error::ApiError;
use crate::named::Action;
use crate::webhook_view::{no_webhook, webhook_json};
use axum::Json;
use mailqueue_core::WebhookId;
use serde_json::{json, Value};

pub async fn handle(webhook: Action<WebhookId>) -> Result<Json<Value>, ApiError> {
    let grace = chrono::Duration::from_std(webhook.state.settings.webhooks.secret_grace)
        .unwrap_or(chrono::Duration::hours(24));
    let rotated = webhook
        .state
        .service
        .rotate_webhook_secret(webhook.id, grace)
        .await?;
    let rotated = rotated.ok_or_else(|| no_webhook(&webhook.raw))?;
    // The secret just rotated out signs the longest (they are kept newest
    // first).
    let expires = rotated.previous_secrets.first().map(|p| p.until);
    let mut v = webhook_json(&rotated);
    v["previous_secret_expires_at"] = json!(expires.map(crate::email_view::timestamp));
    Ok(Json(v))
}
