//! `GET /v1/suppressions/{suppression}`: one entry, by id or by address.

use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::suppression_view::{not_found, route_ref, suppression_json};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entry = route_ref(&raw)?;
    let found = state.store.get_suppression(&entry).await?;
    found
        .map(|s| Json(suppression_json(&s)))
        .ok_or_else(|| not_found(&raw))
}
