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
    ClaimedDelivery, DeliveryClaim, DeliveryOutcome, DeliveryReport, DisablePolicy, OutboxStats,
    SigningSecret, Webhook, WebhookAttempt, WebhookChange, WebhookDelivery, WebhookPage,
};
use mailqueue_core::{EventId, WebhookId};
use sqlx::Row;

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
        secret: &SigningSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<Webhook>, StoreError> {
        let result = bound(&statements::rotate_secret(id, secret, previous_until))
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| store_error("rotating a webhook's secret", e));
        self.health.record(&result);
        result?;
        self.get_webhook(id).await
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
        let result = bound(&statements::delete_webhook(id))
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(|e| store_error("deleting a webhook", e));
        self.health.record(&result);
        result
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
        let result = bound(&statements::replay(id, event, now))
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(|e| store_error("replaying a webhook delivery", e));
        self.health.record(&result);
        result
    }

    async fn claim_webhook_deliveries(
        &self,
        claim: &DeliveryClaim,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let ctx = "claiming webhook deliveries";
        let result = async {
            let keys = bound(&statements::claim(Postgres, claim))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| store_error(ctx, e))?
                .iter()
                .map(|r| {
                    let w: uuid::Uuid = r.try_get("webhook_id").map_err(|e| store_error(ctx, e))?;
                    let e: uuid::Uuid = r.try_get("event_id").map_err(|e| store_error(ctx, e))?;
                    Ok((WebhookId(w), EventId(e)))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            bound(&statements::claimed(Postgres, &claim.holder, &keys))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| store_error(ctx, e))?
                .iter()
                .map(|r| statements::claimed_row(r, claim.now))
                .collect()
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
            for r in reports {
                let mut steps = vec![
                    statements::record_delivery(holder, r),
                    statements::record_attempt(Postgres, r),
                    statements::record_health(r),
                ];
                if r.outcome != DeliveryOutcome::Delivered {
                    steps.push(statements::disable_if_failing(
                        r.webhook_id,
                        policy,
                        r.attempted_at,
                    ));
                }
                for st in &steps {
                    bound(st)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| store_error(ctx, e))?;
                }
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
