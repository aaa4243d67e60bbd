//! `GET /v1/emails/{id}/attempts`: every delivery attempt, oldest first.

use crate::auth::FullAccess;
use crate::body::email_id;
use crate::email_view::attempt_json;
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::json;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = email_id(&raw_id)?;
    if state.store.get_email(id).await?.is_none() {
        return Err(ApiError::no_email(id));
    }
    let attempts = state.store.list_attempts(id).await?;
    let data: Vec<_> = attempts.iter().map(attempt_json).collect();
    Ok(Json(
        json!({"object": "list", "has_more": false, "data": data}),
    ))
}
