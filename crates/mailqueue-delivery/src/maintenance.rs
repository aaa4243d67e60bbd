//! Periodic upkeep: rescue expired leases and rebuild the queue from the store.

use crate::Delivery;
use mailqueue_core::queue::requeue_pending;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::{interval, MissedTickBehavior};

pub async fn run(d: Arc<Delivery>, mut stop: watch::Receiver<bool>) {
    let mut rescue = interval(d.settings.rescue_interval);
    let mut reconcile = interval(d.settings.reconcile_interval);
    rescue.set_missed_tick_behavior(MissedTickBehavior::Delay);
    reconcile.set_missed_tick_behavior(MissedTickBehavior::Delay);
    reconcile.tick().await; // the queue was just rebuilt at start
    loop {
        tokio::select! {
            _ = rescue.tick() => rescue_expired(&d).await,
            _ = reconcile.tick() => match requeue_pending(d.store.as_ref(), d.queue.as_ref()).await {
                Ok(n) => tracing::debug!(pending = n, "queue reconciled with the store"),
                Err(e) => tracing::warn!(error = %e, "reconciling the queue failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

async fn rescue_expired(d: &Delivery) {
    let now = d.clock.now();
    match d
        .store
        .rescue_expired_leases(now, d.policy.give_up_before(now))
        .await
    {
        Ok(rescued) if !rescued.is_empty() => {
            tracing::warn!(
                count = rescued.len(),
                "returned emails whose worker stopped to the queue"
            );
            d.metrics
                .attempts
                .get_or_create(&[("outcome", "lease_expired")])
                .inc_by(rescued.len() as u64);
            if let Err(e) = d.queue.enqueue(&rescued).await {
                tracing::warn!(error = %e, "re-enqueueing rescued emails failed; the reconciler will restore them");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "rescuing expired leases failed"),
    }
}
