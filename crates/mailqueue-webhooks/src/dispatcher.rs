//! The claim loop and the recorder. The loop claims up to [`CLAIM_AHEAD`]
//! times as many deliveries as it may send at once, starts a task per
//! delivery that waits for a request slot (of the process, and of its
//! webhook), and claims again once a quarter of its claims are done or,
//! when the outbox had nothing more due, after the poll interval. So
//! requests follow one another while the store writes the reports and
//! makes the next claim. Reports go to the recorder, which lets them
//! gather for a moment, writes them in one transaction and keeps retrying
//! while the store is unavailable; a report it cannot write is redelivered
//! once its lease expires (at least once). A claim that came back short
//! may have met a webhook's bound rather than an empty outbox: the loop
//! looks again after each write of reports, and as soon as a webhook whose
//! whole share was taken has a quarter of it free (so one webhook under a
//! steady load is not held to one claim per write of reports).

use crate::send::send;
use crate::{Webhooks, CLAIM_AHEAD};
use mailqueue_core::webhooks::{ClaimedDelivery, DeliveryClaim, DeliveryOutcome, DeliveryReport};
use mailqueue_core::WebhookId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify, Semaphore};
use tokio::task::JoinSet;

/// Most reports written in one transaction.
const RECORD_BATCH: usize = 256;
/// How long reports may gather before they are written: requests end one
/// by one, and a few milliseconds turn many small writes into one.
const RECORD_GATHER: Duration = Duration::from_millis(10);
/// Pause before writing reports again after the store failed.
const RECORD_RETRY: Duration = Duration::from_millis(500);

/// The request slots: the process's, and each webhook's.
struct RequestSlots {
    all: Arc<Semaphore>,
    per_webhook: usize,
    webhooks: HashMap<WebhookId, Arc<Semaphore>>,
}

impl RequestSlots {
    fn of(&mut self, webhook: WebhookId) -> Arc<Semaphore> {
        // Slots no task holds any more are dropped, so the map holds only
        // webhooks with deliveries on their way.
        self.webhooks.retain(|_, s| Arc::strong_count(s) > 1);
        let n = self.per_webhook;
        self.webhooks
            .entry(webhook)
            .or_insert_with(|| Arc::new(Semaphore::new(n)))
            .clone()
    }

    /// Whether any of `webhooks` has a quarter of its `allowance` free.
    fn quarter_free(&self, webhooks: &[WebhookId], allowance: u32) -> bool {
        let quarter = (allowance / 4).max(1);
        webhooks.iter().any(|w| {
            let held = self
                .webhooks
                .get(w)
                .map_or(0, |s| (Arc::strong_count(s) - 1) as u32);
            allowance.saturating_sub(held) >= quarter
        })
    }

