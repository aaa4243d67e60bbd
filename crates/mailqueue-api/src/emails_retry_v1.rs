//! `POST /v1/emails/{id}/retry`: queues a `failed` email again, with a
//! fresh retry window.

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
        .retry(id)
        .await
        .map_err(|e| ApiError::service(e, "retried (only failed emails can be)"))?;
    Ok(Json(
        json!({"object": "email", "id": id.to_string(), "status": "queued"}),
    ))
}
