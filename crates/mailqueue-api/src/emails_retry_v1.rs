//! `POST /v1/emails/{id}/retry`: queues a `failed` email again, with a
//! fresh retry window.

use crate::auth::FullAccess;
use crate::body::{email_id, expect_empty_object, RawBody};
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use mailqueue_core::store::ChangeOutcome;
use serde_json::json;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw_id): Path<String>,
    RawBody(body): RawBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = email_id(&raw_id)?;
    expect_empty_object(&body)?;
    match state.store.retry_failed_email(id, state.now()).await? {
        ChangeOutcome::Changed(due) => {
            if let Err(e) = state.queue.enqueue(&[due]).await {
                tracing::warn!(error = %e, "a retried email was not enqueued; the reconciler will pick it up");
            }
            Ok(Json(
                json!({"object": "email", "id": id.to_string(), "status": "queued"}),
            ))
        }
        ChangeOutcome::NotFound => Err(ApiError::no_email(id)),
        ChangeOutcome::TooLate(status) => Err(ApiError::TooLate(
            status,
            "retried (only failed emails can be)",
        )),
    }
}
