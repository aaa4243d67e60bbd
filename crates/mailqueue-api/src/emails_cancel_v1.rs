//! `POST /v1/emails/{id}/cancel`: cancels an email not yet handed to a worker.

use crate::error::ApiError;
use crate::named::Action;
use axum::Json;
use mailqueue_core::EmailId;
use serde_json::{json, Value};

pub async fn handle(email: Action<EmailId>) -> Result<Json<Value>, ApiError> {
    let cancelled = email.state.service.cancel(email.id).await;
    cancelled.map_err(|e| ApiError::service(e, "cancelled"))?;
    Ok(Json(json!({"object": "email", "id": email.id.to_string()})))
}
