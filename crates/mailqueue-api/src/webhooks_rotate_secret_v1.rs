//! `POST /v1/webhooks/{webhook_id}/signing-secret/rotate`: a new signing
//! secret; the old one keeps signing alongside it (another `v1,`
//! signature in `svix-signature`) for the grace period, so receivers can
//! switch without losing an event. Secrets rotated out earlier keep
//! signing until their own grace ends (a client retrying a rotation that
//! timed out must not cut off receivers still on the first secret), at
//! most `MAX_PREVIOUS_SECRETS` of them. Answers the webhook with its new
//! secret and `previous_secret_expires_at`.

use crate::auth::FullAccess;
use crate::body::{expect_empty_object, RawBody};
use crate::error::ApiError;
use crate::webhook_view::{new_secret, no_webhook, webhook_id, webhook_json};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use mailqueue_core::webhooks::Webhook;
use serde_json::{json, Value};

/// Rotations of one webhook racing each other: each loser decides again.
const ROTATION_TRIES: usize = 8;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let id = webhook_id(&raw)?;
    expect_empty_object(&body)?;
    let grace = chrono::Duration::from_std(state.settings.webhooks.secret_grace)
        .unwrap_or(chrono::Duration::hours(24));
    // A rotation applies only to the secret it was decided on; when
    // another rotation got in between, decide again from what it left.
    for _ in 0..ROTATION_TRIES {
        let webhook = state
            .store
            .get_webhook(id)
            .await?
            .ok_or_else(|| no_webhook(&raw))?;
        let now = state.now();
        let until = now + grace;
        let rotation = webhook.rotation(new_secret()?, now, until);
        if state.store.rotate_webhook_secret(id, &rotation).await? {
            let rotated = Webhook {
                signing_secret: rotation.signing_secret,
                previous_secrets: rotation.previous_secrets,
                ..webhook
            };
            let mut v = webhook_json(&rotated);
            v["previous_secret_expires_at"] = json!(crate::email_view::timestamp(until));
            return Ok(Json(v));
        }
    }
    Err(ApiError::Conflict(
        "Other rotations of this webhook's secret kept overtaking this one; retry.",
    ))
}
