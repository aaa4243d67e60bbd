//! `GET /v1/emails/{id}`: the email object.

use crate::auth::FullAccess;
use crate::body::email_id;
use crate::email_view::email_json;
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = email_id(&raw_id)?;
    let record = state
        .store
        .get_email(id)
        .await?
        .ok_or_else(|| ApiError::no_email(id))?;
    Ok(Json(email_json(&record, true)))
}
