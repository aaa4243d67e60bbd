//! Webhooks and their outbox in PostgreSQL (statements in
//! `shared::webhooks`); claims skip rows another worker has locked.

use super::{bound, PgStore};
use crate::errors::store_error;
use crate::shared::webhooks as statements;
use chrono::{DateTime, Utc};
use mailqueue_core::store::StoreError;
use mailqueue_core::webhooks::{
    ClaimedDelivery, DeliveryClaim, DeliveryOutcome, DeliveryReport, DeliveryStatus, DisablePolicy,
};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Executor, Postgres as Pg};

impl PgStore {
    /// Claims due deliveries (see `shared::webhook_store`).
    pub(crate) async fn claim_deliveries(
        &self,
        claim: &DeliveryClaim,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let ctx = "claiming webhook deliveries";
        let result = async {
            let mut tx = self.pool.begin().await.map_err(|e| store_error(ctx, e))?;
            // A claim lost with an unflushed commit only lets its
            // deliveries be claimed again (at least once).
            tx.execute("SET LOCAL synchronous_commit TO OFF")
                .await
                .map_err(|e| store_error(ctx, e))?;
            let claimed = bound(&statements::claim_and_read(claim))
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(ctx, e))?
                .iter()
                .map(|r| statements::claimed_row(r, claim.now))
                .collect::<Result<Vec<_>, StoreError>>()?;
            tx.commit().await.map_err(|e| store_error(ctx, e))?;
            Ok(claimed)
        }
        .await;
        self.health.record(&result);
        result
    }

    /// Records what became of claimed deliveries.
    pub(crate) async fn record_deliveries(
        &self,
        holder: &str,
        reports: &[DeliveryReport],
        policy: &DisablePolicy,
    ) -> Result<(), StoreError> {
        let ctx = "recording webhook deliveries";
        let result = async {
            let mut tx = self.pool.begin().await.map_err(|e| store_error(ctx, e))?;
            // A report lost with an unflushed commit only repeats its
            // request once the lease expires (at least once), so these
            // commits need not wait for the disk.
            tx.execute("SET LOCAL synchronous_commit TO OFF")
                .await
                .map_err(|e| store_error(ctx, e))?;
            record_reports(holder, reports)
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error(ctx, e))?;
            for st in &statements::record_health(reports, policy) {
                bound(st)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?;
            }
            tx.commit().await.map_err(|e| store_error(ctx, e))
        }
        .await;
        self.health.record(&result);
        result
    }
}

/// Every report of a batch in one statement: each delivery moved on if
/// `holder` still holds it at that attempt (the attempt left on it as its
/// latest try), and a line in the history for each attempt that needs one
/// while its delivery exists (as `statements::record_delivery`,
/// `attempt_row_needed` and `record_attempt` do one at a time).
fn record_reports<'q>(holder: &'q str, reports: &[DeliveryReport]) -> Query<'q, Pg, PgArguments> {
    let mut cols = ReportColumns::default();
    for r in reports {
        cols.push(r);
    }
    sqlx::query(
        "WITH input AS ( \
             SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::integer[], $5::text[], \
                 $6::timestamptz[], $7::integer[], $8::text[], $9::timestamptz[], $10::integer[]) \
             AS t(webhook_id, event_id, attempt, status, next_at, code, error, attempted_at, \
                 duration_ms)), \
         moved AS ( \
             UPDATE webhook_deliveries AS d SET status = i.status, next_attempt_at = i.next_at, \
                 lease_holder = NULL, lease_expires_at = NULL, last_status_code = i.code, \
                 last_error = i.error, last_attempted_at = i.attempted_at, \
                 last_duration_ms = i.duration_ms \
             FROM input AS i WHERE d.webhook_id = i.webhook_id AND d.event_id = i.event_id \
                 AND d.lease_holder = $1 AND d.attempts = i.attempt \
             RETURNING d.webhook_id, d.event_id) \
         INSERT INTO webhook_attempts (webhook_id, event_id, attempted_at, status_code, \
             duration_ms, error) \
         SELECT i.webhook_id, i.event_id, i.attempted_at, i.code, i.duration_ms, i.error \
         FROM input AS i \
         WHERE (i.status <> $11 OR NOT EXISTS (SELECT 1 FROM moved AS m \
                 WHERE m.webhook_id = i.webhook_id AND m.event_id = i.event_id)) \
             AND EXISTS (SELECT 1 FROM webhook_deliveries AS d \
                 WHERE d.webhook_id = i.webhook_id AND d.event_id = i.event_id)",
    )
    .bind(holder)
    .bind(cols.webhook_ids)
    .bind(cols.event_ids)
    .bind(cols.attempts)
    .bind(cols.statuses)
    .bind(cols.next_at)
    .bind(cols.codes)
    .bind(cols.errors)
    .bind(cols.attempted_at)
    .bind(cols.durations)
    .bind(DeliveryStatus::Delivered.as_str())
}

/// Reports as columns, for `unnest`.
#[derive(Default)]
struct ReportColumns {
    webhook_ids: Vec<uuid::Uuid>,
    event_ids: Vec<uuid::Uuid>,
    attempts: Vec<i32>,
    statuses: Vec<&'static str>,
    next_at: Vec<Option<DateTime<Utc>>>,
    codes: Vec<Option<i32>>,
    errors: Vec<Option<String>>,
    attempted_at: Vec<DateTime<Utc>>,
    durations: Vec<i32>,
}

impl ReportColumns {
    fn push(&mut self, r: &DeliveryReport) {
        let (status, next) = match r.outcome {
            DeliveryOutcome::Delivered => (DeliveryStatus::Delivered, None),
            DeliveryOutcome::Failed => (DeliveryStatus::Failed, None),
            DeliveryOutcome::RetryAt(at) => (DeliveryStatus::Pending, Some(at)),
        };
        self.webhook_ids.push(r.webhook_id.0);
        self.event_ids.push(r.event_id.0);
        self.attempts
            .push(i32::try_from(r.attempt).unwrap_or(i32::MAX));
        self.statuses.push(status.as_str());
        self.next_at.push(next);
        self.codes.push(r.status_code.map(i32::from));
        self.errors.push(r.error.clone());
        self.attempted_at.push(r.attempted_at);
        self.durations
            .push(i32::try_from(r.duration_ms).unwrap_or(i32::MAX));
    }
}
