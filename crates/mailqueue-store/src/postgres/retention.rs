//! What retention does its own way in PostgreSQL (the rest is in
//! `shared::retention_store`): batches of finished emails stripped of their
//! contents in one statement, and the statistics of the queue tables kept
//! fresh whatever autovacuum is set to.

use super::{bound, PgStore};
use crate::errors::store_error;
use crate::shared::rows::RowReader;
use crate::shared::Statement;
use mailqueue_core::store::StoreError;
use sqlx::{Executor, Row};

/// The tables delivery writes all day.
pub(crate) const QUEUE_TABLES: [&str; 5] = [
    "emails",
    "email_attempts",
    "email_events",
    "webhook_deliveries",
    "idempotency_keys",
];

/// Statistics are stale once this many rows changed since the last
/// analysis, plus this share of the live rows (a tenth of PostgreSQL's
/// default, which lets a queue table double before it is looked at).
const STALE_ROWS: i64 = 1_000;
const STALE_SHARE: f64 = 0.02;

/// Whether a table with `live` rows and `changed` changed or dead rows
/// needs upkeep.
fn stale(live: i64, changed: i64) -> bool {
    changed as f64 > STALE_ROWS as f64 + STALE_SHARE * live as f64
}

impl PgStore {
    /// Strips the batch of finished emails `mark` marks of their
    /// contents, in one statement.
    pub(crate) async fn purge_contents(&self, mark: Statement) -> Result<u64, StoreError> {
        let sql = format!(
            "WITH marked AS ({}), \
             stripped AS (UPDATE email_contents SET content = content - 'text' - 'html' \
                          WHERE email_id = ANY (ARRAY(SELECT id FROM marked))), \
             dropped AS (DELETE FROM email_attachments \
                         WHERE email_id = ANY (ARRAY(SELECT id FROM marked))) \
             SELECT count(*) AS n FROM marked",
            mark.sql
        );
        let st = Statement {
            sql,
            params: mark.params,
        };
        let row = bound(&st)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_error("dropping the contents of finished emails", e))?;
        Ok(row.int("n")? as u64)
    }

    /// Vacuums or analyses the queue tables whose statistics are stale.
    pub(crate) async fn tend(&self) -> Result<Vec<String>, StoreError> {
        let ctx = "reading the statistics of the queue tables";
        let rows = sqlx::query(
            "SELECT relname::text AS name, n_live_tup, n_dead_tup, n_mod_since_analyze \
             FROM pg_stat_user_tables WHERE relid = ANY ($1::text[]::regclass[])",
        )
        .bind(QUEUE_TABLES.as_slice())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| store_error(ctx, e))?;
        let mut tended = Vec::new();
        for row in rows {
            let c = |e| store_error(ctx, e);
            let name: String = row.try_get("name").map_err(c)?;
            let live: i64 = row.try_get("n_live_tup").map_err(c)?;
            let dead: i64 = row.try_get("n_dead_tup").map_err(c)?;
            let modified: i64 = row.try_get("n_mod_since_analyze").map_err(c)?;
            let Some(&table) = QUEUE_TABLES.iter().find(|t| **t == name) else {
                continue;
            };
            // VACUUM runs outside a transaction: the simple protocol, one
            // statement. SKIP_LOCKED leaves a table autovacuum is on.
            let command = if stale(live, dead) {
                format!("VACUUM (ANALYZE, SKIP_LOCKED) {table}")
            } else if stale(live, modified) {
                format!("ANALYZE (SKIP_LOCKED) {table}")
            } else {
                continue;
            };
            self.pool
                .execute(command.as_str())
                .await
                .map_err(|e| store_error(&format!("running `{command}`"), e))?;
            tended.push(table.to_string());
        }
        Ok(tended)
    }
}

#[cfg(test)]
mod tests {
    use super::stale;

    #[test]
    fn a_table_is_stale_after_a_small_share_of_changes() {
        assert!(!stale(0, 1_000));
        assert!(stale(0, 1_001));
        assert!(!stale(1_000_000, 20_000));
        assert!(stale(1_000_000, 21_001));
    }
}
