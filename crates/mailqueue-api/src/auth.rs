//! `Authorization: Bearer <token>` on every `/v1` route, the one check of
//! a key's permission, and the cap on one key's requests at once.
//!
//! [`authenticate`] runs before any `/v1` handler: it finds the key (401,
//! 403 otherwise), takes one of the key's request slots (429 when it has
//! none free) and holds it until the response is made, body reading
//! included, so that one key (a `sending_access` key in a leaked
//! configuration, say) cannot hold every connection with slow bodies.
//! Handlers then state the permission they need by their extractor: they
//! take [`FullAccess`], except the two that send (`POST /v1/emails`,
//! `POST /v1/emails/batch`), which take [`Authenticated`]: a
//! `sending_access` key may do nothing else.
//!
//! A verified key is trusted for `auth_cache_ttl` (10 s by default) so the
//! hot path does not query the database on every request; a key revoked by
//! another process (the CLI, another server) therefore stops working within
//! that time. `DELETE /v1/api-keys/{id}` also evicts the key from this
//! process's cache, so here it stops at once: a lookup that started before
//! the eviction does not put the key back. Unknown tokens are never cached.

use crate::error::ApiError;
use crate::ApiState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use mailqueue_core::api_key::{ApiKeyPermission, TokenHash};
use mailqueue_core::store::ApiKeyRecord;
use mailqueue_core::ApiKeyId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Recently verified keys, by token hash.
#[derive(Default)]
pub struct AuthCache {
    inner: Mutex<Verified>,
}

#[derive(Default)]
struct Verified {
    keys: HashMap<TokenHash, (ApiKeyRecord, Instant)>,
    /// Moves on each eviction: a lookup that began before it is stale.
    evictions: u64,
}

/// When a lookup in the store began, as far as evictions go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupStart(u64);

impl AuthCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, hash: &TokenHash, ttl: Duration) -> Option<ApiKeyRecord> {
        self.lock()
            .keys
            .get(hash)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(key, _)| key.clone())
    }

    /// Call before looking a key up in the store.
    pub fn lookup_start(&self) -> LookupStart {
        LookupStart(self.lock().evictions)
    }

    /// Caches a key found by a lookup that began at `start`, unless a key
    /// was evicted since (it may be this one, read before its revocation).
    pub fn put(&self, hash: TokenHash, key: ApiKeyRecord, start: LookupStart) {
        let mut verified = self.lock();
        if verified.evictions != start.0 {
            return;
        }
        if verified.keys.len() > 10_000 {
            verified.keys.clear();
        }
        verified.keys.insert(hash, (key, Instant::now()));
    }

    /// Drops key `id`, so that revoking it through this process takes
    /// effect here at once.
    pub fn forget(&self, id: ApiKeyId) {
        let mut verified = self.lock();
        verified.keys.retain(|_, (key, _)| key.id != id);
        verified.evictions += 1;
    }
}

/// Each key's request slots.
pub struct KeySlots {
    per_key: usize,
    slots: Mutex<HashMap<ApiKeyId, Arc<Semaphore>>>,
}

impl KeySlots {
    pub fn new(per_key: usize) -> Self {
        Self {
            per_key: per_key.max(1),
            slots: Mutex::default(),
        }
    }

    fn take(&self, key: ApiKeyId) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        let slots = self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_key)))
            .clone();
        slots
            .try_acquire_owned()
            .map_err(|_| ApiError::TooManyConcurrentRequests(self.per_key))
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::MissingApiKey)?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::MissingApiKey)
}

async fn find_key(state: &ApiState, token: &str) -> Result<ApiKeyRecord, ApiError> {
    let hash = TokenHash::of(token);
    let ttl = state.settings.auth_cache_ttl;
    if let Some(key) = state.auth_cache.get(&hash, ttl) {
        return Ok(key);
    }
    let start = state.auth_cache.lookup_start();
    let key = state
        .reads
        .find_api_key(&hash)
        .await?
        .ok_or(ApiError::InvalidApiKey)?;
    state.auth_cache.put(hash, key.clone(), start);
    Ok(key)
}

/// The `/v1` middleware: the key, then one of its slots for the whole request.
pub async fn authenticate(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let key = find_key(&state, bearer_token(&parts)?).await?;
    let _slot = state.key_slots.take(key.id)?;
    parts.extensions.insert(key);
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// The API key a request was made with, whatever its permission.
pub struct Authenticated(pub ApiKeyRecord);

impl FromRequestParts<ApiState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &ApiState) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ApiKeyRecord>()
            .cloned()
            .map(Authenticated)
            .ok_or(ApiError::MissingApiKey)
    }
}

/// Proof that the request's key has `full_access`; a `sending_access` key
/// is refused with `restricted_api_key`.
pub struct FullAccess;

impl FromRequestParts<ApiState> for FullAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(key) = Authenticated::from_request_parts(parts, state).await?;
        match key.permission {
            ApiKeyPermission::FullAccess => Ok(FullAccess),
            ApiKeyPermission::SendingAccess => Err(ApiError::RestrictedApiKey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn key() -> ApiKeyRecord {
        ApiKeyRecord {
            id: ApiKeyId::generate(Utc::now()),
            name: "k".into(),
            token_prefix: "mq_x".into(),
            permission: ApiKeyPermission::FullAccess,
            domain_id: None,
            created_at: Utc::now(),
            revoked_at: None,
        }
    }

    #[test]
    fn a_lookup_that_began_before_a_revocation_does_not_cache_the_key() {
        let cache = AuthCache::default();
        let hash = TokenHash::of("mq_token");
        let ttl = Duration::from_secs(10);
        // A request read the key from the store ...
        let start = cache.lookup_start();
        let k = key();
        // ... while DELETE /v1/api-keys/{id} revoked it and evicted it ...
        cache.forget(k.id);
        // ... and only then cached what it read.
        cache.put(hash, k, start);
        assert_eq!(cache.get(&hash, ttl), None);
        // A lookup after the eviction caches as usual.
        let k = key();
        cache.put(hash, k.clone(), cache.lookup_start());
        assert_eq!(cache.get(&hash, ttl), Some(k));
    }

    #[test]
    fn a_key_has_a_bounded_number_of_requests_at_once() {
        let slots = KeySlots::new(2);
        let (a, b) = (
            ApiKeyId::generate(Utc::now()),
            ApiKeyId::generate(Utc::now()),
        );
        let held = [slots.take(a).unwrap(), slots.take(a).unwrap()];
        assert!(matches!(
            slots.take(a),
            Err(ApiError::TooManyConcurrentRequests(2))
        ));
        assert!(slots.take(b).is_ok(), "another key has its own slots");
        drop(held);
        assert!(slots.take(a).is_ok());
    }
}
