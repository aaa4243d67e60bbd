//! `GET /v1/emails/{id}/events`: the email's history, oldest first, one
//! event per status change (written in the change's transaction).

use crate::email_history::{existing, list_json};
use crate::email_view::event_json;
use crate::error::ApiError;
use crate::named::Named;
use axum::Json;
use mailqueue_core::EmailId;
use serde_json::Value;

pub async fn handle(email: Named<EmailId>) -> Result<Json<Value>, ApiError> {
    let events = existing(&email).await?.list_email_events(email.id).await?;
    Ok(list_json(events.iter().map(event_json)))
}
