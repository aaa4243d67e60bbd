//! API keys and idempotency keys, written once for both stores.

use super::executor::on_both_stores;
use super::rows::RowReader;
use super::{Param, Statement};
use crate::content::stored_permission;
use chrono::{DateTime, Utc};
use mailqueue_core::api_key::TokenHash;
use mailqueue_core::store::{
    ApiKeyChanges, ApiKeyReads, ApiKeyRecord, ApiKeySelector, IdempotencyBegin, IdempotencyScope,
    IdempotencyStore, IdempotencyWindow, StoreError,
};
use mailqueue_core::{ApiKeyId, IdempotencyFence};

const KEY_COLUMNS: &str = "id, name, token_prefix, permission, domain_id, created_at, revoked_at";

on_both_stores! {
    impl ApiKeyReads {
        async fn find_api_key(&self, hash: &TokenHash) -> Result<Option<ApiKeyRecord>, StoreError> {
            let st = Statement::new(format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL"
            ))
            .with(Param::Bytes(hash.0.to_vec()));
            self.db()
                .fetch_optional("looking up an API key", &st)
                .await?
                .as_ref()
                .map(api_key)
                .transpose()
        }

        async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
            let st = Statement::new(format!(
                "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
            ));
            self.db()
                .fetch_all("listing API keys", &st)
                .await?
                .iter()
                .map(api_key)
                .collect()
        }
    }
}

on_both_stores! {
    impl ApiKeyChanges {
        async fn create_api_key(&self, key: &ApiKeyRecord, hash: &TokenHash) -> Result<(), StoreError> {
            self.db()
                .execute("creating an API key", &insert_key(key, hash))
                .await
                .map(|_| ())
        }

        async fn revoke_api_key(
            &self,
            key: &ApiKeySelector,
            now: DateTime<Utc>,
        ) -> Result<u64, StoreError> {
            self.db()
                .execute("revoking an API key", &revoke_key(key, now))
                .await
        }
    }
}

on_both_stores! {
    impl IdempotencyStore {
        async fn begin_idempotent_request(
            &self,
            scope: &IdempotencyScope,
            request_hash: &[u8; 32],
            window: &IdempotencyWindow,
            fence: IdempotencyFence,
        ) -> Result<IdempotencyBegin, StoreError> {
            let ctx = "recording an idempotency key";
            let db = self.db();
            let begin = begin_request(scope, request_hash, window, fence);
            if db.execute(ctx, &begin).await? == 1 {
                return Ok(IdempotencyBegin::Started);
            }
            let Some(row) = db.fetch_optional(ctx, &read_request(scope)).await? else {
                // Purged between the two statements: the key is free again.
                return Box::pin(self.begin_idempotent_request(scope, request_hash, window, fence))
                    .await;
            };
            Ok(crate::idempotency::classify(
                &row.bytes("request_hash")?,
                request_hash,
                row.opt_int("response_status")?
                    .map(i16::try_from)
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(format!("an answer's status: {e}")))?,
                row.opt_text("response_body")?,
            ))
        }

        async fn abandon_idempotent_request(
            &self,
            scope: &IdempotencyScope,
            fence: IdempotencyFence,
        ) -> Result<(), StoreError> {
            let st = Statement::new(
                "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 AND fence = $3 \
                 AND response_status IS NULL",
            )
            .with(Param::Uuid(scope.api_key_id.0))
            .with(Param::Text(scope.key.clone()))
            .with(Param::Uuid(fence.0));
            self.db()
                .execute("releasing an idempotency key", &st)
                .await
                .map(|_| ())
        }

        async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
            let st = Statement::new("DELETE FROM idempotency_keys WHERE created_at < $1")
                .with(Param::Time(before));
            self.db().execute("purging idempotency keys", &st).await
        }
    }
}

fn insert_key(key: &ApiKeyRecord, hash: &TokenHash) -> Statement {
    Statement::new(
        "INSERT INTO api_keys (id, name, token_prefix, token_hash, created_at, permission, domain_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .with(Param::Uuid(key.id.0))
    .with(Param::Text(key.name.clone()))
    .with(Param::Text(key.token_prefix.clone()))
    .with(Param::Bytes(hash.0.to_vec()))
    .with(Param::Time(key.created_at))
    .with(Param::Text(key.permission.as_str().into()))
    .with(Param::OptUuid(key.domain_id.map(|d| d.0)))
}

fn revoke_key(key: &ApiKeySelector, now: DateTime<Utc>) -> Statement {
    let (id, name) = match key {
        ApiKeySelector::Id(id) => (Some(id.0), None),
        ApiKeySelector::Name(name) => (None, Some(name.clone())),
    };
    Statement::new(
        "UPDATE api_keys SET revoked_at = $3 WHERE revoked_at IS NULL AND (id = $1 OR name = $2)",
    )
    .with(Param::OptUuid(id))
    .with(Param::OptText(name))
    .with(Param::Time(now))
}

/// Inserts the key, or takes over a row that expired or whose request
/// died; one row changed when the request may go ahead.
fn begin_request(
    scope: &IdempotencyScope,
    request_hash: &[u8; 32],
    window: &IdempotencyWindow,
    fence: IdempotencyFence,
) -> Statement {
    Statement::new(
        "INSERT INTO idempotency_keys (api_key_id, key, request_hash, created_at, fence) \
         VALUES ($1, $2, $3, $4, $7) \
         ON CONFLICT (api_key_id, key) DO UPDATE \
           SET request_hash = excluded.request_hash, created_at = excluded.created_at, \
               response_status = NULL, response_body = NULL, fence = excluded.fence \
         WHERE idempotency_keys.created_at < $5 \
            OR (idempotency_keys.response_status IS NULL AND idempotency_keys.created_at < $6 \
                AND idempotency_keys.request_hash = excluded.request_hash)",
    )
    .with(Param::Uuid(scope.api_key_id.0))
    .with(Param::Text(scope.key.clone()))
    .with(Param::Bytes(request_hash.to_vec()))
    .with(Param::Time(window.now))
    .with(Param::Time(window.expired_before))
    .with(Param::Time(window.stale_before))
    .with(Param::Uuid(fence.0))
}

fn read_request(scope: &IdempotencyScope) -> Statement {
    Statement::new(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys \
         WHERE api_key_id = $1 AND key = $2",
    )
    .with(Param::Uuid(scope.api_key_id.0))
    .with(Param::Text(scope.key.clone()))
}

fn api_key(row: &impl RowReader) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: ApiKeyId(row.uuid("id")?),
        name: row.text("name")?,
        token_prefix: row.text("token_prefix")?,
        permission: stored_permission(row.text("permission")?)?,
        domain_id: row.opt_uuid("domain_id")?.map(mailqueue_core::DomainId),
        created_at: row.time("created_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}
