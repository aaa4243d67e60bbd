//! `Authorization: Bearer <token>` on every `/v1` route.
//!
//! A verified key is trusted for `auth_cache_ttl` (10 s by default) so the
//! hot path does not query the database on every request; a revoked key
//! therefore stops working within that time. Unknown tokens are never cached.

use crate::error::ApiError;
use crate::ApiState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mailqueue_core::api_key::TokenHash;
use mailqueue_core::store::ApiKeyRecord;
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
}

/// The API key a request was made with.
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
