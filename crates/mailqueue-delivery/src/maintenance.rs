//! Fleet-wide upkeep, run by one process at a time: rescue expired leases,
//! rebuild the dispatch queue from the store, purge old idempotency keys,
//! keep the queue tables' statistics fresh, run the leader tasks the
//! front ends hand it (domain checks), and tell the retention task
//! whether this process leads.
//!
//! Every delivering process competes for the `maintenance` lease in the
//! store; the holder renews it every third of its length and runs the
//! tasks, the others only keep trying, so when the holder dies another
//! takes over within one lease period. The queue is rebuilt on a timer,
//! at once when it reports that it lost its entries (a Redis restarted
//! without persistence, or flushed), and when it answers again after an
//! outage (dispatches that failed meanwhile wait only in the store).

use crate::{retention, Delivery};
use mailqueue_core::queue::requeue_pending;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

const LEASE_NAME: &str = "maintenance";
const PURGE_EVERY: Duration = Duration::from_secs(600);
/// How often the statistics of the queue tables are looked at.
const TEND_EVERY: Duration = Duration::from_secs(60);
/// How often the holder asks the queue whether it lost its entries.
const QUEUE_CHECK_EVERY: Duration = Duration::from_secs(2);

/// When each task is next due, for the process that holds the lease.
struct Schedule {
    rescue: Instant,
    reconcile: Instant,
    purge: Instant,
    queue_check: Instant,
    tend: Instant,
    /// When each of the delivery's leader tasks is next due.
    leader_tasks: Vec<Instant>,
}

/// Holds or competes for the lease until `stop`; `leading` says whether
/// this process holds it.
pub async fn run(
    d: Arc<Delivery>,
    leading_tx: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let lease = d.settings.maintenance_lease;
    let tick = (lease / 3)
        .min(d.settings.rescue_interval)
        .max(Duration::from_millis(10));
    let mut leading = false;
    let mut queue_down = false;
    let mut due = Schedule {
        rescue: Instant::now(),
        reconcile: Instant::now() + d.settings.reconcile_interval,
        purge: Instant::now(),
        queue_check: Instant::now(),
        tend: Instant::now() + TEND_EVERY,
        leader_tasks: vec![Instant::now(); d.leader_tasks.len()],
    };
    loop {
        leading = hold_lease(&d, leading).await;
        leading_tx.send_if_modified(|was| std::mem::replace(was, leading) != leading);
        if leading {
            run_due_tasks(&d, &mut due, &mut queue_down).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => break,
        }
    }
    leading_tx.send_replace(false);
    if leading {
        if let Err(e) = d
            .store
            .release_maintenance_lease(LEASE_NAME, &d.settings.holder)
            .await
        {
            tracing::warn!(error = %e, "could not give up the maintenance lease; it will expire");
        }
    }
}

/// Takes or renews the lease; returns whether this process holds it.
async fn hold_lease(d: &Delivery, was_leading: bool) -> bool {
    let now = d.clock.now();
    let until = now
        + chrono::Duration::from_std(d.settings.maintenance_lease)
            .unwrap_or(chrono::Duration::seconds(15));
    let leading = match d
        .store
        .hold_maintenance_lease(LEASE_NAME, &d.settings.holder, now, until)
        .await
    {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach the store to hold the maintenance lease");
            false
        }
    };
    if leading != was_leading {
        if leading {
            tracing::info!(holder = %d.settings.holder, "this process runs the fleet's maintenance");
        } else {
            tracing::info!("another process runs the fleet's maintenance now");
        }
    }
    leading
}

async fn run_due_tasks(d: &Delivery, due: &mut Schedule, queue_down: &mut bool) {
    let now = Instant::now();
    if now >= due.queue_check {
        due.queue_check = now + QUEUE_CHECK_EVERY;
        match d.queue.take_reset().await {
            Ok(reset) => {
                if reset || *queue_down {
                    tracing::warn!(
                        lost_entries = reset,
                        "the dispatch queue is back or lost its entries; rebuilding it from the store"
                    );
                    // Due now, and until a rebuild succeeds.
                    due.reconcile = now;
                }
                *queue_down = false;
            }
            Err(e) => {
                if !*queue_down {
                    tracing::warn!(error = %e, "the dispatch queue is unavailable; emails wait in the store");
                }
                *queue_down = true;
            }
        }
    }
    if now >= due.rescue {
        due.rescue = now + d.settings.rescue_interval;
        rescue_expired(d).await;
    }
    if now >= due.reconcile && !*queue_down {
        match requeue_pending(d.store.as_ref(), d.queue.as_ref(), d.clock.now()).await {
            Ok(n) => {
                due.reconcile = now + d.settings.reconcile_interval;
                tracing::info!(
                    pending = n.total(),
                    due_now = n.due_now,
                    "dispatch queue rebuilt from the store"
                )
            }
            // Tried again at the next tick: the queue may hold nothing now.
            Err(e) => tracing::warn!(error = %e, "rebuilding the dispatch queue failed"),
        }
    }
    if now >= due.purge {
        due.purge = now + PURGE_EVERY;
        purge_idempotency_keys(d).await;
    }
    if now >= due.tend {
        due.tend = now + TEND_EVERY;
        retention::tend_tables(d).await;
    }
    for (task, at) in d.leader_tasks.iter().zip(due.leader_tasks.iter_mut()) {
        if now >= *at {
            *at = now + task.interval();
            task.run_once().await;
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
        Ok(rescued) if rescued.moved() > 0 => {
            let moved = rescued.moved();
            tracing::warn!(
                count = moved,
                requeued = rescued.requeued.len(),
                "moved emails whose worker stopped out of sending"
            );
            d.metrics.count_events(&rescued.events);
            d.metrics
                .attempts
                .get_or_create(&[("outcome", "lease_expired")])
                .inc_by(moved);
            if let Err(e) = d.queue.enqueue(&rescued.requeued).await {
                tracing::warn!(error = %e, "re-enqueueing rescued emails failed; the reconciler will restore them");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "rescuing expired leases failed"),
    }
}

/// Deletes idempotency keys past their time.
async fn purge_idempotency_keys(d: &Delivery) {
    let ttl = chrono::Duration::from_std(d.settings.idempotency_ttl)
        .unwrap_or(chrono::Duration::hours(24));
    match d.store.purge_idempotency_keys(d.clock.now() - ttl).await {
        Ok(n) if n > 0 => tracing::debug!(purged = n, "expired idempotency keys deleted"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
    }
}
