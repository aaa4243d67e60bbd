//! `GET /v1/emails/{id}/attempts`: every delivery attempt, oldest first.

use crate::email_history::{existing, list_json};
use crate::email_view::attempt_json;
use crate::error::ApiError;
use crate::named::Named;
use axum::Json;
use mailqueue_core::EmailId;
use serde_json::Value;

pub async fn handle(email: Named<EmailId>) -> Result<Json<Value>, ApiError> {
    let attempts = existing(&email).await?.list_attempts(email.id).await?;
    Ok(list_json(attempts.iter().map(attempt_json)))
}
