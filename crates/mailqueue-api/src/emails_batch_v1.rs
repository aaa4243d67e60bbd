//! `POST /v1/emails/batch`: accept up to `max_batch` emails in one commit.
//!
//! `x-batch-validation: strict` (the default) rejects the whole batch for one
//! invalid item, naming its index; `permissive` accepts the valid items and
//! lists the others under `errors`.

use crate::accept::{accept, Submission};
use crate::body::{from_value, parse_json};
use crate::error::ApiError;
use crate::idempotency;
use axum::http::HeaderMap;
use axum::response::Response;
use mailqueue_core::request::EmailRequest;
use serde_json::json;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Validation {
    Strict,
    Permissive,
}

fn validation_mode(headers: &HeaderMap) -> Result<Validation, ApiError> {
    let Some(raw) = headers.get("x-batch-validation") else {
        return Ok(Validation::Strict);
    };
    match raw
        .to_str()
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        Ok("strict") => Ok(Validation::Strict),
        Ok("permissive") => Ok(Validation::Permissive),
        _ => Err(ApiError::InvalidParameter(
            "The x-batch-validation header must be `strict` or `permissive`.".into(),
            "x-batch-validation",
        )),
    }
}

pub async fn handle(sub: Submission) -> Result<Response, ApiError> {
    let Submission {
        state,
        key,
        headers,
        body,
    } = &sub;
    let mode = validation_mode(headers)?;
    let mode_tag: &[u8] = if mode == Validation::Strict {
        b"strict"
    } else {
        b"permissive"
    };
    let idempotent =
        idempotency::from_headers(headers, key.id, &[b"POST /v1/emails/batch", mode_tag, body])?;
    let items: Vec<serde_json::Value> = parse_json(body)?;
    let max = state.settings.max_batch;
    if items.is_empty() || items.len() > max {
        return Err(ApiError::InvalidParameter(
            format!(
                "A batch holds 1 to {max} emails; this one has {}.",
                items.len()
            ),
            "",
        ));
    }
    let now = state.now();
    let mut emails = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let parsed = from_value::<EmailRequest>(item)
            .and_then(|r| r.into_new_email(now, &state.settings.limits));
        match (parsed, mode) {
            (Ok(email), _) => emails.push(email),
            (Err(error), Validation::Strict) => return Err(ApiError::BatchItem { index, error }),
            (Err(error), Validation::Permissive) => {
                errors.push(json!({"index": index, "message": error.message}))
            }
        }
    }
    accept(&sub, emails, idempotent, |accepted| {
        let data: Vec<_> = accepted
            .iter()
            .map(|a| json!({"id": a.id.to_string()}))
            .collect();
        match mode {
            Validation::Strict => json!({"data": data}),
            Validation::Permissive => json!({"data": data, "errors": errors}),
        }
    })
    .await
}
