//! `PATCH /v1/emails/{id}` with `{"scheduled_at": ...}`: reschedules an
//! email that has not been handed to a worker yet; 409 when it is too late.

use crate::auth::FullAccess;
use crate::body::{email_id, parse_json, RawBody};
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use mailqueue_core::schedule::parse_scheduled_at;
use mailqueue_core::FieldError;
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
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw_id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = email_id(&raw_id)?;
    let request: UpdateEmailRequest = parse_json(&body)?;
    if request
        .id
        .as_deref()
        .is_some_and(|body_id| body_id != raw_id)
    {
        return Err(ApiError::Validation(FieldError::invalid(
            "id",
            "The id in the body differs from the id in the path.",
        )));
    }
    let raw_at = request.scheduled_at.ok_or_else(|| {
        ApiError::Validation(FieldError::missing(
            "scheduled_at",
            "The `scheduled_at` field is missing.",
        ))
    })?;
    let at = parse_scheduled_at(&raw_at, state.now())
        .map_err(|m| ApiError::Validation(FieldError::invalid("scheduled_at", m)))?;
    state
        .service
        .reschedule(id, at)
        .await
        .map_err(|e| ApiError::service(e, "rescheduled"))?;
    Ok(Json(json!({"object": "email", "id": id.to_string()})))
}
