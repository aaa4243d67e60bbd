//! Reading a known idempotency key, the same for every database.

use mailqueue_core::store::{IdempotencyBegin, IdempotencyScope, StoreError};

/// Why a group's commit stopped: its key carries another request's fence.
pub fn taken_over(scope: &IdempotencyScope) -> StoreError {
    StoreError::Superseded(format!(
        "idempotency key `{}` was taken over by a newer request while this one was committing",
        scope.key.escape_debug()
    ))
}

/// What a key already on record means for a new request with `request_hash`.
pub fn classify(
    stored_hash: &[u8],
    request_hash: &[u8; 32],
    response_status: Option<i16>,
    response_body: Option<String>,
) -> IdempotencyBegin {
    if stored_hash != request_hash {
        return IdempotencyBegin::Mismatch;
    }
    match (response_status, response_body) {
        (Some(status), Some(body)) => IdempotencyBegin::Replay {
            status: status as u16,
            body,
        },
        _ => IdempotencyBegin::InProgress,
    }
}
