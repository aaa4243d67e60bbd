//! `DELETE /v1/suppressions/{suppression}`: takes an entry (by id or by
//! address) off the list; the address is mailed again from then on.

use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::suppression_view::{not_found, route_ref};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entry = route_ref(&raw)?;
    let removed = state.store.remove_suppressions(&[entry]).await?;
    match removed.into_iter().next().flatten() {
        Some(s) => Ok(Json(
            json!({"object": "suppression", "id": s.id.to_string(), "deleted": true}),
        )),
        None => Err(not_found(&raw)),
    }
}
