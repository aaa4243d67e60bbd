//! `POST /v1/emails/{id}/cancel`: cancels an email not yet handed to a worker.

use crate::auth::FullAccess;
use crate::body::{email_id, expect_empty_object, RawBody};
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::json;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw_id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = email_id(&raw_id)?;
    expect_empty_object(&body)?;
    state
        .service
        .cancel(id)
        .await
        .map_err(|e| ApiError::service(e, "cancelled"))?;
    Ok(Json(json!({"object": "email", "id": id.to_string()})))
}
