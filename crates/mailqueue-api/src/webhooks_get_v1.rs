//! `GET /v1/webhooks/{webhook_id}`: the webhook with its signing secret.

use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::webhook_view::{no_webhook, webhook_id, webhook_json};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = webhook_id(&raw)?;
    match state.store.get_webhook(id).await? {
        Some(w) => Ok(Json(webhook_json(&w))),
        None => Err(no_webhook(&raw)),
    }
}
