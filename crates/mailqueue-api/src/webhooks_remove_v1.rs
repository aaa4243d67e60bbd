//! `DELETE /v1/webhooks/{webhook_id}`: removes the webhook with its
//! pending deliveries and their history.

use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::webhook_view::{no_webhook, webhook_id};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = webhook_id(&raw)?;
    if state.store.delete_webhook(id).await? {
        Ok(Json(
            json!({"object": "webhook", "id": id.to_string(), "deleted": true}),
        ))
    } else {
        Err(no_webhook(&raw))
    }
}
