//! `POST /v1/emails/{id}/retry`: queues a `failed` email again, with a
//! fresh retry window.

use crate::error::ApiError;
use crate::named::Action;
use axum::Json;
use mailqueue_core::EmailId;
use serde_json::{json, Value};

pub async fn handle(email: Action<EmailId>) -> Result<Json<Value>, ApiError> {
    let retried = email.state.service.retry(email.id).await;
    retried.map_err(|e| ApiError::service(e, "retried (only failed emails can be)"))?;
    let id = email.id.to_string();
    Ok(Json(
        json!({"object": "email", "id": id, "status": "queued"}),
    ))
}
