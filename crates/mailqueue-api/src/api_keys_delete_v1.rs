//! `DELETE /v1/api-keys/{api_key_id}`: revokes a key, answering Resend's
//! `{"object": "api_key", "id", "deleted": true}`. The key stops working in
//! this process at once and in others sharing the database within
//! `MAILQUEUE_AUTH_CACHE_SECONDS` (see `auth.rs`). A key may delete itself.

use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use mailqueue_core::store::ApiKeySelector;
use mailqueue_core::{ApiKeyId, FieldError};
use serde_json::json;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id: ApiKeyId = raw_id.parse().map_err(|_| {
        ApiError::Validation(FieldError::invalid(
            "api_key_id",
            "The `api_key_id` must be a valid UUID.",
        ))
    })?;
    let revoked = state
        .service
        .revoke_api_key(&ApiKeySelector::Id(id))
        .await?;
    if revoked == 0 {
        // Resend's words for an unknown key; a revoked one is gone too.
        return Err(ApiError::NotFound("API key not found".into()));
    }
    state.auth_cache.forget(id);
    Ok(Json(
        json!({"object": "api_key", "id": id.to_string(), "deleted": true}),
    ))
}
