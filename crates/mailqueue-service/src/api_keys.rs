//! Creating and revoking API keys: the use cases behind `POST
//! /v1/api-keys`, `mailqueue api-keys create` and their revocations. The
//! token is returned once and never stored; only its hash is.

use crate::ServiceError;

use chrono::{DateTime, Utc};
use mailqueue_core::api_key::{ApiKeyName, ApiKeyPermission, ApiToken};
use mailqueue_core::store::{ApiKeyRecord, ApiKeySelector, ApiKeyStore};
use mailqueue_core::{ApiKeyId, DomainId};

/// Makes a key with a fresh random token and stores it.
pub async fn create_api_key(
    store: &dyn ApiKeyStore,
    name: &ApiKeyName,
    permission: ApiKeyPermission,
    domain_id: Option<DomainId>,
    now: DateTime<Utc>,
) -> Result<(ApiKeyRecord, ApiToken), ServiceError> {
    let mut secret = [0u8; 24];
    crate::random::fill(&mut secret)?;
    let token = ApiToken::from_random(secret);
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(now),
        name: name.as_str().to_string(),
        token_prefix: token.display_prefix(),
        permission,
        domain_id,
        created_at: now,
        revoked_at: None,
    };
    store.create_api_key(&record, &token.hash()).await?;
    Ok((record, token))
}

/// Revokes the active keys `key` selects, at `now`; how many were revoked.
pub async fn revoke_api_key(
    store: &dyn ApiKeyStore,
    key: &ApiKeySelector,
    now: DateTime<Utc>,
) -> Result<u64, ServiceError> {
    Ok(store.revoke_api_key(key, now).await?)
}
