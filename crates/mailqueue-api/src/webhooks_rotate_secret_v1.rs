//! `POST /v1/webhooks/{webhook_id}/signing-secret/rotate`: a new signing
//! secret; the old one keeps signing alongside it (a second `v1,`
//! signature in `svix-signature`) for the grace period, so receivers can
//! switch without losing an event. Answers the webhook with its new
//! secret and `previous_secret_expires_at`.

use crate::auth::FullAccess;
use crate::body::{expect_empty_object, RawBody};
use crate::error::ApiError;
use crate::webhook_view::{new_secret, no_webhook, webhook_id, webhook_json};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
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
    let until = state.now() + grace;
    match state
        .store
        .rotate_webhook_secret(id, &new_secret()?, until)
        .await?
    {
        Some(w) => {
            let mut v = webhook_json(&w);
            v["previous_secret_expires_at"] = json!(crate::email_view::timestamp(until));
            Ok(Json(v))
        }
        None => Err(no_webhook(&raw)),
    }
}
