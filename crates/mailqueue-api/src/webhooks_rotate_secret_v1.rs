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
use crate::webhook_view::{no_webhook, webhook_id, webhook_json};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use mailqueue_service::webhooks::rotate_webhook_secret;
use serde_json::{json, Value};

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
    let now = state.now();
    let rotated = rotate_webhook_secret(state.store.as_ref(), id, now, grace)
        .await?
        .ok_or_else(|| no_webhook(&raw))?;
    let mut v = webhook_json(&rotated);
    v["previous_secret_expires_at"] = json!(crate::email_view::timestamp(now + grace));
    Ok(Json(v))
}
