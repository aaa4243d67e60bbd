//! Maintenance leases in SQLite: the same upsert as PostgreSQL's.

use super::{to_ms, SqliteStore};
use crate::errors::store_error;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailqueue_core::store::{MaintenanceLeases, StoreError};

#[async_trait]
impl MaintenanceLeases for SqliteStore {
    async fn hold_maintenance_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut w = self.writer.acquire().await?;
        let held = sqlx::query_scalar::<_, String>(
            "INSERT INTO maintenance_leases (name, holder, expires_at) VALUES ($1, $2, $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE maintenance_leases.holder = excluded.holder OR maintenance_leases.expires_at < $3 \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(to_ms(now))
        .bind(to_ms(until))
        .fetch_optional(&mut *w)
        .await
        .map_err(|e| store_error("holding a maintenance lease", e));
        Ok(w.settle(held)?.is_some())
    }

    async fn release_maintenance_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut w = self.writer.acquire().await?;
        let done = sqlx::query("DELETE FROM maintenance_leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&mut *w)
            .await
            .map_err(|e| store_error("releasing a maintenance lease", e));
        w.settle(done).map(|_| ())
    }
}
