//! `DELETE /v1/suppressions/{suppression}`: takes an entry (by id or by
//! address) off the list; the address is mailed again from then on.

use crate::error::ApiError;
use crate::named::Named;
use crate::suppression_view::not_found;
use axum::Json;
use mailqueue_core::suppression::SuppressionRef;
use serde_json::{json, Value};

pub async fn handle(entry: Named<SuppressionRef>) -> Result<Json<Value>, ApiError> {
    let removed = entry
        .state
        .service
        .remove_suppressions(std::slice::from_ref(&entry.id))
        .await?;
    let gone = removed.into_iter().next().flatten();
    let gone = gone.ok_or_else(|| not_found(&entry.raw))?;
    let id = gone.id.to_string();
    Ok(Json(
        json!({"object": "suppression", "id": id, "deleted": true}),
    ))
}
