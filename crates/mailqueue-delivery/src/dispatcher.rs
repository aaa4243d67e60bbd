//! Takes due ids from the queue, claims them, and starts their sends.

use crate::send::{send_one, Completed};
use crate::Delivery;
use mailqueue_core::email::Priority;
use mailqueue_core::store::{Claim, DueEmail};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

/// Most ids claimed by one statement.
const CLAIM_BATCH: usize = 256;

/// Runs until `stop` turns true; returns the sends still in flight.
pub async fn run(
    d: Arc<Delivery>,
    mut stop: watch::Receiver<bool>,
    outcomes: mpsc::Sender<Completed>,
    slots: Arc<Semaphore>,
) -> JoinSet<()> {
    let mut sends = JoinSet::new();
    let lease =
        chrono::Duration::from_std(d.settings.lease).unwrap_or(chrono::Duration::minutes(5));
    loop {
        while sends.try_join_next().is_some() {}
        if *stop.borrow() {
            break;
        }
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let want = (1 + slots.available_permits()).min(CLAIM_BATCH);
        let now = d.clock.now();
        let ids = match d.queue.take_due(now, want).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the dispatch queue; retrying in 1 s");
                drop(first);
                pause(&mut stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        if ids.is_empty() {
            drop(first);
            let wait = match d.queue.next_due_at().await {
                Ok(Some(at)) => (at - now)
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(d.settings.idle_poll),
                _ => d.settings.idle_poll,
            };
            tokio::select! {
                _ = d.queue.wait_for_work(wait) => {}
                _ = stop.changed() => break,
            }
            continue;
        }
        let claim = Claim {
            holder: d.settings.holder.clone(),
            now,
            lease_expires_at: now + lease,
        };
        let claimed = match d.store.claim_emails(&ids, &claim).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, count = ids.len(), "claiming failed; the emails go back to the queue");
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
                drop(first);
                pause(&mut stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut permit = Some(first);
        for email in claimed {
            let slot = match permit.take() {
                Some(p) => p,
                None => match slots.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let d = d.clone();
            let outcomes = outcomes.clone();
            sends.spawn(async move {
                let completed = send_one(&d, email).await;
                let _ = outcomes.send(completed).await;
                drop(slot);
            });
        }
    }
    sends
}

/// Sleeps for `wait` unless asked to stop first.
async fn pause(stop: &mut watch::Receiver<bool>, wait: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
}
