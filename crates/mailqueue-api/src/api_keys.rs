//! Creating API keys: the use case behind `POST /v1/api-keys` and
//! `mailqueue api-keys create`. The token is returned once and never
//! stored; only its hash is.

use chrono::{DateTime, Utc};
use mailqueue_core::api_key::{ApiKeyName, ApiKeyPermission, ApiToken};
use mailqueue_core::store::{ApiKeyRecord, ApiKeyStore, StoreError};
use mailqueue_core::ApiKeyId;

#[derive(Debug, thiserror::Error)]
pub enum CreateApiKeyError {
    #[error("no secure random source for the token: {0}")]
    NoRandomness(String),
    #[error("storing the API key: {0}")]
    Store(#[from] StoreError),
}

/// Makes a key with a fresh random token and stores it.
pub async fn create_api_key(
    store: &dyn ApiKeyStore,
    name: &ApiKeyName,
    permission: ApiKeyPermission,
    now: DateTime<Utc>,
) -> Result<(ApiKeyRecord, ApiToken), CreateApiKeyError> {
    let mut secret = [0u8; 24];
    getrandom::fill(&mut secret).map_err(|e| CreateApiKeyError::NoRandomness(e.to_string()))?;
    let token = ApiToken::from_random(secret);
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(now),
        name: name.as_str().to_string(),
        token_prefix: token.display_prefix(),
        permission,
        created_at: now,
        revoked_at: None,
    };
    store.create_api_key(&record, &token.hash()).await?;
    Ok((record, token))
}
