//! What retention does its own way in SQLite (the rest is in
//! `shared::retention_store`): batches of finished emails stripped of their
//! contents, each batch one short transaction on the writer so sends and
//! accepts interleave, and the statistics refreshed.

use super::{bound, SqliteStore};
use crate::errors::store_error;
use crate::shared::Statement;
use mailqueue_core::store::StoreError;
use sqlx::{Connection, Row};

impl SqliteStore {
    /// Strips the batch of finished emails `mark` marks of their
    /// contents, in one short transaction on the writer.
    pub(crate) async fn purge_contents(&self, mark: Statement) -> Result<u64, StoreError> {
        let ctx = "dropping the contents of finished emails";
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

    /// SQLite keeps no dead rows; `PRAGMA optimize` refreshes the
    /// statistics that have drifted (it names no tables).
    pub(crate) async fn tend(&self) -> Result<Vec<String>, StoreError> {
        let mut w = self.writer.acquire().await?;
        let done = sqlx::query("PRAGMA optimize")
            .execute(&mut *w)
            .await
            .map_err(|e| store_error("refreshing SQLite's statistics", e));
        w.settle(done)?;
        Ok(Vec::new())
    }
}
