//! What the history endpoints of an email share: the email must exist, and
//! the answer is a list of everything, oldest first.

use crate::body::email_id;
use crate::error::ApiError;
use crate::ApiState;
use axum::Json;
use mailqueue_core::store::StoreError;
use mailqueue_core::EmailId;
use serde_json::{json, Value};
use std::future::Future;

/// Reads an existing email's history with `read`, as a Resend list.
pub async fn history<T, F, Fut>(
    state: &ApiState,
    raw_id: &str,
    read: F,
    to_json: fn(&T) -> Value,
) -> Result<Json<Value>, ApiError>
where
    F: FnOnce(EmailId) -> Fut,
    Fut: Future<Output = Result<Vec<T>, StoreError>>,
{
    let id = email_id(raw_id)?;
    if state.store.get_email(id).await?.is_none() {
        return Err(ApiError::no_email(id));
    }
    let data: Vec<Value> = read(id).await?.iter().map(to_json).collect();
    Ok(Json(
        json!({"object": "list", "has_more": false, "data": data}),
    ))
}
