//! Retention, written once for both stores: a batch of finished emails
//! deleted, the batch whose contents are dropped chosen, and the age of
//! the oldest email kept. Stripping the contents and tending the tables
//! differ by dialect (each store's `purge_contents` and `tend`).

use super::account_events;
use super::executor::on_both_stores;
use super::retention;
use super::rows::RowReader;
use chrono::{DateTime, Utc};
use mailqueue_core::retention::RetentionStore;
use mailqueue_core::store::StoreError;

on_both_stores! {
    impl RetentionStore {
        async fn purge_finished_emails(
            &self,
            finished_before: DateTime<Utc>,
            limit: u32,
        ) -> Result<u64, StoreError> {
            let db = self.db();
            let st = retention::purge_finished_emails(db.dialect(), finished_before, limit);
            let gone = db
                .write_rows("deleting finished emails past retention", &st)
                .await?;
            Ok(gone.len() as u64)
        }

        async fn purge_email_contents(
            &self,
            finished_before: DateTime<Utc>,
            now: DateTime<Utc>,
            limit: u32,
        ) -> Result<u64, StoreError> {
            let mark = retention::mark_contents_purged(self.db().dialect(), finished_before, limit, now);
            self.purge_contents(mark).await
        }

        async fn purge_unclassified_reports(
            &self,
            received_before: DateTime<Utc>,
            limit: u32,
        ) -> Result<u64, StoreError> {
            let st = retention::purge_unclassified_reports(received_before, limit);
            self.db().execute("deleting unclassified reports past retention", &st).await
        }

        async fn purge_account_events(
            &self,
            created_before: DateTime<Utc>,
            limit: u32,
        ) -> Result<u64, StoreError> {
            let db = self.db();
            let st = account_events::purge(db.dialect(), created_before, limit);
            let gone = db
                .write_rows("deleting account events past retention", &st)
                .await?;
            Ok(gone.len() as u64)
        }

        async fn oldest_email_created_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
            let row = self
                .db()
                .fetch_optional("finding the oldest email", &retention::oldest_email())
                .await?;
            row.map(|r| r.time("created_at")).transpose()
        }

        async fn tend_tables(&self) -> Result<Vec<String>, StoreError> {
            self.tend().await
        }
    }
}
