//! The `Idempotency-Key` header: a retried request gets the original
//! answer. This module reads the header and fingerprints the request; the
//! use case (`mailqueue_service::Idempotency`) does the rest.

use crate::error::ApiError;
use axum::http::HeaderMap;
use mailqueue_core::store::IdempotencyScope;
use mailqueue_core::ApiKeyId;
use sha2::{Digest, Sha256};

/// An idempotency key that was presented, with the request's fingerprint.
pub type IdempotentRequest = mailqueue_service::Idempotency;

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
        fingerprint: request_fingerprint(parts),
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
