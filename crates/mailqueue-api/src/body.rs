//! Reading request bodies: size limit, a client that stops sending, JSON
//! syntax, then the typed shape, each failure with its own status (413,
//! 408, 400, 422).

use crate::error::ApiError;
use crate::ApiState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use http_body_util::BodyExt;
use mailqueue_core::FieldError;
use serde::de::DeserializeOwned;

/// The raw body, refused with 413 when over the configured limit (at once
/// when `Content-Length` announces it) and with 408 when the client lets
/// `body_timeout` pass without sending a byte, or takes longer than
/// `body_deadline` in all (a byte now and then must not hold a connection
/// for ever).
pub struct RawBody(pub Bytes);

impl FromRequest<ApiState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let limit = state.settings.max_body_bytes;
        let idle = state.settings.body_timeout;
        let announced = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        let deadline = state.settings.body_deadline;
        tokio::time::timeout(deadline, read_body(req, limit, idle, announced))
            .await
            .map_err(|_| ApiError::BodyDeadline(deadline))?
    }
}

/// Reads the body up to `limit` bytes, each frame within `idle`.
async fn read_body(
    req: Request,
    limit: usize,
    idle: std::time::Duration,
    announced: Option<u64>,
) -> Result<RawBody, ApiError> {
    let mut body = req.into_body();
    let mut bytes = Vec::with_capacity(announced.unwrap_or(0).min(limit as u64) as usize);
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(ApiError::RequestTimeout(idle)),
            Ok(None) => break,
            Ok(Some(frame)) => frame.map_err(|e| {
                ApiError::MalformedJson(format!("the request body could not be read: {e}"))
            })?,
        };
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(RawBody(Bytes::from(bytes)))
}

/// Parses `bytes` as JSON of shape `T`. Syntax errors are 400; a wrong
/// type, an unknown field or a bad value is 422 with the field's path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedJson(
            "the request body is empty; send a JSON object".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end()
        .map_err(|e| ApiError::MalformedJson(format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Converts an already-parsed JSON value (a batch item) into `T`.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value).map_err(|e| match path_error(e) {
        ApiError::Validation(f) => f,
        other => FieldError::invalid("", other.to_string()),
    })
}

fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::MalformedJson(format!("the request body is not valid JSON: {inner}"))
        }
        Category::Data => {
            let message = strip_position(&inner.to_string());
            let field = if path == "." { String::new() } else { path };
            let message = if field.is_empty() {
                message
            } else {
                format!("`{field}`: {message}")
            };
            ApiError::Validation(FieldError::invalid(field, message))
        }
    }
}

/// serde_json appends "at line 1 column 42", which means little to a client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The `{id}` of a route: an unknown or malformed id is simply not found.
pub fn email_id(raw: &str) -> Result<mailqueue_core::EmailId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::no_email(raw.chars().take(64).collect::<String>()))
}

/// Bodies of action endpoints (`cancel`, `retry`): empty or `{}`.
pub fn expect_empty_object(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Nothing {}
    parse_json::<Nothing>(bytes).map(|_| ())
}
