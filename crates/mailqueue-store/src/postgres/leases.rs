//! Maintenance leases in PostgreSQL: one upsert that succeeds only for the
//! holder or over an expired lease.

use super::PgStore;
use crate::errors::store_error;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailqueue_core::store::{MaintenanceLeases, StoreError};

#[async_trait]
impl MaintenanceLeases for PgStore {
    async fn hold_maintenance_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let held: Option<String> = sqlx::query_scalar(
            "INSERT INTO maintenance_leases (name, holder, expires_at) VALUES ($1, $2, $4) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
             WHERE maintenance_leases.holder = EXCLUDED.holder OR maintenance_leases.expires_at < $3 \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(until)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| store_error("holding a maintenance lease", e))?;
        Ok(held.is_some())
    }

    async fn release_maintenance_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM maintenance_leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(|e| store_error("releasing a maintenance lease", e))?;
        Ok(())
    }
}
