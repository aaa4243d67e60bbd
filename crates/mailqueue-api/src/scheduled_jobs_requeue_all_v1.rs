//! `POST /v1/scheduled-jobs/requeue-all`: rebuilds the dispatch queue from
//! the store (the recovery step after losing the queue).

use crate::auth::FullAccess;
use crate::body::{expect_empty_object, RawBody};
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::State;
use axum::Json;
use mailqueue_core::queue::{requeue_pending, RequeueError};
use serde_json::json;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    RawBody(body): RawBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    expect_empty_object(&body)?;
    let store: &dyn mailqueue_core::store::EmailStore = state.store.as_ref();
    let requeued = requeue_pending(store, state.queue.as_ref())
        .await
        .map_err(|e| match e {
            RequeueError::Store(e) => ApiError::from(e),
            RequeueError::Queue(e) => ApiError::Unavailable(e.to_string()),
        })?;
    Ok(Json(json!({"object": "requeue", "requeued": requeued})))
}
