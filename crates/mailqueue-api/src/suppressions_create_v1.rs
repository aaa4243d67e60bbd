//! `POST /v1/suppressions` with `{"email", "reason"?}`: lists the address
//! (origin `manual`) and answers 201 `{"object": "suppression", "id"}`. An
//! address already listed keeps its entry, whose id is answered.

use crate::auth::FullAccess;
use crate::body::{parse_json, RawBody};
use crate::error::ApiError;
use crate::suppression_view::address;
use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mailqueue_core::FieldError;
use serde::Deserialize;
use serde_json::{json, Value};

/// Longest `reason` kept.
pub const MAX_REASON: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddSuppressionRequest {
    email: Option<String>,
    reason: Option<String>,
}

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request: AddSuppressionRequest = parse_json(&body)?;
    let raw = request
        .email
        .ok_or_else(|| FieldError::missing("email", "The `email` field is missing."))
        .map_err(ApiError::Validation)?;
    let email = address("email", &raw).map_err(ApiError::Validation)?;
    if let Some(reason) = &request.reason {
        if reason.chars().count() > MAX_REASON || reason.contains('\0') {
            return Err(ApiError::Validation(FieldError::invalid(
                "reason",
                format!("`reason` must be at most {MAX_REASON} characters, without NUL."),
            )));
        }
    }
    let listed = state
        .service
        .add_suppressions(&[email], request.reason)
        .await?;
    let id = listed.first().map(|s| s.id.to_string());
    Ok((
        StatusCode::CREATED,
        Json(json!({"object": "suppression", "id": id})),
    ))
}
