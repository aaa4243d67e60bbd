//! `PATCH /v1/emails/{id}` with `{"scheduled_at": ...}`: reschedules an
//! email that has not been handed to a worker yet; 409 when it is too late.

use crate::body::{parse_json, RawBody};
use crate::error::ApiError;
use crate::named::Named;
use axum::Json;
use mailqueue_core::schedule::parse_scheduled_at;
use mailqueue_core::{EmailId, FieldError};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateEmailRequest {
    scheduled_at: Option<String>,
    /// The Python SDK repeats the id in the body.
    id: Option<String>,
}

pub async fn handle(
    email: Named<EmailId>,
    RawBody(body): RawBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    let request: UpdateEmailRequest = parse_json(&body)?;
    email.same_as_body("id", request.id.as_deref())?;
    let raw_at = request.scheduled_at.ok_or_else(|| {
        ApiError::Validation(FieldError::missing(
            "scheduled_at",
            "The `scheduled_at` field is missing.",
        ))
    })?;
    let service = &email.state.service;
    let at = parse_scheduled_at(&raw_at, service.now())
        .map_err(|m| ApiError::Validation(FieldError::invalid("scheduled_at", m)))?;
    let rescheduled = service.reschedule(email.id, at).await;
    rescheduled.map_err(|e| ApiError::service(e, "rescheduled"))?;
    Ok(Json(json!({"object": "email", "id": email.id.to_string()})))
}
