//! Takes due ids from the queue, claims them, and starts their sends.
//!
//! Two loops joined by a bounded channel: the claimer keeps up to
//! `CLAIM_AHEAD × concurrency` claimed emails ready, claiming as many as
//! there is room for in one statement; the starter hands each ready email to a send as
//! soon as a slot is free. Claims (a round trip and a commit) therefore
//! never hold sends up. Every claim is noted in the [`LeaseBook`]; a ready
//! email is sent only while its lease has room for a whole send, and
//! released unattempted otherwise. Claimed emails that never started are
//! released unattempted at shutdown, or returned by the rescuer if the
//! process dies.
//!
//! An email the relay took whose outcome is not yet committed is sent again
//! if the process dies (delivery is at least once). Each send therefore
//! holds, besides its slot, a record permit that is freed only when its
//! outcome is written: however slowly the store takes outcomes, at most
//! `UNRECORDED_PER_SLOT × concurrency` emails are sent and unrecorded.

use crate::lease_book::LeaseBook;
use crate::round::{attempt, claim_due, Claimed};
use crate::send::Completed;
use crate::Delivery;
use mailqueue_core::store::ClaimedEmail;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// Waits between attempts to reach an unavailable dispatch queue.
const QUEUE_BACKOFF_MIN: Duration = Duration::from_millis(250);
const QUEUE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Most ids claimed by one statement.
const CLAIM_BATCH: usize = 512;

/// Claimed emails kept ready, as a multiple of the send slots. Claims are a
/// round trip and a commit; a deep enough buffer lets one claim cover many
/// sends (a buffer of one times the slots held PostgreSQL delivery to about
/// 7k/s, four times reaches about 11k/s on the benchmark machine).
const CLAIM_AHEAD: usize = 4;

/// Sends started and not yet recorded, as a multiple of the send slots:
/// the most emails sent twice if the process dies (see the module header).
/// Twice the slots lets a batch of outcomes commit while the next sends
/// run; once the slots (each send waiting for its commit) cost a fifth to
/// a quarter of the delivery rate in `bench/deliver.sh`.
pub const UNRECORDED_PER_SLOT: usize = 2;

/// Runs until `stop` turns true; returns the sends still in flight.
pub async fn run(
    d: Arc<Delivery>,
    book: Arc<LeaseBook>,
    mut stop: watch::Receiver<bool>,
    outcomes: mpsc::Sender<Completed>,
    slots: Arc<Semaphore>,
) -> JoinSet<()> {
    let (ready_tx, mut ready) = mpsc::channel(d.settings.concurrency.max(1) * CLAIM_AHEAD);
    let claimer = tokio::spawn(claim_loop(d.clone(), book.clone(), stop.clone(), ready_tx));
    let unrecorded = Arc::new(Semaphore::new(
        d.settings.concurrency.max(1) * UNRECORDED_PER_SLOT,
    ));
    let mut sends = JoinSet::new();
    loop {
        while sends.try_join_next().is_some() {}
        let (slot, record) = tokio::select! {
            permits = slot_and_record(&slots, &unrecorded) => match permits {
                Some(p) => p,
                None => break,
            },
            _ = stop.changed() => break,
        };
        let email = tokio::select! {
            email = ready.recv() => match email {
                Some(e) => e,
                None => break,
            },
            _ = stop.changed() => break,
        };
        let d = d.clone();
        let book = book.clone();
        let outcomes = outcomes.clone();
        sends.spawn(async move {
            if let Some(mut completed) = attempt(&d, &book, email).await {
                drop(slot);
                // The record permit goes with the outcome and comes back
                // once the outcome is written.
                completed.slot = Some(record);
                let _ = outcomes.send(completed).await;
            }
        });
    }
    claimer.abort();
    let _ = claimer.await;
    sends
}

/// A send slot, then a record permit; `None` once they are closed.
async fn slot_and_record(
    slots: &Arc<Semaphore>,
    unrecorded: &Arc<Semaphore>,
) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
    let slot = slots.clone().acquire_owned().await.ok()?;
    let record = unrecorded.clone().acquire_owned().await.ok()?;
    Some((slot, record))
}

async fn claim_loop(
    d: Arc<Delivery>,
    book: Arc<LeaseBook>,
    mut stop: watch::Receiver<bool>,
    ready: mpsc::Sender<ClaimedEmail>,
) {
    let mut queue_backoff = QUEUE_BACKOFF_MIN;
    loop {
        if *stop.borrow() {
            return;
        }
        let room = ready.capacity();
        if room == 0 {
            tokio::select! {
                permit = ready.reserve() => match permit {
                    Ok(p) => drop(p),
                    Err(_) => return,
                },
                _ = stop.changed() => return,
            }
            continue;
        }
        let now = d.clock.now();
        let claimed = match claim_due(&d, &book, now, room.min(CLAIM_BATCH)).await {
            Claimed::Ready(claimed) => claimed,
            Claimed::Idle => {
                queue_backoff = QUEUE_BACKOFF_MIN;
                let wait = match d.queue.next_due_at().await {
                    Ok(Some(at)) => (at - now)
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(d.settings.idle_poll),
                    _ => d.settings.idle_poll,
                };
                if !wait.is_zero() {
                    tokio::select! {
                        _ = d.queue.wait_for_work(wait) => {}
                        _ = stop.changed() => return,
                    }
                }
                continue;
            }
            Claimed::QueueUnavailable(e) => {
                tracing::warn!(error = %e, "cannot read the dispatch queue; retrying in {queue_backoff:?}");
                pause(&mut stop, queue_backoff).await;
                queue_backoff = (queue_backoff * 2).min(QUEUE_BACKOFF_MAX);
                continue;
            }
            Claimed::StoreFailed(_) => {
                pause(&mut stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        queue_backoff = QUEUE_BACKOFF_MIN;
        for email in claimed {
            if ready.send(email).await.is_err() {
                return;
            }
        }
    }
}

/// Sleeps for `wait` unless asked to stop first.
async fn pause(stop: &mut watch::Receiver<bool>, wait: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
}
