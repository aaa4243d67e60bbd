//! What the suppression endpoints share: the entry as Resend shows it, the
//! `{suppression}` of a route (an id or an address), and addresses read
//! from a body.

use crate::email_view::timestamp;
use crate::error::ApiError;
use mailqueue_core::suppression::{suppression_key, Suppression, SuppressionRef};
use mailqueue_core::{EmailAddress, FieldError, SuppressionId};
use serde_json::{json, Value};

/// Most entries one batch request may name, as in Resend.
pub const MAX_BATCH: usize = 100;

/// The entry; `source_id` is the email whose bounce listed the address.
pub fn suppression_json(s: &Suppression) -> Value {
    json!({
        "object": "suppression",
        "id": s.id.to_string(),
        "email": s.email,
        "origin": s.origin.as_str(),
        "source_id": s.email_id.map(|id| id.to_string()),
        "reason": s.reason,
        "created_at": timestamp(s.created_at),
    })
}

pub fn not_found(raw: &str) -> ApiError {
    let shown: String = raw.chars().take(254).collect();
    ApiError::NotFound(format!("No suppression `{shown}` exists."))
}

/// A route's `{suppression}`: an id, or else an address.
pub fn route_ref(raw: &str) -> Result<SuppressionRef, ApiError> {
    if let Ok(id) = raw.parse::<SuppressionId>() {
        return Ok(SuppressionRef::Id(id));
    }
    EmailAddress::parse(raw)
        .map(|a| SuppressionRef::Email(suppression_key(&a)))
        .map_err(|_| not_found(raw))
}

/// An address of a body.
pub fn address(field: &str, raw: &str) -> Result<EmailAddress, FieldError> {
    EmailAddress::parse(raw).map_err(|e| FieldError::invalid(field, format!("`{field}`: {e}")))
}

/// A batch's list: 1 to [`MAX_BATCH`] items.
pub fn batch_size(field: &str, n: usize) -> Result<(), ApiError> {
    if (1..=MAX_BATCH).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::Validation(FieldError::invalid(
            field,
            format!("`{field}` must hold 1 to {MAX_BATCH} items; it holds {n}."),
        )))
    }
}
