//! Group commit: concurrent requests share one transaction.
//!
//! [`GroupCommitter`] wraps a store and implements the same traits, so its
//! callers see only a store. `insert_emails` hands the call's groups to a
//! committer task and waits; a committer takes every call waiting (up to a
//! limit), stores them with one `insert_emails` of the inner store, and
//! answers each only after the commit, so a 202 still means "on disk".
//! Under load one fsync covers many emails; when idle a call commits alone
//! with no added delay. When the store refuses the data of one call, the
//! others are committed without it and only that call gets the error (see
//! `mailqueue_core::batch`). Every other method goes straight to the inner
//! store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailqueue_core::api_key::TokenHash;
use mailqueue_core::batch::apply_isolating;
use mailqueue_core::retention::RetentionStore;
use mailqueue_core::store::*;
use mailqueue_core::suppression::{
    Suppression, SuppressionQuery, SuppressionRef, SuppressionStore,
};
use mailqueue_core::webhooks::{
    ClaimedDelivery, DeliveryClaim, DeliveryReport, DisablePolicy, OutboxStats, SecretRotation,
    Webhook, WebhookAttempt, WebhookChange, WebhookDelivery, WebhookPage,
};
use mailqueue_core::{EmailId, EventId, IdempotencyFence, WebhookId};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

type Reply = oneshot::Sender<Result<(), StoreError>>;
/// One caller's groups and where its answer goes.
type Call = (Vec<InsertGroup>, Reply);

/// A store whose inserts are group-committed.
pub struct GroupCommitter {
    inner: Arc<dyn Store>,
    calls: mpsc::Sender<Call>,
}

impl GroupCommitter {
    /// Starts `committers` tasks that each commit up to `max_calls` waiting
    /// calls per transaction. The tasks end when the committer is dropped.
    pub fn wrap(inner: Arc<dyn Store>, committers: usize, max_calls: usize) -> Self {
        let max_calls = max_calls.max(1);
        let (calls, rx) = mpsc::channel(max_calls * committers.max(1) * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..committers.max(1) {
            tokio::spawn(commit_loop(inner.clone(), rx.clone(), max_calls));
        }
        Self { inner, calls }
    }
}

async fn commit_loop(
    store: Arc<dyn Store>,
    rx: Arc<Mutex<mpsc::Receiver<Call>>>,
    max_calls: usize,
) {
    let mut batch = Vec::with_capacity(max_calls);
    loop {
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, max_calls).await == 0 {
                return;
            }
        }
        let (calls, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let results = apply_isolating(&calls, |part: &[Vec<InsertGroup>]| {
            let groups: Vec<InsertGroup> = part.iter().flatten().cloned().collect();
            let store = store.clone();
            async move { store.insert_emails(&groups).await }
        })
        .await;
        for (reply, result) in replies.into_iter().zip(results) {
            if let Err(e) = &result {
                tracing::warn!(error = %e, "a group commit failed for one request");
            }
            let _ = reply.send(result);
        }
    }
}

