//! `GET /v1/suppressions/{suppression}`: one entry, by id or by address.

use crate::error::ApiError;
use crate::named::Named;
use crate::suppression_view::{not_found, suppression_json};
use axum::Json;
use mailqueue_core::suppression::SuppressionRef;
use serde_json::Value;

pub async fn handle(entry: Named<SuppressionRef>) -> Result<Json<Value>, ApiError> {
    let found = entry.state.reads.get_suppression(&entry.id).await?;
    let found = found.ok_or_else(|| not_found(&entry.raw))?;
    Ok(Json(suppression_json(&found)))
}
