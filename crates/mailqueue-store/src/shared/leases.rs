//! Maintenance leases, written once for both stores: one upsert that
//! succeeds only for the holder or over an expired lease.

use super::executor::on_both_stores;
use super::{Param, Statement};
use chrono::{DateTime, Utc};
use mailqueue_core::store::{MaintenanceLeases, StoreError};

on_both_stores! {
    impl MaintenanceLeases {
        async fn hold_maintenance_lease(
            &self,
            name: &str,
            holder: &str,
            now: DateTime<Utc>,
            until: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let held = self
                .db()
                .write_rows("holding a maintenance lease", &hold(name, holder, now, until))
                .await?;
            Ok(!held.is_empty())
        }

        async fn release_maintenance_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
            self.db()
                .execute("releasing a maintenance lease", &release(name, holder))
                .await
                .map(|_| ())
        }
    }
}

/// Returns a row when `holder` holds the lease until `until`.
fn hold(name: &str, holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> Statement {
    Statement::new(
        "INSERT INTO maintenance_leases (name, holder, expires_at) VALUES ($1, $2, $4) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE maintenance_leases.holder = excluded.holder OR maintenance_leases.expires_at < $3 \
         RETURNING holder",
    )
    .with(Param::Text(name.into()))
    .with(Param::Text(holder.into()))
    .with(Param::Time(now))
    .with(Param::Time(until))
}

fn release(name: &str, holder: &str) -> Statement {
    Statement::new("DELETE FROM maintenance_leases WHERE name = $1 AND holder = $2")
        .with(Param::Text(name.into()))
        .with(Param::Text(holder.into()))
}
