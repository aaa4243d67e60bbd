//! `POST /v1/emails`: accept one email. 202 `{"id", "status"}` once committed.

use crate::accept::{accept, Submission};
use crate::body::parse_json;
use crate::error::ApiError;
use crate::idempotency;
use axum::response::Response;
use mailqueue_core::request::EmailRequest;
use serde_json::json;

pub async fn handle(sub: Submission) -> Result<Response, ApiError> {
    let scope: [&[u8]; 2] = [b"POST /v1/emails", &sub.body];
    let idempotent = idempotency::from_headers(&sub.headers, sub.key.id, &scope)?;
    let request: EmailRequest = parse_json(&sub.body)?;
    let email = request
        .into_new_email(sub.state.now(), &sub.state.settings.limits)
        .map_err(ApiError::Validation)?;
    accept(
        &sub,
        vec![email],
        idempotent,
        |accepted| json!({"id": accepted[0].id.to_string(), "status": accepted[0].status}),
    )
    .await
}
