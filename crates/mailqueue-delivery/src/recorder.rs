//! Writes attempt outcomes in batches, then requeues the retries and
//! counts what happened. A retry is enqueued only after its row says
//! `queued`, so a worker can never find it still `sending`.
//!
//! An outcome is never given up while the store is merely unavailable: the
//! email was sent (or not) and the store must learn it, or the email would
//! be sent again after its lease expired. Writes are retried with backoff
//! until they land; only at shutdown is there a limit (the grace period).
//! An outcome the store refuses is isolated from its batch, logged and
//! counted, so it can never hold the others up. Each outcome carries its
//! send's record permit, freed when the outcome is dropped here: after its
//! write, or when it is given up.

use crate::send::Completed;
use crate::Delivery;
use mailqueue_core::batch::apply_isolating;
use mailqueue_core::store::{AttemptOutcome, AttemptResult, DueEmail, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

const BATCH: usize = 512;

/// Runs until every sender is dropped and the last batch is written (or,
/// once `stop` is set, until `grace` has passed without the store answering).
pub async fn run(
    d: Arc<Delivery>,
    mut rx: mpsc::Receiver<Completed>,
    stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        record(&d, std::mem::take(&mut batch), &stop, grace).await;
    }
}

async fn record(
    d: &Delivery,
    mut pending: Vec<Completed>,
    stop: &watch::Receiver<bool>,
    grace: Duration,
) {
    let mut backoff = Duration::from_millis(100);
    let mut deadline: Option<Instant> = None;
    while let Err(Unwritten { retry, error: e }) = write(d, pending).await {
        if *stop.borrow() {
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + grace);
            if Instant::now() >= deadline {
                tracing::error!(error = %e, count = retry.len(),
                    "stopping without recording these outcomes; the leases will expire and the emails be retried");
                return;
            }
        }
        tracing::warn!(error = %e, count = retry.len(), "recording outcomes failed; retrying in {backoff:?}");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        pending = retry;
    }
}

/// Outcomes the store could not take now, and why.
pub struct Unwritten {
    pub retry: Vec<Completed>,
    pub error: StoreError,
}

/// Writes a batch of outcomes once: counts what the store wrote, logs and
/// counts those it refused, requeues the retries of those recorded, and
/// returns those to write again.
pub async fn write(d: &Delivery, pending: Vec<Completed>) -> Result<(), Unwritten> {
    let outcomes: Vec<AttemptOutcome> = pending.iter().map(|c| c.outcome.clone()).collect();
    let isolated = apply_isolating(&outcomes, |part| d.store.record_outcomes(part)).await;
    for written in &isolated.applied {
        d.metrics.count_events(written);
    }
    let mut recorded = Vec::with_capacity(pending.len());
    let mut retry = Vec::new();
    let mut last_error = None;
    for (c, result) in pending.into_iter().zip(isolated.results) {
        match result {
            Ok(()) => recorded.push(c),
            Err(e) if e.is_rejection() => {
                d.metrics.outcomes_refused.inc();
                tracing::error!(email = %c.outcome.email_id, attempt = c.outcome.attempt, error = %e,
                    "the store refused this attempt's outcome; it is not recorded");
            }
            Err(e) => {
                last_error = Some(e);
                retry.push(c);
            }
        }
    }
    account(d, &recorded).await;
    match last_error {
        None => Ok(()),
        Some(error) => Err(Unwritten { retry, error }),
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
            AttemptResult::Suppressed => {
                m.emails_failed.inc();
                m.attempts.get_or_create(&[("outcome", "suppressed")]).inc();
                tracing::info!(email = %c.outcome.email_id,
                    "every recipient is on the suppression list; nothing was sent");
            }
        }
    }
    if let Err(e) = d.queue.enqueue(&retries).await {
        tracing::warn!(error = %e, "re-enqueueing retries failed; the reconciler will restore them");
    }
}
