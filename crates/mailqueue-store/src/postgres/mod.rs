//! The PostgreSQL store: the source of truth in production.
//!
//! Batches go through `UNNEST` so a group of any size is one statement, and
//! claims are a single `UPDATE … RETURNING`, so no lock outlives a statement.

mod delivery;
mod emails;
mod event_writes;
pub(crate) use event_writes::write_events;
#[cfg(test)]
mod plans;
mod retention;
mod webhooks;

use crate::errors::store_error;
use crate::health::WriteHealth;
use mailqueue_core::store::StoreError;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Connection settings for [`PgStore::connect`].
#[derive(Clone, Debug)]
pub struct PgSettings {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    health: Arc<WriteHealth>,
}

fn migrator() -> Migrator {
    crate::migrations::migrator(&[
        (
            1,
            "initial",
            include_str!("../../migrations/postgres/0001_initial.sql"),
        ),
        (
            2,
            "api key permissions",
            include_str!("../../migrations/postgres/0002_api_key_permissions.sql"),
        ),
        (
            3,
            "maintenance leases",
            include_str!("../../migrations/postgres/0003_maintenance_leases.sql"),
        ),
        (
            5,
            "events, webhooks and suppressions",
            include_str!("../../migrations/postgres/0005_events_webhooks_suppressions.sql"),
        ),
        (
            6,
            "retention and indexes of unfinished emails",
            include_str!("../../migrations/postgres/0006_retention_and_hot_indexes.sql"),
        ),
        (
            7,
            "indexes of webhook delivery claims",
            include_str!("../../migrations/postgres/0007_webhook_claim_indexes.sql"),
        ),
        (
            8,
            "drop the webhook due index",
            include_str!("../../migrations/postgres/0008_drop_webhook_due_index.sql"),
        ),
        (
            9,
            "webhook leases without an index",
            include_str!("../../migrations/postgres/0009_webhook_leases_unindexed.sql"),
        ),
        (
            10,
            "webhook attempt rows only for tries that did not deliver",
            include_str!("../../migrations/postgres/0010_webhook_attempts_on_failure.sql"),
        ),
        (
            11,
            "fenced idempotency keys, every secret in its grace, case-free suppressions, a write probe",
            include_str!("../../migrations/postgres/0011_second_fault_round.sql"),
        ),
        (
            12,
            "claims counted apart from attempts",
            include_str!("../../migrations/postgres/0012_claims_apart_from_attempts.sql"),
        ),
        (
            13,
            "unclassified reports",
            include_str!("../../migrations/postgres/0013_unclassified_reports.sql"),
        ),
        (
            14,
            "sending domains",
            include_str!("../../migrations/postgres/0014_sending_domains.sql"),
        ),
        (
            15,
            "account events",
            include_str!("../../migrations/postgres/0015_account_events.sql"),
        ),
    ])
}

impl PgStore {
    /// Connects lazily-checked: the first connection is made here so a bad
    /// URL or a down server is reported at start.
    pub async fn connect(settings: &PgSettings) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(&settings.url)
            .map_err(|e| {
                StoreError::Failed(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))
            })?
            .application_name("mailqueue");
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(|e| store_error("connecting to PostgreSQL", e))?;
        Ok(Self::from_pool(pool))
    }

    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            health: Arc::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn health(&self) -> &WriteHealth {
        &self.health
    }

    /// This store through the executor both stores share.
    pub(crate) fn db(&self) -> crate::shared::executor::Db<'_> {
        crate::shared::executor::Db::Pg(self)
    }

    /// Applies pending migrations (an advisory lock keeps concurrent starts safe).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrator().run(&self.pool).await.map_err(|e| match e {
            MigrateError::Execute(inner) => store_error("applying PostgreSQL migrations", inner),
            other => StoreError::Failed(format!("applying PostgreSQL migrations: {other}")),
        })
    }
}

/// A shared statement with its parameters bound in PostgreSQL's encoding.
pub(crate) fn bound(
    st: &crate::shared::Statement,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    use crate::shared::Param;
    st.params.iter().fold(sqlx::query(&st.sql), |q, p| match p {
        Param::Id(id) => q.bind(id.0),
        Param::Uuid(u) => q.bind(*u),
        Param::Time(t) => q.bind(*t),
        Param::OptTime(t) => q.bind(*t),
        Param::Text(s) => q.bind(s.as_str()),
        Param::OptText(s) => q.bind(s.as_deref()),
        Param::OptUuid(u) => q.bind(*u),
        Param::Bytes(b) => q.bind(b.as_slice()),
        Param::Int(i) => q.bind(*i),
    })
}
