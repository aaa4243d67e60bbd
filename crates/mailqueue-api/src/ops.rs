//! Operational endpoints (no API key): liveness, readiness, metrics, and
//! the JSON answers for unknown routes and methods.

use crate::error::ApiError;
use crate::ApiState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mailqueue_core::transport::TransportHealth;
use serde_json::json;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the store can read and write, the queue answers, and the
/// transport of this process's deliveries is not failing (a relay that
/// refuses the credentials); any failure is 503 with the reason.
pub async fn readyz(State(state): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(TransportHealth::Failing { reason }) = state.transport.as_ref().map(|t| t.health())
    {
        return Err(ApiError::Unavailable(reason));
    }
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    state
        .queue
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(json!({"status": "ready"})))
}

pub async fn metrics(State(state): State<ApiState>) -> Response {
    let now = state.now();
    match state.store.queue_stats(now).await {
        Ok(stats) => state.metrics.observe_queue(&stats, now),
        Err(e) => tracing::warn!(error = %e, "queue statistics are unavailable for this scrape"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("The requested endpoint does not exist.".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
