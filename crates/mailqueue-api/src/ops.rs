//! Operational endpoints (no API key): liveness, readiness, metrics, and
//! the JSON answers for unknown routes and methods.

use crate::error::ApiError;
use crate::OpsContext;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mailqueue_core::transport::TransportHealth;
use serde_json::json;
use std::sync::Arc;

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the store can read and write, the queue answers (where this
/// process needs it), and the transport of its deliveries is not failing (a
/// relay that refuses the credentials); any failure is 503 with the reason.
/// An API process stays ready while the queue is down: it keeps accepting,
/// and the emails are dispatched once the queue is back.
///
/// The answer names what is failing in mailqueue's own words; what the
/// store or queue said goes to the log, since `/readyz` needs no key.
pub async fn readyz(
    State(state): State<Arc<OpsContext>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let not_ready = |reason: String, detail: &dyn std::fmt::Display| {
        tracing::warn!(%detail, "not ready: {reason}");
        ApiError::NotReady(reason)
    };
    if let Some(TransportHealth::Failing { reason }) = state.transport.as_ref().map(|t| t.health())
    {
        return Err(not_ready(format!("the relay: {reason}"), &reason));
    }
    if let Err(e) = state.store.ping().await {
        return Err(not_ready(e.summary().to_string(), &e));
    }
    if let Some(queue) = &state.queue {
        if let Err(e) = queue.ping().await {
            return Err(not_ready("the dispatch queue cannot be reached".into(), &e));
        }
    }
    Ok(Json(json!({"status": "ready"})))
}

pub async fn metrics(State(state): State<Arc<OpsContext>>) -> Response {
    let now = state.clock.now();
    match state.store.queue_stats(now).await {
        Ok(stats) => state.metrics.observe_queue(&stats, now),
        Err(e) => tracing::warn!(error = %e, "queue statistics are unavailable for this scrape"),
    }
    match state.store.webhook_outbox_stats().await {
        Ok(stats) => state.metrics.observe_webhook_outbox(&stats, now),
        Err(e) => {
            tracing::warn!(error = %e, "webhook outbox statistics are unavailable for this scrape")
        }
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

/// Any API route on a connection taken beyond the cap on connections.
pub async fn busy() -> ApiError {
    ApiError::ConnectionsFull
}
