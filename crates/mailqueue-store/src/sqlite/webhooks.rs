//! Webhooks and their outbox in SQLite (statements in
//! `shared::webhooks`); writes go through the one writer connection.

use super::{bound, SqliteStore};
use crate::errors::store_error;
use crate::shared::webhooks as statements;
use crate::shared::Dialect::Sqlite as Dialect;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailqueue_core::store::{StoreError, WebhookStore};
use mailqueue_core::webhooks::{
    ClaimedDelivery, DeliveryClaim, DeliveryReport, DisablePolicy, OutboxStats, SecretRotation,
    Webhook, WebhookAttempt, WebhookChange, WebhookDelivery, WebhookPage,
};
use mailqueue_core::{EventId, WebhookId};
use sqlx::{Connection, Row};

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        let mut w = self.writer.acquire().await?;
        let result = bound(&statements::insert_webhook(Dialect, webhook))
            .execute(&mut *w)
            .await
            .map(|_| ())
            .map_err(|e| store_error("creating a webhook", e));
        w.settle(result)
    }

    async fn get_webhook(&self, id: WebhookId) -> Result<Option<Webhook>, StoreError> {
        bound(&statements::get_webhook(Dialect, id))
            .fetch_optional(&self.readers)
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
        bound(&statements::list_webhooks(Dialect, page))
            .fetch_all(&self.readers)
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
        if let Some(st) = statements::update_webhook(Dialect, id, change) {
            let mut w = self.writer.acquire().await?;
            let result = bound(&st)
                .execute(&mut *w)
                .await
                .map(|_| ())
                .map_err(|e| store_error("changing a webhook", e));
            w.settle(result)?;
        }
        self.get_webhook(id).await
    }

    async fn rotate_webhook_secret(
        &self,
        id: WebhookId,
        rotation: &SecretRotation,
    ) -> Result<bool, StoreError> {
        let mut w = self.writer.acquire().await?;
        let result = bound(&statements::rotate_secret(id, rotation))
            .execute(&mut *w)
            .await
            .map(|r| r.rows_affected() == 1)
            .map_err(|e| store_error("rotating a webhook's secret", e));
        w.settle(result)
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
        let mut w = self.writer.acquire().await?;
        let result = bound(&statements::delete_webhook(id))
            .execute(&mut *w)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(|e| store_error("deleting a webhook", e));
        w.settle(result)
    }

    async fn list_webhook_deliveries(
        &self,
        id: WebhookId,
        page: &WebhookPage<EventId>,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        bound(&statements::list_deliveries(Dialect, id, page))
            .fetch_all(&self.readers)
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
        bound(&statements::get_delivery(Dialect, id, event))
            .fetch_optional(&self.readers)
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
            .fetch_all(&self.readers)
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
        let mut w = self.writer.acquire().await?;
        let result = async {
            let keys = bound(&statements::claim_sqlite(claim))
                .fetch_all(&mut *w)
                .await
                .map_err(|e| store_error(ctx, e))?
                .iter()
                .map(|r| {
                    let webhook: String =
                        r.try_get("webhook_id").map_err(|e| store_error(ctx, e))?;
                    let event: String = r.try_get("event_id").map_err(|e| store_error(ctx, e))?;
                    Ok((parse_id(&webhook)?, parse_id(&event)?))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            bound(&statements::claimed_sqlite(&claim.holder, &keys))
                .fetch_all(&mut *w)
                .await
                .map_err(|e| store_error(ctx, e))?
                .iter()
                .map(|r| statements::claimed_row(r, claim.now))
                .collect()
        }
        .await;
        w.settle(result)
    }

    async fn record_webhook_deliveries(
        &self,
        holder: &str,
        reports: &[DeliveryReport],
        policy: &DisablePolicy,
    ) -> Result<(), StoreError> {
        let ctx = "recording webhook deliveries";
        let mut w = self.writer.acquire().await?;
        let result = async {
            let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
            for r in reports {
                let moved = bound(&statements::record_delivery(holder, r))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?
                    .rows_affected()
                    > 0;
                if statements::attempt_row_needed(r, moved) {
                    bound(&statements::record_attempt(Dialect, r))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| store_error(ctx, e))?;
                }
            }
            for st in &statements::record_health(reports, policy) {
                bound(st)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?;
            }
            tx.commit().await.map_err(|e| store_error(ctx, e))
        }
        .await;
        w.settle(result)
    }

    async fn webhook_outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let row = bound(&statements::outbox_stats())
            .fetch_one(&self.readers)
            .await
            .map_err(|e| store_error("counting webhook deliveries", e))?;
        statements::outbox_row(&row)
    }
}

fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, StoreError> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored id `{raw}` is not a UUID")))
}
