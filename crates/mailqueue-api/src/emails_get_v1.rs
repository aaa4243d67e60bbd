//! `GET /v1/emails/{id}`: the email object.

use crate::email_view::email_json;
use crate::error::ApiError;
use crate::named::Named;
use axum::Json;
use mailqueue_core::EmailId;
use serde_json::Value;

pub async fn handle(email: Named<EmailId>) -> Result<Json<Value>, ApiError> {
    let found = email.state.reads.get_email(email.id).await?;
    let record = found.ok_or_else(|| ApiError::no_email(email.id))?;
    Ok(Json(email_json(&record, true)))
}