#[async_trait]
impl EmailStore for GroupCommitter {
    async fn insert_emails(&self, groups: &[InsertGroup]) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send((groups.to_vec(), reply))
            .await
            .map_err(|_| StoreError::Unavailable("the commit queue is shut down".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the committer stopped before answering".into()))?
    }

    async fn get_email(&self, id: EmailId) -> Result<Option<EmailRecord>, StoreError> {
        self.inner.get_email(id).await
    }

    async fn list_emails(&self, query: &ListQuery) -> Result<Vec<EmailRecord>, StoreError> {
        self.inner.list_emails(query).await
    }

    async fn list_attempts(&self, id: EmailId) -> Result<Vec<AttemptRecord>, StoreError> {
        self.inner.list_attempts(id).await
    }

    async fn reschedule_email(
        &self,
        id: EmailId,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError> {
        self.inner.reschedule_email(id, at, now).await
    }

    async fn cancel_email(
        &self,
        id: EmailId,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError> {
        self.inner.cancel_email(id, now).await
    }

    async fn retry_failed_email(
        &self,
        id: EmailId,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError> {
        self.inner.retry_failed_email(id, now).await
    }

    async fn claim_emails(
        &self,
        ids: &[EmailId],
        claim: &Claim,
    ) -> Result<Vec<ClaimedEmail>, StoreError> {
        self.inner.claim_emails(ids, claim).await
    }

    async fn record_outcomes(&self, outcomes: &[AttemptOutcome]) -> Result<(), StoreError> {
        self.inner.record_outcomes(outcomes).await
    }

    async fn rescue_expired_leases(
        &self,
        now: DateTime<Utc>,
        give_up_before: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError> {
        self.inner.rescue_expired_leases(now, give_up_before).await
    }

    async fn renew_leases(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<EmailId>, StoreError> {
        self.inner.renew_leases(holder, now, until).await
    }

    async fn defer_claims(
        &self,
        holder: &str,
        claims: &[HeldClaim],
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError> {
        self.inner.defer_claims(holder, claims, due_at, now).await
    }

    async fn release_leases(
        &self,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError> {
        self.inner.release_leases(holder, now).await
    }

    async fn pending_emails(
        &self,
        after: Option<EmailId>,
        limit: u32,
    ) -> Result<Vec<DueEmail>, StoreError> {
        self.inner.pending_emails(after, limit).await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError> {
        self.inner.queue_stats(now).await
    }

    async fn list_email_events(
        &self,
        id: EmailId,
    ) -> Result<Vec<mailqueue_core::events::EmailEvent>, StoreError> {
        self.inner.list_email_events(id).await
    }

    async fn suppressed_among(
        &self,
        addresses: &[String],
    ) -> Result<Vec<SuppressedRecipient>, StoreError> {
        self.inner.suppressed_among(addresses).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}

#[async_trait]
impl IdempotencyStore for GroupCommitter {
    async fn begin_idempotent_request(
        &self,
        scope: &IdempotencyScope,
        request_hash: &[u8; 32],
        window: &IdempotencyWindow,
        fence: IdempotencyFence,
    ) -> Result<IdempotencyBegin, StoreError> {
        self.inner
            .begin_idempotent_request(scope, request_hash, window, fence)
            .await
    }

    async fn abandon_idempotent_request(
        &self,
        scope: &IdempotencyScope,
        fence: IdempotencyFence,
    ) -> Result<(), StoreError> {
        self.inner.abandon_idempotent_request(scope, fence).await
    }

    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.purge_idempotency_keys(before).await
    }
}

#[async_trait]
impl ApiKeyStore for GroupCommitter {
    async fn create_api_key(&self, key: &ApiKeyRecord, hash: &TokenHash) -> Result<(), StoreError> {
        self.inner.create_api_key(key, hash).await
    }

    async fn find_api_key(&self, hash: &TokenHash) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.inner.find_api_key(hash).await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.inner.list_api_keys().await
    }

    async fn revoke_api_key(
        &self,
        key: &ApiKeySelector,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.inner.revoke_api_key(key, now).await
    }
}

#[async_trait]
impl MaintenanceLeases for GroupCommitter {
    async fn hold_maintenance_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner
            .hold_maintenance_lease(name, holder, now, until)
            .await
    }

    async fn release_maintenance_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_maintenance_lease(name, holder).await
    }
}

#[async_trait]
impl SuppressionStore for GroupCommitter {
    async fn add_suppressions(
        &self,
        entries: &[Suppression],
    ) -> Result<Vec<Suppression>, StoreError> {
        self.inner.add_suppressions(entries).await
    }

    async fn list_suppressions(
        &self,
        query: &SuppressionQuery,
    ) -> Result<Vec<Suppression>, StoreError> {
        self.inner.list_suppressions(query).await
    }

    async fn get_suppression(
        &self,
        entry: &SuppressionRef,
    ) -> Result<Option<Suppression>, StoreError> {
        self.inner.get_suppression(entry).await
    }

    async fn remove_suppressions(
        &self,
        entries: &[SuppressionRef],
    ) -> Result<Vec<Option<Suppression>>, StoreError> {
        self.inner.remove_suppressions(entries).await
    }
}

#[async_trait]
impl WebhookStore for GroupCommitter {
    async fn create_webhook(&self, webhook: &Webhook) -> Result<(), StoreError> {
        self.inner.create_webhook(webhook).await
    }

    async fn get_webhook(&self, id: WebhookId) -> Result<Option<Webhook>, StoreError> {
        self.inner.get_webhook(id).await
    }

    async fn list_webhooks(
        &self,
        page: &WebhookPage<WebhookId>,
    ) -> Result<Vec<Webhook>, StoreError> {
        self.inner.list_webhooks(page).await
    }

    async fn update_webhook(
        &self,
        id: WebhookId,
        change: &WebhookChange,
    ) -> Result<Option<Webhook>, StoreError> {
        self.inner.update_webhook(id, change).await
    }

    async fn rotate_webhook_secret(
        &self,
        id: WebhookId,
        rotation: &SecretRotation,
    ) -> Result<bool, StoreError> {
        self.inner.rotate_webhook_secret(id, rotation).await
    }

    async fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError> {
        self.inner.delete_webhook(id).await
    }

    async fn list_webhook_deliveries(
        &self,
        id: WebhookId,
        page: &WebhookPage<EventId>,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        self.inner.list_webhook_deliveries(id, page).await
    }

    async fn get_webhook_delivery(
        &self,
        id: WebhookId,
        event: EventId,
    ) -> Result<Option<WebhookDelivery>, StoreError> {
        self.inner.get_webhook_delivery(id, event).await
    }

    async fn list_webhook_attempts(
        &self,
        id: WebhookId,
        event: EventId,
    ) -> Result<Vec<WebhookAttempt>, StoreError> {
        self.inner.list_webhook_attempts(id, event).await
    }

    async fn replay_webhook_delivery(
        &self,
        id: WebhookId,
        event: EventId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.replay_webhook_delivery(id, event, now).await
    }

    async fn claim_webhook_deliveries(
        &self,
        claim: &DeliveryClaim,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.inner.claim_webhook_deliveries(claim).await
    }

    async fn record_webhook_deliveries(
        &self,
        holder: &str,
        reports: &[DeliveryReport],
        policy: &DisablePolicy,
    ) -> Result<(), StoreError> {
        self.inner
            .record_webhook_deliveries(holder, reports, policy)
            .await
    }

    async fn webhook_outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.inner.webhook_outbox_stats().await
    }
}

#[async_trait]
impl RetentionStore for GroupCommitter {
    async fn purge_finished_emails(
        &self,
        finished_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.inner
            .purge_finished_emails(finished_before, limit)
            .await
    }

    async fn purge_email_contents(
        &self,
        finished_before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.inner
            .purge_email_contents(finished_before, now, limit)
            .await
    }

    async fn oldest_email_created_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.inner.oldest_email_created_at().await
    }

    async fn tend_tables(&self) -> Result<Vec<String>, StoreError> {
        self.inner.tend_tables().await
    }
}
