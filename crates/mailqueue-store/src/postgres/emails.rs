//! Emails, claims and attempts in PostgreSQL.

use super::event_writes::write_events;
use super::PgStore;
use crate::content::{encode_content, stored_files};
use crate::errors::store_error;
use crate::shared::event_rows;
use crate::shared::{statements, Dialect};
use async_trait::async_trait;
use mailqueue_core::store::{EmailInserts, EmailToInsert, InsertGroup, StoreError, StoreHealth};

/// How long a readiness check waits for PostgreSQL.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl PgStore {
    /// The store error for a failed write, noted for readiness.
    pub(super) fn failed_write(&self, context: &str, e: sqlx::Error) -> StoreError {
        let error = store_error(context, e);
        self.health.record::<()>(&Err(error.clone()));
        error
    }

    /// Inserts every group in one transaction.
    async fn insert_all(&self, groups: &[InsertGroup]) -> Result<(), StoreError> {
        let ctx = "storing emails";
        let emails: Vec<&EmailToInsert> = groups.iter().flat_map(|g| g.emails.iter()).collect();
        let mut ids = Vec::new();
        let mut key_ids = Vec::new();
        let mut statuses = Vec::new();
        let mut priorities = Vec::new();
        let mut message_ids = Vec::new();
        let mut contents = Vec::new();
        let mut created = Vec::new();
        let mut scheduled = Vec::new();
        let mut due = Vec::new();
        let (mut att_ids, mut att_pos, mut att_names, mut att_types, mut att_cids, mut att_bytes) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for e in &emails {
            ids.push(e.id.0);
            key_ids.push(e.api_key_id.map(|k| k.0));
            statuses.push(e.initial_status().as_str());
            priorities.push(e.email.priority.rank());
            message_ids.push(e.message_id.as_str());
            contents.push(encode_content(&e.email));
            created.push(e.created_at);
            scheduled.push(e.email.scheduled_at);
            due.push(e.due_at());
            for (pos, a) in stored_files(&e.email).into_iter().enumerate() {
                att_ids.push(e.id.0);
                att_pos.push(pos as i16);
                att_names.push(a.filename);
                att_types.push(a.content_type);
                att_cids.push(a.content_id);
                att_bytes.push(a.content);
            }
        }
        let mut tx = self.pool.begin().await.map_err(|e| store_error(ctx, e))?;
        // The answers first: each locks its key's row, so a takeover waits
        // for this commit, and one whose fence is gone stops the commit.
        for answer in groups.iter().filter_map(|g| g.idempotency.as_ref()) {
            let recorded = sqlx::query(statements::RECORD_IDEMPOTENT_ANSWER)
                .bind(answer.scope.api_key_id.0)
                .bind(&answer.scope.key)
                .bind(answer.status as i16)
                .bind(&answer.body)
                .bind(answer.fence.0)
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error("recording an idempotent answer", e))?;
            if recorded.rows_affected() != 1 {
                return Err(crate::idempotency::taken_over(&answer.scope));
            }
        }
        if !ids.is_empty() {
            sqlx::query(
                "WITH new_emails AS ( \
                     INSERT INTO emails (id, api_key_id, status, priority, message_id, created_at, updated_at, \
                                         scheduled_at, next_attempt_at) \
                     SELECT u.id, u.key_id, u.status, u.priority, u.message_id, u.created, u.created, u.scheduled, u.due \
                     FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int2[], $5::text[], \
                                 $7::timestamptz[], $8::timestamptz[], $9::timestamptz[]) \
                          AS u(id, key_id, status, priority, message_id, created, scheduled, due) \
                     RETURNING id) \
                 INSERT INTO email_contents (email_id, content) \
                 SELECT u.id, u.content::jsonb FROM UNNEST($1::uuid[], $6::text[]) AS u(id, content)",
            )
            .bind(&ids)
            .bind(&key_ids)
            .bind(&statuses)
            .bind(&priorities)
            .bind(&message_ids)
            .bind(&contents)
            .bind(&created)
            .bind(&scheduled)
            .bind(&due)
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(ctx, e))?;
        }
        if !att_ids.is_empty() {
            sqlx::query(
                "INSERT INTO email_attachments (email_id, position, filename, content_type, content_id, content) \
                 SELECT * FROM UNNEST($1::uuid[], $2::int2[], $3::text[], $4::text[], $5::text[], $6::bytea[])",
            )
            .bind(&att_ids)
            .bind(&att_pos)
            .bind(&att_names)
            .bind(&att_types)
            .bind(&att_cids)
            .bind(&att_bytes)
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error("storing attachments", e))?;
        }
        write_events(&mut tx, &event_rows::accepted(&emails)).await?;
        tx.commit()
            .await
            .map_err(|e| store_error("committing emails", e))
    }
}

#[async_trait]
impl EmailInserts for PgStore {
    async fn insert_emails(&self, groups: &[InsertGroup]) -> Result<(), StoreError> {
        let result = self.insert_all(groups).await;
        self.health.record_room(&result);
        result
    }
}

#[async_trait]
impl StoreHealth for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        // A server that is down makes the pool retry until its acquire
        // timeout; readiness answers sooner than a probe gives up.
        tokio::time::timeout(PING_TIMEOUT, sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "PostgreSQL did not answer within {PING_TIMEOUT:?}"
                ))
            })?
            .map_err(|e| store_error("checking PostgreSQL", e))?;
        if self.health.failing().is_none() {
            return Ok(());
        }
        let probe = statements::write_probe(Dialect::Postgres, chrono::Utc::now());
        let probed = self.db().in_one_transaction("probing writes", &probe).await;
        self.health.record_room(&probed);
        probed.map(drop).map_err(crate::health::not_writable)
    }
}
