//! `POST /v1/emails`: accept one email. 202 `{"id", "status"}` once committed.

use crate::accept::accept;
use crate::auth::Authenticated;
use crate::body::{parse_json, RawBody};
use crate::error::ApiError;
use crate::{idempotency, ApiState};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use mailqueue_core::request::EmailRequest;
use serde_json::json;

pub async fn handle(
    State(state): State<ApiState>,
    Authenticated(key): Authenticated,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let idempotent = idempotency::from_headers(&headers, key.id, &[b"POST /v1/emails", &body])?;
    let request: EmailRequest = parse_json(&body)?;
    let email = request
        .into_new_email(state.now(), &state.settings.limits)
        .map_err(ApiError::Validation)?;
    accept(
        &state,
        &key,
        vec![email],
        idempotent,
        |accepted| json!({"id": accepted[0].id.to_string(), "status": accepted[0].status}),
    )
    .await
}
