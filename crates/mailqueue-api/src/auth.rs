//! `Authorization: Bearer <token>` on every `/v1` route, and the one check
//! of a key's permission.
//!
//! Handlers take [`FullAccess`], except the two that send (`POST
//! /v1/emails`, `POST /v1/emails/batch`), which take [`Authenticated`]: a
//! `sending_access` key may do nothing else.
//!
//! A verified key is trusted for `auth_cache_ttl` (10 s by default) so the
//! hot path does not query the database on every request; a key revoked by
//! another process (the CLI, another server) therefore stops working within
//! that time. `DELETE /v1/api-keys/{id}` also evicts the key from this
//! process's cache, so here it stops at once. Unknown tokens are never cached.

use crate::error::ApiError;
use crate::ApiState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mailqueue_core::api_key::{ApiKeyPermission, TokenHash};
use mailqueue_core::store::ApiKeyRecord;
use mailqueue_core::ApiKeyId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Recently verified keys, by token hash.
#[derive(Default)]
pub struct AuthCache {
    verified: Mutex<HashMap<TokenHash, (ApiKeyRecord, Instant)>>,
}

impl AuthCache {
    fn get(&self, hash: &TokenHash, ttl: Duration) -> Option<ApiKeyRecord> {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified
            .get(hash)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(key, _)| key.clone())
    }

    fn put(&self, hash: TokenHash, key: ApiKeyRecord) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() > 10_000 {
            verified.clear();
        }
        verified.insert(hash, (key, Instant::now()));
    }

    /// Drops key `id`, so that revoking it through this process takes
    /// effect here at once.
    pub fn forget(&self, id: ApiKeyId) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified.retain(|_, (key, _)| key.id != id);
    }
}

/// The API key a request was made with, whatever its permission.
pub struct Authenticated(pub ApiKeyRecord);

impl FromRequestParts<ApiState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::MissingApiKey)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::MissingApiKey)?;
        let hash = TokenHash::of(token);
        let ttl = state.settings.auth_cache_ttl;
        if let Some(key) = state.auth_cache.get(&hash, ttl) {
            return Ok(Authenticated(key));
        }
        let key = state
            .store
            .find_api_key(&hash)
            .await?
            .ok_or(ApiError::InvalidApiKey)?;
        state.auth_cache.put(hash, key.clone());
        Ok(Authenticated(key))
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
