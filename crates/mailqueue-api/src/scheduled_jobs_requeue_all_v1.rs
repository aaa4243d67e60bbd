//! `POST /v1/scheduled-jobs/requeue-all`: puts every pending email of the
//! store back into the dispatch queue (the recovery step after losing it),
//! answering how many are due now and how many later. Repeating it, or
//! running it while workers send, sends nothing twice.

use crate::auth::FullAccess;
use crate::body::{expect_empty_object, RawBody};
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::State;
use axum::Json;
use serde_json::json;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    RawBody(body): RawBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    expect_empty_object(&body)?;
    let counts = state
        .service
        .requeue_all()
        .await
        .map_err(|e| ApiError::service(e, "requeued"))?;
    Ok(Json(json!({
        "object": "requeue",
        "requeued": counts.total(),
        "due_now": counts.due_now,
        "due_later": counts.due_later,
    })))
}
