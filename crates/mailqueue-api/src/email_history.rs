//! What the history endpoints of an email share: the email must exist, and
//! the answer is a list of everything, oldest first.

use crate::error::ApiError;
use crate::named::Named;
use axum::Json;
use mailqueue_core::store::ApiReads;
use mailqueue_core::EmailId;
use serde_json::{json, Value};

/// What to read the email's history from, once the email is known to exist.
pub async fn existing(email: &Named<EmailId>) -> Result<&dyn ApiReads, ApiError> {
    let reads = email.state.reads.as_ref();
    match reads.get_email(email.id).await? {
        Some(_) => Ok(reads),
        None => Err(ApiError::no_email(email.id)),
    }
}

/// Everything, as a Resend list.
pub fn list_json(items: impl Iterator<Item = Value>) -> Json<Value> {
    let data: Vec<Value> = items.collect();
    Json(json!({"object": "list", "has_more": false, "data": data}))
}
