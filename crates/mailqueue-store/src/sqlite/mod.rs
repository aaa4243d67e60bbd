//! The SQLite store: the embedded default, one file in WAL mode.
//!
//! SQLite allows one writer at a time, so every write goes through a single
//! connection behind a mutex (no `SQLITE_BUSY` between our own writers,
//! see `writer.rs`) while reads use a pool. Commits are `synchronous=FULL`:
//! an accepted email is on disk before the API answers. At shutdown the
//! write-ahead log is checkpointed into the main file, so `mailqueue.db`
//! alone holds everything once the process has stopped.

mod emails;
mod event_writes;
pub(crate) use event_writes::write_events;
#[cfg(test)]
mod plans;
mod retention;
mod webhooks;
mod writer;

use crate::errors::store_error;
use chrono::{DateTime, TimeZone, Utc};
use mailqueue_core::store::StoreError;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::Connection;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use writer::Writer;
pub(crate) use writer::WriterGuard;

#[derive(Clone, Debug)]
pub struct SqliteSettings {
    pub path: PathBuf,
    pub readers: u32,
}

#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: Arc<Writer>,
    readers: SqlitePool,
}

fn migrator() -> Migrator {
    crate::migrations::migrator(&[
        (
            1,
            "initial",
            include_str!("../../migrations/sqlite/0001_initial.sql"),
        ),
        (
            2,
            "api key permissions",
            include_str!("../../migrations/sqlite/0002_api_key_permissions.sql"),
        ),
        (
            3,
            "maintenance leases",
            include_str!("../../migrations/sqlite/0003_maintenance_leases.sql"),
        ),
        (
            5,
            "events, webhooks and suppressions",
            include_str!("../../migrations/sqlite/0005_events_webhooks_suppressions.sql"),
        ),
        (
            6,
            "retention and indexes of unfinished emails",
            include_str!("../../migrations/sqlite/0006_retention_and_hot_indexes.sql"),
        ),
        (
            7,
            "indexes of webhook delivery claims",
            include_str!("../../migrations/sqlite/0007_webhook_claim_indexes.sql"),
        ),
        (
            8,
            "drop the webhook due index",
            include_str!("../../migrations/sqlite/0008_drop_webhook_due_index.sql"),
        ),
        (
            9,
            "webhook leases without an index",
            include_str!("../../migrations/sqlite/0009_webhook_leases_unindexed.sql"),
        ),
        (
            10,
            "webhook attempt rows only for tries that did not deliver",
            include_str!("../../migrations/sqlite/0010_webhook_attempts_on_failure.sql"),
        ),
        (
            11,
            "fenced idempotency keys, every secret in its grace, case-free suppressions, a write probe",
            include_str!("../../migrations/sqlite/0011_second_fault_round.sql"),
        ),
        (
            12,
            "claims counted apart from attempts",
            include_str!("../../migrations/sqlite/0012_claims_apart_from_attempts.sql"),
        ),
        (
            13,
            "unclassified reports",
            include_str!("../../migrations/sqlite/0013_unclassified_reports.sql"),
        ),
        (
            14,
            "sending domains",
            include_str!("../../migrations/sqlite/0014_sending_domains.sql"),
        ),
        (
            15,
            "account events",
            include_str!("../../migrations/sqlite/0015_account_events.sql"),
        ),
    ])
}

/// Unix milliseconds, the stored form of a time.
pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("{ms} is not a valid time in milliseconds")))
}

pub(crate) fn from_opt_ms(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(from_ms).transpose()
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(settings: &SqliteSettings) -> Result<Self, StoreError> {
        if let Some(dir) = settings.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Failed(format!(
                    "creating the data directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&settings.path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let ctx = format!("opening the SQLite database {}", settings.path.display());
        let mut writer = SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| store_error(&ctx, e))?;
        migrator().run(&mut writer).await.map_err(|e| match e {
            MigrateError::Execute(inner) => store_error("applying SQLite migrations", inner),
            other => StoreError::Failed(format!("applying SQLite migrations: {other}")),
        })?;
        let readers = SqlitePoolOptions::new()
            .max_connections(settings.readers.max(1))
            .connect_with(options.clone().read_only(true))
            .await
            .map_err(|e| store_error(&ctx, e))?;
        Ok(Self {
            writer: Arc::new(Writer::new(options.clone(), writer)),
            readers,
        })
    }
}

impl SqliteStore {
    pub(crate) fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }

    /// This store through the executor both stores share.
    pub(crate) fn db(&self) -> crate::shared::executor::Db<'_> {
        crate::shared::executor::Db::Sqlite(self)
    }

    /// Moves the write-ahead log into the main file and empties it.
    pub(crate) async fn checkpoint(&self) -> Result<(), StoreError> {
        let mut w = self.writer.acquire().await?;
        let result = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *w)
            .await
            .map_err(|e| store_error("checkpointing the write-ahead log", e))
            .and_then(|(busy, _, _)| match busy {
                0 => Ok(()),
                _ => Err(StoreError::Unavailable(
                    "the write-ahead log could not be checkpointed: a reader is busy".into(),
                )),
            });
        w.settle(result)
    }
}

/// A shared statement with its parameters bound in SQLite's encoding.
pub(crate) fn bound(
    st: &crate::shared::Statement,
) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
    use crate::shared::Param;
    st.params.iter().fold(sqlx::query(&st.sql), |q, p| match p {
        Param::Id(id) => q.bind(id.to_string()),
        Param::Uuid(u) => q.bind(u.to_string()),
        Param::Time(t) => q.bind(to_ms(*t)),
        Param::OptTime(t) => q.bind(t.map(to_ms)),
        Param::Text(s) => q.bind(s.as_str()),
        Param::OptText(s) => q.bind(s.as_deref()),
        Param::OptUuid(u) => q.bind(u.map(|u| u.to_string())),
        Param::Bytes(b) => q.bind(b.as_slice()),
        Param::Int(i) => q.bind(*i),
    })
}
