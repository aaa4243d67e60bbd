//! Takes due ids from the queue, claims them, and starts their sends.
//!
//! Claims run ahead of the sends: the dispatcher keeps up to `concurrency`
//! claimed emails ready, refilling in one statement whenever fewer are
//! left, so a busy queue costs one claim per batch rather than per email.
//! Claimed emails that never started are returned by `release_leases` at
//! shutdown (or by the rescuer if the process dies).

use crate::send::{send_one, Completed};
use crate::Delivery;
use mailqueue_core::email::Priority;
use mailqueue_core::store::{Claim, ClaimedEmail, DueEmail};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Most ids claimed by one statement.
const CLAIM_BATCH: usize = 512;

/// Runs until `stop` turns true; returns the sends still in flight.
pub async fn run(
    d: Arc<Delivery>,
    mut stop: watch::Receiver<bool>,
    outcomes: mpsc::Sender<Completed>,
    slots: Arc<Semaphore>,
) -> JoinSet<()> {
    let mut sends = JoinSet::new();
    let mut ready: VecDeque<ClaimedEmail> = VecDeque::new();
    let lease =
        chrono::Duration::from_std(d.settings.lease).unwrap_or(chrono::Duration::minutes(5));
    let concurrency = d.settings.concurrency.max(1);
    loop {
        while sends.try_join_next().is_some() {}
        if *stop.borrow() {
            break;
        }
        if ready.len() < concurrency {
            let want = (2 * concurrency - ready.len()).min(CLAIM_BATCH);
            let now = d.clock.now();
            match d.queue.take_due(now, want).await {
                Ok(ids) if !ids.is_empty() => {
                    let claim = Claim {
                        holder: d.settings.holder.clone(),
                        now,
                        lease_expires_at: now + lease,
                    };
                    match d.store.claim_emails(&ids, &claim).await {
                        Ok(claimed) => ready.extend(claimed),
                        Err(e) => {
                            tracing::warn!(error = %e, count = ids.len(), "claiming failed; the emails go back to the queue");
                            requeue_unclaimed(&d, &ids, now).await;
                            pause(&mut stop, Duration::from_secs(1)).await;
                            continue;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the dispatch queue; retrying in 1 s");
                    pause(&mut stop, Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        if ready.is_empty() {
            let now = d.clock.now();
            let wait = match d.queue.next_due_at().await {
                Ok(Some(at)) => (at - now)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(d.settings.idle_poll),
                _ => d.settings.idle_poll,
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = d.queue.wait_for_work(wait) => {}
                _ = stop.changed() => break,
            }
            continue;
        }
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        start(&d, &mut sends, &outcomes, &mut ready, first);
        while let (false, Ok(permit)) = (ready.is_empty(), slots.clone().try_acquire_owned()) {
            start(&d, &mut sends, &outcomes, &mut ready, permit);
        }
    }
    sends
}

fn start(
    d: &Arc<Delivery>,
    sends: &mut JoinSet<()>,
    outcomes: &mpsc::Sender<Completed>,
    ready: &mut VecDeque<ClaimedEmail>,
    slot: OwnedSemaphorePermit,
) {
    let Some(email) = ready.pop_front() else {
        return;
    };
    let d = d.clone();
    let outcomes = outcomes.clone();
    sends.spawn(async move {
        let completed = send_one(&d, email).await;
        let _ = outcomes.send(completed).await;
        drop(slot);
    });
}

/// Puts ids whose claim failed back, due in a second.
async fn requeue_unclaimed(
    d: &Delivery,
    ids: &[mailqueue_core::EmailId],
    now: chrono::DateTime<chrono::Utc>,
) {
    let back: Vec<DueEmail> = ids
        .iter()
        .map(|id| DueEmail {
            id: *id,
            due_at: now + chrono::Duration::seconds(1),
            priority: Priority::Normal,
        })
        .collect();
    if let Err(e) = d.queue.enqueue(&back).await {
        tracing::warn!(error = %e, "re-enqueueing failed; the reconciler will restore the emails");
    }
}

/// Sleeps for `wait` unless asked to stop first.
async fn pause(stop: &mut watch::Receiver<bool>, wait: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
}
