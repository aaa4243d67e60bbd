//! `POST /v1/suppressions/batch/add` with `{"emails": [...]}` (1 to 100):
//! lists every address in one transaction, or none when one is invalid;
//! answers 201 `{"data": [{"object": "suppression", "id"}]}`, one entry
//! per distinct address (an address already listed answers its entry).

use crate::auth::FullAccess;
use crate::body::{parse_json, RawBody};
use crate::error::ApiError;
use crate::suppression_view::{address, batch_size};
use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mailqueue_core::FieldError;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchAddRequest {
    emails: Option<Vec<String>>,
}

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request: BatchAddRequest = parse_json(&body)?;
    let raw = request.emails.ok_or_else(|| {
        ApiError::Validation(FieldError::missing(
            "emails",
            "The `emails` field is missing.",
        ))
    })?;
    batch_size("emails", raw.len())?;
    let addresses = raw
        .iter()
        .enumerate()
        .map(|(index, a)| {
            address("emails", a).map_err(|error| ApiError::BatchItem { index, error })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let listed = state.service.add_suppressions(&addresses, None).await?;
    let data: Vec<Value> = listed
        .iter()
        .map(|s| json!({"object": "suppression", "id": s.id.to_string()}))
        .collect();
    Ok((StatusCode::CREATED, Json(json!({ "data": data }))))
}
