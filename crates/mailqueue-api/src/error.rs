//! Every API failure, and the one place that turns it into a response in
//! Resend's shape: `{"statusCode": 422, "name": "validation_error",
//! "message": "...", "field": "to"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mailqueue_core::store::StoreError;
use mailqueue_core::{EmailStatus, FieldError};
use mailqueue_service::ServiceError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    MalformedJson(String),
    #[error("Missing API key in the authorization header.")]
    MissingApiKey,
    #[error("API key is invalid.")]
    InvalidApiKey,
    /// A `sending_access` key on a route that needs `full_access`.
    #[error("This API key is restricted to only send emails.")]
    RestrictedApiKey,
    #[error("{0}")]
    NotFound(String),
    #[error("The method is not allowed on this endpoint.")]
    MethodNotAllowed,
    #[error("The idempotency key must be 1 to 256 printable ASCII characters.")]
    InvalidIdempotencyKey,
    #[error("Same idempotency key used with a different request payload.")]
    IdempotencyMismatch,
    #[error("Same idempotency key used while original request is still in progress.")]
    IdempotencyInProgress,
    #[error("The email is {0}; it can no longer be {1}.")]
    TooLate(EmailStatus, &'static str),
    /// Requests changing the same thing at once kept overtaking this one.
    #[error("{0}")]
    Conflict(&'static str),
    #[error("The request body is larger than the limit of {0} bytes.")]
    PayloadTooLarge(usize),
    #[error("The request body stopped arriving: no byte for {0:?}.")]
    RequestTimeout(std::time::Duration),
    #[error("The request body took longer than {0:?} to arrive.")]
    BodyDeadline(std::time::Duration),
    #[error("{}", .0.message)]
    Validation(FieldError),
    #[error("Batch item {index}: {}", .error.message)]
    BatchItem { index: usize, error: FieldError },
    #[error("{0}")]
    InvalidParameter(String, &'static str),
    #[error("The service is temporarily unavailable: {0}")]
    Unavailable(String),
    /// `/readyz`: the reason is already fit to show (see `ops::readyz`).
    #[error("The service is not ready: {0}.")]
    NotReady(String),
    /// A connection beyond the cap on connections, which serves only the
    /// operational routes.
    #[error("Every connection of the server is in use; retry shortly.")]
    ConnectionsFull,
    /// Too many requests with one API key at once.
    #[error("Too many requests with this API key at once (the limit is {0}); retry shortly.")]
    TooManyConcurrentRequests(usize),
    #[error("The store is out of space; nothing was stored: {0}")]
    InsufficientStorage(String),
    #[error("The store refused this email; nothing was stored: {0}")]
    Refused(String),
    #[error("Internal error: {0}")]
    Internal(String),
    /// Refused for what the account may do: a sender outside the key's
    /// domain or not verified, a domain registered already.
    #[error("{0}")]
    Forbidden(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            StoreError::Full(m) => ApiError::InsufficientStorage(m),
            StoreError::Rejected(m) => ApiError::Refused(m),
            StoreError::Superseded(_) => ApiError::IdempotencyInProgress,
            other @ (StoreError::Corrupt(_) | StoreError::Failed(_)) => {
                ApiError::Internal(other.to_string())
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError::service(e, "changed")
    }
}

impl ApiError {
    /// A use case's failure; `action` completes "it can no longer be …".
    pub fn service(e: ServiceError, action: &'static str) -> Self {
        match e {
            ServiceError::Store(e) => e.into(),
            ServiceError::NoEmail(id) => ApiError::no_email(id),
            ServiceError::TooLate(status) => ApiError::TooLate(status, action),
            ServiceError::IdempotencyMismatch => ApiError::IdempotencyMismatch,
            ServiceError::IdempotencyInProgress => ApiError::IdempotencyInProgress,
            ServiceError::QueueUnavailable(m) => ApiError::Unavailable(m),
            e @ ServiceError::NoRandomness(_) => ApiError::Internal(e.to_string()),
            ServiceError::Overtaken(why) => ApiError::Conflict(why),
            ServiceError::NoDomain(id) => {
                ApiError::NotFound(format!("No domain with id `{id}` exists."))
            }
            e @ (ServiceError::DomainExists(_)
            | ServiceError::Domains(_)
            | ServiceError::SenderRefused(_)) => ApiError::Forbidden(e.to_string()),
        }
    }

    /// 404 for an email id that names no email.
    pub fn no_email(id: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("No email with id `{id}` exists."))
    }

    fn status_and_name(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "validation_error"),
            ApiError::MissingApiKey => (StatusCode::UNAUTHORIZED, "missing_api_key"),
            ApiError::InvalidApiKey => (StatusCode::FORBIDDEN, "invalid_api_key"),
            // Resend's error reference gives `restricted_api_key` the status
            // 401. We answer 403: the key was verified and merely lacks the
            // permission, which is what 403 means (RFC 9110 §15.5.4), while
            // 401 tells a client to (re)authenticate. Resend's SDKs do not
            // branch on the code for this name: Node hands back `{statusCode,
            // name, message}` as it came, and Python raises a plain
            // `ResendError` carrying `restricted_api_key` for 401 and 403 alike.
            ApiError::RestrictedApiKey => (StatusCode::FORBIDDEN, "restricted_api_key"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::InvalidIdempotencyKey => (StatusCode::BAD_REQUEST, "invalid_idempotency_key"),
            ApiError::IdempotencyMismatch => (StatusCode::CONFLICT, "invalid_idempotent_request"),
            ApiError::IdempotencyInProgress => {
                (StatusCode::CONFLICT, "concurrent_idempotent_requests")
            }
            ApiError::TooLate(..) => (StatusCode::CONFLICT, "invalid_email_state"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::RequestTimeout(_) | ApiError::BodyDeadline(_) => {
                (StatusCode::REQUEST_TIMEOUT, "request_timeout")
            }
            ApiError::Validation(e) | ApiError::BatchItem { error: e, .. } if e.missing => {
                (StatusCode::UNPROCESSABLE_ENTITY, "missing_required_field")
            }
            ApiError::Validation(_)
            | ApiError::BatchItem { .. }
            | ApiError::InvalidParameter(..) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation_error")
            }
            ApiError::Unavailable(_) | ApiError::NotReady(_) | ApiError::ConnectionsFull => {
                (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable")
            }
            ApiError::TooManyConcurrentRequests(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded")
            }
            ApiError::InsufficientStorage(_) => {
                (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage")
            }
            ApiError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_server_error"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "validation_error"),
        }
    }

    /// The status code this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status_and_name().0
    }

    /// The message a client sees. A server error's own text can hold what
    /// the store or queue said (hosts, paths, rows): it goes to the log,
    /// and the client gets a sentence of what happened and what to do.
    fn public_message(&self) -> String {
        match self {
            ApiError::Unavailable(_) => {
                "The service is temporarily unavailable; nothing was stored. Retry later.".into()
            }
            ApiError::InsufficientStorage(_) => {
                "The store is out of space; nothing was stored. Retry later.".into()
            }
            ApiError::Internal(_) => "Internal error; the server's log has the details.".into(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, name) = self.status_and_name();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut body = json!({
            "statusCode": status.as_u16(),
            "name": name,
            "message": self.public_message(),
        });
        match &self {
            ApiError::Validation(e) => body["field"] = json!(e.field),
            ApiError::BatchItem { index, error } => {
                body["field"] = json!(error.field);
                body["index"] = json!(index);
            }
            ApiError::InvalidParameter(_, field) => body["field"] = json!(field),
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::TooManyConcurrentRequests(_)) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if matches!(
            self,
            ApiError::RequestTimeout(_)
                | ApiError::BodyDeadline(_)
                | ApiError::PayloadTooLarge(_)
                | ApiError::ConnectionsFull
                | ApiError::TooManyConcurrentRequests(_)
        ) {
            // The rest of the body is never read: the connection cannot be reused.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}
