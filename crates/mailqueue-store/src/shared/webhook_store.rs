//! Webhooks and their delivery log, written once for both stores over the
//! statements of `shared::webhooks`. Only the outbox's claim and its
//! reports differ by dialect (`claim_deliveries` and `record_deliveries`
//! of each store).

use super::executor::on_both_stores;
use super::webhooks as statements;
use chrono::{DateTime, Utc};
use mailqueue_core::store::{StoreError, WebhookChanges, WebhookOutbox, WebhookReads};
use mailqueue_core::webhooks::{
    ClaimedDelivery, DeliveryClaim, DeliveryReport, DisablePolicy, OutboxStats, SecretRotation,
    Webhook, WebhookAttempt, WebhookChange, WebhookDelivery, WebhookPage,
};
use mailqueue_core::{EventId, WebhookId};

on_both_stores! {
    impl WebhookReads {
        async fn get_webhook(&self, id: WebhookId) -> Result<Option<Webhook>, StoreError> {
            let db = self.db();
            db.fetch_optional("reading a webhook", &statements::get_webhook(db.dialect(), id))
                .await?
                .as_ref()
                .map(statements::webhook)
                .transpose()
        }

        async fn list_webhooks(
            &self,
            page: &WebhookPage<WebhookId>,
        ) -> Result<Vec<Webhook>, StoreError> {
            let db = self.db();
            db.fetch_all("listing webhooks", &statements::list_webhooks(db.dialect(), page))
                .await?
                .iter()
                .map(statements::webhook)
                .collect()
        }

        async fn list_webhook_deliveries(
            &self,
            id: WebhookId,
            page: &WebhookPage<EventId>,
        ) -> Result<Vec<WebhookDelivery>, StoreError> {
            let db = self.db();
            let st = statements::list_deliveries(db.dialect(), id, page);
            db.fetch_all("listing webhook deliveries", &st)
                .await?
                .iter()
                .map(statements::delivery)
                .collect()
        }

        async fn get_webhook_delivery(
            &self,
            id: WebhookId,
            event: EventId,
        ) -> Result<Option<WebhookDelivery>, StoreError> {
            let db = self.db();
            let st = statements::get_delivery(db.dialect(), id, event);
            db.fetch_optional("reading a webhook delivery", &st)
                .await?
                .as_ref()
                .map(statements::delivery)
                .transpose()
        }

        async fn list_webhook_attempts(
            &self,
            id: WebhookId,
            event: EventId,
        ) -> Result<Vec<WebhookAttempt>, StoreError> {
            self.db()
                .fetch_all("listing webhook attempts", &statements::list_attempts(id, event))
                .await?
                .iter()
                .map(statements::attempt)
                .collect()
        }
    }
}

on_both_stores! {
    impl WebhookChanges {
        async fn create_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
            let db = self.db();
            db.execute("creating a webhook", &statements::insert_webhook(db.dialect(), webhook))
                .await
                .map(|_| ())
        }

        async fn update_webhook(
            &self,
            id: WebhookId,
            change: &WebhookChange,
        ) -> Result<Option<Webhook>, StoreError> {
            let db = self.db();
            if let Some(st) = statements::update_webhook(db.dialect(), id, change) {
                db.execute("changing a webhook", &st).await?;
            }
            self.get_webhook(id).await
        }

        async fn rotate_webhook_secret(
            &self,
            id: WebhookId,
            rotation: &SecretRotation,
        ) -> Result<bool, StoreError> {
            let st = statements::rotate_secret(id, rotation);
            Ok(self.db().execute("rotating a webhook's secret", &st).await? == 1)
        }

        /// The deliveries go first: PostgreSQL's outbox has no foreign keys.
        async fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
            let steps = [
                statements::delete_webhook_deliveries(id),
                statements::delete_webhook(id),
            ];
            Ok(self.db().in_one_transaction("deleting a webhook", &steps).await? > 0)
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
            let replayed = self.db().in_one_transaction("replaying a webhook delivery", &steps);
            Ok(replayed.await? > 0)
        }
    }
}

on_both_stores! {
    impl WebhookOutbox {
        async fn claim_webhook_deliveries(
            &self,
            claim: &DeliveryClaim,
        ) -> Result<Vec<ClaimedDelivery>, StoreError> {
            self.claim_deliveries(claim).await
        }

        async fn record_webhook_deliveries(
            &self,
            holder: &str,
            reports: &[DeliveryReport],
            policy: &DisablePolicy,
        ) -> Result<(), StoreError> {
            self.record_deliveries(holder, reports, policy).await
        }

        async fn webhook_outbox_stats(&self) -> Result<OutboxStats, StoreError> {
            let st = statements::outbox_stats();
            let row = self.db().fetch_optional("counting webhook deliveries", &st).await?;
            statements::outbox_row(&row.ok_or_else(|| {
                StoreError::Corrupt("counting webhook deliveries returned no row".into())
            })?)
        }
    }
}
