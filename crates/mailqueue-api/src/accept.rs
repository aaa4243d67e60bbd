//! Accepting emails: shared by `POST /v1/emails` and `POST /v1/emails/batch`.
//!
//! The answer is sent only after the group committer has committed the
//! emails (and the idempotent answer with them). Enqueueing happens after
//! the commit; if it fails, the reconciler finds the email in the store.

use crate::error::ApiError;
use crate::idempotency::{self, IdempotentRequest, Start};
use crate::ApiState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use mailqueue_core::store::{
    ApiKeyRecord, DueEmail, EmailToInsert, IdempotentResponse, InsertGroup,
};
use mailqueue_core::{EmailId, EmailStatus, NewEmail};

/// An email that will be stored by this request.
pub struct Accepted {
    pub id: EmailId,
    pub status: EmailStatus,
}

/// A JSON answer from an already-serialized body.
pub fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Stores `emails` and answers with what `respond` makes of them, or
/// replays the earlier answer to the same idempotent request.
pub async fn accept(
    state: &ApiState,
    key: &ApiKeyRecord,
    emails: Vec<NewEmail>,
    idempotent: Option<IdempotentRequest>,
    respond: impl FnOnce(&[Accepted]) -> serde_json::Value,
) -> Result<Response, ApiError> {
    if let Some(req) = &idempotent {
        if let Start::Replay { status, body } = idempotency::begin(state, req).await? {
            return Ok(json_response(status, body));
        }
    }
    let now = state.now();
    let inserts: Vec<EmailToInsert> = emails
        .into_iter()
        .map(|email| {
            let id = EmailId::generate(now);
            let domain = state
                .settings
                .message_id_domain
                .as_deref()
                .unwrap_or(email.from.address.domain());
            EmailToInsert {
                id,
                api_key_id: Some(key.id),
                message_id: format!("<{id}@{domain}>"),
                created_at: now,
                email,
            }
        })
        .collect();
    let accepted: Vec<Accepted> = inserts
        .iter()
        .map(|e| Accepted {
            id: e.id,
            status: e.initial_status(),
        })
        .collect();
    let status = StatusCode::ACCEPTED.as_u16();
    let body = respond(&accepted).to_string();
    let due: Vec<DueEmail> = inserts.iter().map(EmailToInsert::due).collect();
    let group = InsertGroup {
        emails: inserts,
        idempotency: idempotent.as_ref().map(|r| IdempotentResponse {
            scope: r.scope.clone(),
            status,
            body: body.clone(),
        }),
    };
    if let Err(e) = state.committer.commit(group).await {
        if let Some(req) = &idempotent {
            if let Err(e) = state.store.abandon_idempotent_request(&req.scope).await {
                tracing::warn!(error = %e, "could not release an idempotency key after a failed commit");
            }
        }
        return Err(e.into());
    }
    state.metrics.emails_accepted.inc_by(due.len() as u64);
    if let Err(e) = state.queue.enqueue(&due).await {
        tracing::warn!(error = %e, "accepted emails were not enqueued; the reconciler will pick them up");
    }
    Ok(json_response(status, body))
}