    /// The deliveries of each webhook this process holds (claimed, report
    /// not yet handed over): one per send task holding its webhook's slots.
    fn held(&self) -> Vec<(WebhookId, u32)> {
        self.webhooks
            .iter()
            .map(|(w, s)| (*w, (Arc::strong_count(s) - 1) as u32))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

pub async fn run(w: Arc<Webhooks>, client: reqwest::Client, mut stop: watch::Receiver<bool>) {
    let concurrency = w.settings.concurrency.max(1);
    let per_webhook = w.settings.per_webhook.max(1);
    // Deliveries claimed and not yet sent.
    let claims = Arc::new(Semaphore::new(concurrency * CLAIM_AHEAD as usize));
    let mut requests = RequestSlots {
        all: Arc::new(Semaphore::new(concurrency)),
        per_webhook: per_webhook as usize,
        webhooks: HashMap::new(),
    };
    let ended = Arc::new(Notify::new());
    let recorded = Arc::new(Notify::new());
    let (reports, report_rx) = mpsc::channel(concurrency * CLAIM_AHEAD as usize);
    let recorder = tokio::spawn(record(w.clone(), report_rx, recorded.clone()));
    let mut sends = JoinSet::new();
    // Claims come in batches: again once a quarter of the claims are done,
    // or at the poll tick after the outbox had nothing more due.
    let batch = concurrency.max(1);
    let mut look = true;
    let mut drained = false;
    let allowance = per_webhook * CLAIM_AHEAD;
    // Webhooks whose share the last claim took whole: more of theirs may
    // be due, and they are looked at again once a quarter of it is free.
    let mut bounded = Vec::new();
    loop {
        while sends.try_join_next().is_some() {}
        let free = claims.available_permits();
        if look && free > 0 {
            let held = requests.held();
            let claimed = claim(&w, free, allowance, held.clone()).await;
            drained = claimed.len() < free;
            bounded = took_whole_share(claimed.iter().map(|c| c.webhook_id), &held, allowance);
            for c in claimed {
                let Ok(claim) = claims.clone().acquire_owned().await else {
                    break;
                };
                let (all, own) = (requests.all.clone(), requests.of(c.webhook_id));
                let (w, client, reports, ended) =
                    (w.clone(), client.clone(), reports.clone(), ended.clone());
                sends.spawn(async move {
                    let (Ok(_own), Ok(_slot)) = (own.acquire().await, all.acquire().await) else {
                        return;
                    };
                    let report = send_timed(&w, &client, &c).await;
                    let _ = reports.send(report).await;
                    drop(claim);
                    ended.notify_one();
                });
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(w.settings.poll) => look = true,
            _ = ended.notified() => {
                look = (!drained && claims.available_permits() >= batch)
                    || requests.quarter_free(&bounded, allowance)
            }
            _ = recorded.notified() => look = claims.available_permits() >= batch,
            _ = stop.changed() => break,
        }
    }
    // Each request ends within its timeout; their reports are written.
    while sends.join_next().await.is_some() {}
    drop(reports);
    let _ = recorder.await;
}

/// The webhooks of which a claim (the webhook of each delivery it took)
/// took all it allowed: `allowance` less what the process `held` of them
/// before.
fn took_whole_share(
    claimed: impl Iterator<Item = WebhookId>,
    held: &[(WebhookId, u32)],
    allowance: u32,
) -> Vec<WebhookId> {
    let mut taken: HashMap<WebhookId, u32> = HashMap::new();
    for w in claimed {
        *taken.entry(w).or_default() += 1;
    }
    taken
        .into_iter()
        .filter(|(w, n)| {
            let before = held.iter().find(|(h, _)| h == w).map_or(0, |(_, n)| *n);
            *n >= allowance.saturating_sub(before)
        })
        .map(|(w, _)| w)
        .collect()
}

/// Sends one claimed delivery, timing its request.
pub async fn send_timed(
    w: &Webhooks,
    client: &reqwest::Client,
    c: &ClaimedDelivery,
) -> DeliveryReport {
    let report = send(client, c, w.clock.now(), &w.settings).await;
    w.metrics
        .webhook_request_seconds
        .observe(f64::from(report.duration_ms) / 1000.0);
    report
}

/// The terms of a claim of up to `limit` deliveries, at most `per_webhook`
/// of one webhook with what this process already `held`.
pub fn claim_terms(
    w: &Webhooks,
    limit: u32,
    per_webhook: u32,
    held: Vec<(WebhookId, u32)>,
) -> DeliveryClaim {
    let now = w.clock.now();
    let lease =
        chrono::Duration::from_std(w.settings.lease()).unwrap_or(chrono::Duration::minutes(1));
    DeliveryClaim {
        holder: w.settings.holder.clone(),
        now,
        lease_expires_at: now + lease,
        limit,
        per_webhook,
        held,
    }
}

async fn claim(
    w: &Webhooks,
    free: usize,
    per_webhook: u32,
    held: Vec<(WebhookId, u32)>,
) -> Vec<ClaimedDelivery> {
    let terms = claim_terms(w, free as u32, per_webhook, held);
    match w.store.claim_webhook_deliveries(&terms).await {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim webhook deliveries");
            Vec::new()
        }
    }
}

async fn record(w: Arc<Webhooks>, mut rx: mpsc::Receiver<DeliveryReport>, recorded: Arc<Notify>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let gathered = tokio::time::sleep(RECORD_GATHER);
        tokio::pin!(gathered);
        while batch.len() < RECORD_BATCH {
            let room = RECORD_BATCH - batch.len();
            tokio::select! {
                n = rx.recv_many(&mut batch, room) => if n == 0 { break },
                _ = &mut gathered => break,
            }
        }
        let mut tries = 0;
        loop {
            match w
                .store
                .record_webhook_deliveries(&w.settings.holder, &batch, &w.settings.disable)
                .await
            {
                Ok(()) => break,
                Err(e) if tries < 20 && !e.is_rejection() => {
                    tries += 1;
                    tracing::warn!(error = %e, "cannot record webhook deliveries yet; retrying");
                    tokio::time::sleep(RECORD_RETRY).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, count = batch.len(),
                        "webhook deliveries could not be recorded; they are sent again once their lease expires");
                    break;
                }
            }
        }
        recorded.notify_one();
        account(&w, &batch);
        batch.clear();
    }
}

/// Logs and counts reports once they are written.
pub fn account(w: &Webhooks, reports: &[DeliveryReport]) {
    for r in reports {
        let outcome = match r.outcome {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::RetryAt(_) => "retry",
            DeliveryOutcome::Failed => "failed",
        };
        if let Some(e) = &r.error {
            tracing::info!(webhook = %r.webhook_id, event = %r.event_id, attempt = r.attempt, error = %e, outcome, "webhook delivery attempt failed");
        }
        w.metrics
            .webhook_deliveries
            .get_or_create(&[("outcome", outcome)])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> [WebhookId; 3] {
        let at = chrono::DateTime::UNIX_EPOCH;
        [(); 3].map(|_| WebhookId::generate(at))
    }

    #[test]
    fn a_webhook_whose_whole_share_was_taken_is_bounded() {
        // Allowance 16: webhook 1 held 10 and got the 6 left; webhook 2
        // held nothing and got 5 of 16; webhook 3 held 16 and got none.
        let [one, two, three] = ids();
        let claimed = [one; 6].into_iter().chain([two; 5]);
        let held = [(one, 10), (three, 16)];
        assert_eq!(took_whole_share(claimed, &held, 16), [one]);
    }

    #[test]
    fn a_bounded_webhook_is_looked_at_again_once_a_quarter_is_free() {
        let mut slots = RequestSlots {
            all: Arc::new(Semaphore::new(32)),
            per_webhook: 4,
            webhooks: HashMap::new(),
        };
        let [one, two, _] = ids();
        let mut tasks: Vec<_> = (0..13).map(|_| slots.of(one)).collect();
        assert!(!slots.quarter_free(&[one], 16), "13 of 16 held");
        tasks.truncate(12);
        assert!(slots.quarter_free(&[one], 16), "12 of 16 held");
        assert!(slots.quarter_free(&[two], 16), "none held");
    }
}
