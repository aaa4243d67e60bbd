//! Webhooks and their outbox in PostgreSQL (statements in
//! `shared::webhooks`); claims skip rows another worker has locked.

use super::{bound, PgStore};
use crate::errors::store_error;
use crate::shared::webhooks as statements;
use crate::shared::Dialect::Postgres;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailqueue_core::store::{StoreError, WebhookStore};
use mailqueue_core::webhooks::{
    ClaimedDelivery, DeliveryClaim, DeliveryOutcome, DeliveryReport, DeliveryStatus, DisablePolicy,
    OutboxStats, SecretRotation, Webhook, WebhookAttempt, WebhookChange, WebhookDelivery,
    WebhookPage,
};
use mailqueue_core::{EventId, WebhookId};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Executor, Postgres as Pg};

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let result = bound(&statements::insert_webhook(Postgres, webhook))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| store_error("creating a webhook", e));
        self.health.record(&result);
        result
    }

    async fn get_webhook(&self, id: WebhookId) -> Result<Option<Webhook>, StoreError> {
        bound(&statements::get_webhook(Postgres, id))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error("reading a webhook", e))?
            .as_ref()
            .map(statements::webhook)
            .transpose()
    }

    async fn list_webhooks(
        &self,
        page: &WebhookPage<WebhookId>,
    ) -> Result<Vec<Webhook>, StoreError> {
        bound(&statements::list_webhooks(Postgres, page))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("listing webhooks", e))?
            .iter()
            .map(statements::webhook)
            .collect()
    }

    async fn update_webhook(
        &self,
        id: WebhookId,
        change: &WebhookChange,
    ) -> Result<Option<Webhook>, StoreError> {
        if let Some(st) = statements::update_webhook(Postgres, id, change) {
            let result = bound(&st)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(|e| store_error("changing a webhook", e));
            self.health.record(&result);
            result?;
        }
        self.get_webhook(id).await
    }

    async fn rotate_webhook_secret(
        &self,
        id: WebhookId,
        rotation: &SecretRotation,
    ) -> Result<bool, StoreError> {
        let result = bound(&statements::rotate_secret(id, rotation))
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(|e| store_error("rotating a webhook's secret", e));
        self.health.record(&result);
        result
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
        let steps = [
            statements::delete_webhook_deliveries(id),
            statements::delete_webhook(id),
        ];
        Ok(self
            .in_one_transaction("deleting a webhook", &steps)
            .await?
            > 0)
    }

    async fn list_webhook_deliveries(
        &self,
        id: WebhookId,
        page: &WebhookPage<EventId>,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        bound(&statements::list_deliveries(Postgres, id, page))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("listing webhook deliveries", e))?
            .iter()
            .map(statements::delivery)
            .collect()
    }

    async fn get_webhook_delivery(
        &self,
        id: WebhookId,
        event: EventId,
    ) -> Result<Option<WebhookDelivery>, StoreError> {
        bound(&statements::get_delivery(Postgres, id, event))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error("reading a webhook delivery", e))?
            .as_ref()
            .map(statements::delivery)
            .transpose()
    }

    async fn list_webhook_attempts(
        &self,
        id: WebhookId,
        event: EventId,
    ) -> Result<Vec<WebhookAttempt>, StoreError> {
        bound(&statements::list_attempts(id, event))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("listing webhook attempts", e))?
            .iter()
            .map(statements::attempt)
            .collect()
    }

    async fn replay_webhook_delivery(
        &self,
        id: WebhookId,
        event: EventId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let steps = [
            statements::keep_delivered_try(id, event),
            statements::replay(id, event, now),
        ];
        Ok(self
            .in_one_transaction("replaying a webhook delivery", &steps)
            .await?
            > 0)
    }

    async fn claim_webhook_deliveries(
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

    async fn record_webhook_deliveries(
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

    async fn webhook_outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let row = bound(&statements::outbox_stats())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_error("counting webhook deliveries", e))?;
        statements::outbox_row(&row)
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
