//! Writes attempt outcomes in batches, then requeues the retries and
//! counts what happened. A retry is enqueued only after its row says
//! `queued`, so a worker can never find it still `sending`.

use crate::send::Completed;
use crate::Delivery;
use mailqueue_core::store::{AttemptOutcome, AttemptResult, DueEmail};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const BATCH: usize = 512;

/// Runs until every sender is dropped and the last batch is written.
pub async fn run(d: Arc<Delivery>, mut rx: mpsc::Receiver<Completed>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let outcomes: Vec<AttemptOutcome> = batch.iter().map(|c| c.outcome.clone()).collect();
        let mut backoff = Duration::from_millis(100);
        let mut tries = 0;
        while let Err(e) = d.store.record_outcomes(&outcomes).await {
            tries += 1;
            if tries >= 20 {
                tracing::error!(error = %e, count = outcomes.len(),
                    "giving up on recording outcomes; the leases will expire and the emails be retried");
                break;
            }
            tracing::warn!(error = %e, "recording outcomes failed; retrying in {backoff:?}");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
        if tries < 20 {
            account(&d, &batch).await;
        }
        batch.clear();
    }
}

async fn account(d: &Delivery, batch: &[Completed]) {
    let mut retries = Vec::new();
    for c in batch {
        let m = &d.metrics;
        match &c.outcome.result {
            AttemptResult::Sent(_) => {
                m.emails_sent.inc();
                m.attempts.get_or_create(&[("outcome", "sent")]).inc();
                let latency =
                    (c.outcome.finished_at - c.due_at).num_milliseconds().max(0) as f64 / 1000.0;
                m.delivery_latency_seconds.observe(latency);
            }
            AttemptResult::RetryAt(e, at) => {
                m.emails_retried.inc();
                m.attempts.get_or_create(&[("outcome", "retry")]).inc();
                m.smtp_errors
                    .get_or_create(&[("class", e.failure().class.as_str())])
                    .inc();
                tracing::info!(email = %c.outcome.email_id, attempt = c.outcome.attempt, error = %e,
                    retry_at = %at, "delivery deferred");
                retries.push(DueEmail {
                    id: c.outcome.email_id,
                    due_at: *at,
                    priority: c.priority,
                });
            }
            AttemptResult::Failed(e) => {
                m.emails_failed.inc();
                m.attempts.get_or_create(&[("outcome", "failed")]).inc();
                m.smtp_errors
                    .get_or_create(&[("class", e.failure().class.as_str())])
                    .inc();
                tracing::warn!(email = %c.outcome.email_id, attempt = c.outcome.attempt, error = %e,
                    "delivery failed permanently");
            }
        }
    }
    if let Err(e) = d.queue.enqueue(&retries).await {
        tracing::warn!(error = %e, "re-enqueueing retries failed; the reconciler will restore them");
    }
}
