//! Accepting emails over HTTP, shared by `POST /v1/emails` and
//! `POST /v1/emails/batch`: the use case is `EmailService::accept`; this
//! module turns its outcome into a response.

use crate::auth::Authenticated;
use crate::body::RawBody;
use crate::error::ApiError;
use crate::idempotency::IdempotentRequest;
use crate::ApiState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use mailqueue_core::store::ApiKeyRecord;
use mailqueue_core::NewEmail;
use mailqueue_service::{AcceptOutcome, AcceptedEmail};

/// A JSON answer from an already-serialized body.
pub fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A request that sends (`POST /v1/emails` and its batch form): any key
/// may make one.
pub struct Submission {
    pub state: ApiState,
    pub key: ApiKeyRecord,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl FromRequest<ApiState> for Submission {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Authenticated(key) = Authenticated::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let RawBody(body) = RawBody::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Self {
            state: state.clone(),
            key,
            headers,
            body,
        })
    }
}

/// Stores `emails` and answers 202 with what `respond` makes of them, or
/// replays the earlier answer to the same idempotent request.
pub async fn accept(
    Submission { state, key, .. }: &Submission,
    emails: Vec<NewEmail>,
    idempotent: Option<IdempotentRequest>,
    respond: impl FnOnce(&[AcceptedEmail]) -> serde_json::Value,
) -> Result<Response, ApiError> {
    let senders: Vec<&mailqueue_core::EmailAddress> =
        emails.iter().map(|e| &e.from.address).collect();
    state.service.check_senders(key.domain_id, &senders).await?;
    let accepted = StatusCode::ACCEPTED.as_u16();
    let outcome = state
        .service
        .accept(key.id, emails, idempotent, |emails| {
            (accepted, respond(emails).to_string())
        })
        .await?;
    Ok(match outcome {
        AcceptOutcome::Committed { body } => json_response(accepted, body),
        AcceptOutcome::Replay { status, body } => json_response(status, body),
    })
}
