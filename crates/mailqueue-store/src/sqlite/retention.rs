//! Retention and upkeep in SQLite: batches of finished emails deleted (the
//! foreign keys cascade) or stripped of their contents, each batch one
//! short transaction on the writer so sends and accepts interleave.

use super::{bound, from_ms, SqliteStore};
use crate::errors::store_error;
use crate::shared::retention;
use crate::shared::Dialect;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailqueue_core::retention::RetentionStore;
use mailqueue_core::store::StoreError;
use sqlx::{Connection, Row};

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn purge_finished_emails(
        &self,
        finished_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let st = retention::purge_finished_emails(Dialect::Sqlite, finished_before, limit);
        let mut w = self.writer.acquire().await?;
        let done = bound(&st)
            .execute(&mut *w)
            .await
            .map_err(|e| store_error("deleting finished emails past retention", e));
        Ok(w.settle(done)?.rows_affected())
    }

    async fn purge_email_contents(
        &self,
        finished_before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let ctx = "dropping the contents of finished emails";
        let mark = retention::mark_contents_purged(Dialect::Sqlite, finished_before, limit, now);
        let mut w = self.writer.acquire().await?;
        let result = async {
            let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
            let ids: Vec<String> = bound(&mark)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(ctx, e))?
                .iter()
                .map(|r| r.try_get::<String, _>("id"))
                .collect::<Result<_, _>>()
                .map_err(|e| store_error(ctx, e))?;
            let ids_json = serde_json::to_string(&ids)
                .unwrap_or_else(|e| unreachable!("a list of ids always serializes: {e}"));
            for sql in [
                "UPDATE email_contents SET content = json_remove(content, '$.text', '$.html') \
                 WHERE email_id IN (SELECT value FROM json_each($1))",
                "DELETE FROM email_attachments WHERE email_id IN (SELECT value FROM json_each($1))",
            ] {
                sqlx::query(sql)
                    .bind(&ids_json)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?;
            }
            tx.commit().await.map_err(|e| store_error(ctx, e))?;
            Ok(ids.len() as u64)
        }
        .await;
        w.settle(result)
    }

    async fn oldest_email_created_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = bound(&retention::oldest_email())
            .fetch_optional(&self.readers)
            .await
            .map_err(|e| store_error("finding the oldest email", e))?;
        row.map(|r| {
            r.try_get::<i64, _>("created_at")
                .map_err(|e| store_error("reading the oldest email", e))
                .and_then(from_ms)
        })
        .transpose()
    }

    /// SQLite keeps no dead rows; `PRAGMA optimize` refreshes the
    /// statistics that have drifted (it names no tables).
    async fn tend_tables(&self) -> Result<Vec<String>, StoreError> {
        let mut w = self.writer.acquire().await?;
        let done = sqlx::query("PRAGMA optimize")
            .execute(&mut *w)
            .await
            .map_err(|e| store_error("refreshing SQLite's statistics", e));
        w.settle(done)?;
        Ok(Vec::new())
    }
}
