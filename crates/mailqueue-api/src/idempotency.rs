//! `Idempotency-Key`: a retried request gets the original answer.
//!
//! The key is recorded as "in progress" before anything is stored, and its
//! answer is written in the same transaction as the emails, so a crash
//! leaves either nothing or both. A key is scoped to its API key and kept
//! for `idempotency_ttl` (24 hours by default).

use crate::error::ApiError;
use crate::ApiState;
use axum::http::HeaderMap;
use mailqueue_core::store::{IdempotencyBegin, IdempotencyScope, IdempotencyWindow};
use mailqueue_core::ApiKeyId;
use sha2::{Digest, Sha256};

/// A request in progress has this long before a retry may take it over.
const IN_PROGRESS_TIMEOUT: chrono::Duration = chrono::Duration::seconds(60);

/// An idempotency key that was presented, with the request's fingerprint.
pub struct IdempotentRequest {
    pub scope: IdempotencyScope,
    pub hash: [u8; 32],
}

/// Reads the header; `None` when absent. `parts` identify the request
/// (endpoint, options, body): the same key with other parts is a mismatch.
pub fn from_headers(
    headers: &HeaderMap,
    api_key_id: ApiKeyId,
    parts: &[&[u8]],
) -> Result<Option<IdempotentRequest>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw.to_str().map_err(|_| ApiError::InvalidIdempotencyKey)?;
    if key.is_empty() || key.len() > 256 || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ApiError::InvalidIdempotencyKey);
    }
    Ok(Some(IdempotentRequest {
        scope: IdempotencyScope {
            api_key_id,
            key: key.to_string(),
        },
        hash: request_fingerprint(parts),
    }))
}

/// The fingerprint of a request: what must match for a replay.
pub fn request_fingerprint(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// What to do with a request that carries a key.
pub enum Start {
    Proceed,
    Replay { status: u16, body: String },
}

pub async fn begin(state: &ApiState, req: &IdempotentRequest) -> Result<Start, ApiError> {
    let now = state.now();
    let ttl = chrono::Duration::from_std(state.settings.idempotency_ttl)
        .unwrap_or(chrono::Duration::hours(24));
    let window = IdempotencyWindow {
        now,
        stale_before: now - IN_PROGRESS_TIMEOUT,
        expired_before: now - ttl,
    };
    match state
        .store
        .begin_idempotent_request(&req.scope, &req.hash, &window)
        .await?
    {
        IdempotencyBegin::Started => Ok(Start::Proceed),
        IdempotencyBegin::Replay { status, body } => Ok(Start::Replay { status, body }),
        IdempotencyBegin::Mismatch => Err(ApiError::IdempotencyMismatch),
        IdempotencyBegin::InProgress => Err(ApiError::IdempotencyInProgress),
    }
}
