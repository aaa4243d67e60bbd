//! API keys and idempotency keys in SQLite.

use super::{from_ms, from_opt_ms, to_ms, SqliteStore};
use crate::content::stored_permission;
use crate::errors::store_error;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailqueue_core::api_key::TokenHash;
use mailqueue_core::store::{
    ApiKeyRecord, ApiKeySelector, ApiKeyStore, IdempotencyBegin, IdempotencyScope,
    IdempotencyStore, IdempotencyWindow, StoreError,
};
use mailqueue_core::IdempotencyFence;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

fn api_key_from_row(row: &SqliteRow) -> Result<ApiKeyRecord, StoreError> {
    let ctx = |e| store_error("reading an API key", e);
    let id: String = row.try_get("id").map_err(ctx)?;
    Ok(ApiKeyRecord {
        id: id
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("API key id `{id}`: {e}")))?,
        name: row.try_get("name").map_err(ctx)?,
        token_prefix: row.try_get("token_prefix").map_err(ctx)?,
        permission: stored_permission(row.try_get("permission").map_err(ctx)?)?,
        created_at: from_ms(row.try_get("created_at").map_err(ctx)?)?,
        revoked_at: from_opt_ms(row.try_get("revoked_at").map_err(ctx)?)?,
    })
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn create_api_key(&self, key: &ApiKeyRecord, hash: &TokenHash) -> Result<(), StoreError> {
        let mut w = self.writer.acquire().await?;
        let done = sqlx::query(
            "INSERT INTO api_keys (id, name, token_prefix, token_hash, created_at, permission) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.id.to_string())
        .bind(&key.name)
        .bind(&key.token_prefix)
        .bind(&hash.0[..])
        .bind(to_ms(key.created_at))
        .bind(key.permission.as_str())
        .execute(&mut *w)
        .await
        .map_err(|e| store_error("creating an API key", e));
        w.settle(done).map(|_| ())
    }

    async fn find_api_key(&self, hash: &TokenHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, token_prefix, permission, created_at, revoked_at FROM api_keys \
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(&hash.0[..])
        .fetch_optional(&self.readers)
        .await
        .map_err(|e| store_error("looking up an API key", e))?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, token_prefix, permission, created_at, revoked_at FROM api_keys \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(|e| store_error("listing API keys", e))?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(
        &self,
        key: &ApiKeySelector,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let (id, name) = match key {
            ApiKeySelector::Id(id) => (Some(id.to_string()), None),
            ApiKeySelector::Name(name) => (None, Some(name.as_str())),
        };
        let mut w = self.writer.acquire().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 WHERE revoked_at IS NULL AND (id = $1 OR name = $2)",
        )
        .bind(id)
        .bind(name)
        .bind(to_ms(now))
        .execute(&mut *w)
        .await
        .map_err(|e| store_error("revoking an API key", e));
        Ok(w.settle(done)?.rows_affected())
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn begin_idempotent_request(
        &self,
        scope: &IdempotencyScope,
        request_hash: &[u8; 32],
        window: &IdempotencyWindow,
        fence: IdempotencyFence,
    ) -> Result<IdempotencyBegin, StoreError> {
        let ctx = "recording an idempotency key";
        let mut w = self.writer.acquire().await?;
        let result = async {
        let started = sqlx::query(
            "INSERT INTO idempotency_keys (api_key_id, key, request_hash, created_at, fence) \
             VALUES ($1, $2, $3, $4, $7) \
             ON CONFLICT (api_key_id, key) DO UPDATE \
               SET request_hash = excluded.request_hash, created_at = excluded.created_at, \
                   response_status = NULL, response_body = NULL, fence = excluded.fence \
             WHERE idempotency_keys.created_at < $5 \
                OR (idempotency_keys.response_status IS NULL AND idempotency_keys.created_at < $6 \
                    AND idempotency_keys.request_hash = excluded.request_hash)",
        )
        .bind(scope.api_key_id.to_string())
        .bind(&scope.key)
        .bind(&request_hash[..])
        .bind(to_ms(window.now))
        .bind(to_ms(window.expired_before))
        .bind(to_ms(window.stale_before))
        .bind(fence.to_string())
        .execute(&mut *w)
        .await
        .map_err(|e| store_error(ctx, e))?;
        if started.rows_affected() == 1 {
            return Ok(IdempotencyBegin::Started);
        }
        let row = sqlx::query(
            "SELECT request_hash, response_status, response_body FROM idempotency_keys WHERE api_key_id = $1 AND key = $2",
        )
        .bind(scope.api_key_id.to_string())
        .bind(&scope.key)
        .fetch_one(&mut *w)
        .await
        .map_err(|e| store_error(ctx, e))?;
        let hash: Vec<u8> = row
            .try_get("request_hash")
            .map_err(|e| store_error(ctx, e))?;
        let status: Option<i16> = row
            .try_get("response_status")
            .map_err(|e| store_error(ctx, e))?;
        let body: Option<String> = row
            .try_get("response_body")
            .map_err(|e| store_error(ctx, e))?;
        Ok(crate::idempotency::classify(
            &hash,
            request_hash,
            status,
            body,
        ))
        }
        .await;
        w.settle(result)
    }

    async fn abandon_idempotent_request(
        &self,
        scope: &IdempotencyScope,
        fence: IdempotencyFence,
    ) -> Result<(), StoreError> {
        let mut w = self.writer.acquire().await?;
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 AND fence = $3 \
             AND response_status IS NULL",
        )
        .bind(scope.api_key_id.to_string())
        .bind(&scope.key)
        .bind(fence.to_string())
        .execute(&mut *w)
        .await
        .map_err(|e| store_error("releasing an idempotency key", e));
        w.settle(done).map(|_| ())
    }

    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut w = self.writer.acquire().await?;
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(to_ms(before))
            .execute(&mut *w)
            .await
            .map_err(|e| store_error("purging idempotency keys", e));
        Ok(w.settle(done)?.rows_affected())
    }
}
