//! Retention and table upkeep, run by the maintenance leader.
//!
//! A pass deletes finished emails older than the retention (and drops the
//! contents of those older than the content retention) in small batches,
//! for a bounded time per maintenance tick: a backlog of expired emails is
//! worked off over several ticks, so the leader still rescues and
//! reconciles on time, and each batch is one short statement, so delivery
//! never waits long behind it.

use crate::Delivery;
use mailqueue_core::store::StoreError;
use std::time::Duration;
use tokio::time::Instant;

/// Emails per statement: small enough for a short transaction.
const BATCH: u32 = 500;
/// Work per maintenance tick before handing back to the other tasks.
const BUDGET: Duration = Duration::from_secs(1);
/// A breath between batches, so claims and outcomes interleave.
const PAUSE: Duration = Duration::from_millis(5);

/// What one slice of a pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PassSlice {
    pub emails: u64,
    pub contents: u64,
    /// Whether nothing expired is left (false: continue at the next tick).
    pub finished: bool,
}

/// Runs retention for at most [`BUDGET`]; contents first (their batches
/// shrink the rows the deletions later cascade through).
pub async fn run_slice(d: &Delivery) -> Result<PassSlice, StoreError> {
    let started = Instant::now();
    let cut = d.settings.retention.cutoffs(d.clock.now());
    let mut slice = PassSlice::default();
    let store = d.store.as_ref();
    if let Some(before) = cut.contents {
        loop {
            let n = store
                .purge_email_contents(before, d.clock.now(), BATCH)
                .await?;
            slice.contents += n;
            count(d, "contents", n);
            if n < u64::from(BATCH) {
                break;
            }
            if !breathe(started).await {
                return Ok(slice);
            }
        }
    }
    if let Some(before) = cut.emails {
        loop {
            let n = store.purge_finished_emails(before, BATCH).await?;
            slice.emails += n;
            count(d, "emails", n);
            if n < u64::from(BATCH) {
                break;
            }
            if !breathe(started).await {
                return Ok(slice);
            }
        }
        // Idempotency keys older than the emails they could answer for.
        store.purge_idempotency_keys(before).await?;
    }
    observe_oldest(d).await;
    slice.finished = true;
    Ok(slice)
}

fn count(d: &Delivery, what: &'static str, n: u64) {
    if n > 0 {
        d.metrics
            .retention_purged
            .get_or_create(&[("what", what)])
            .inc_by(n);
    }
}

/// Pauses between batches; false once the slice's time is used up.
async fn breathe(started: Instant) -> bool {
    if started.elapsed() >= BUDGET {
        return false;
    }
    tokio::time::sleep(PAUSE).await;
    true
}

/// Sets the gauge of the oldest email kept.
pub async fn observe_oldest(d: &Delivery) {
    match d.store.oldest_email_created_at().await {
        Ok(oldest) => {
            d.metrics
                .oldest_email_created
                .set(oldest.map_or(0, |at| at.timestamp()));
        }
        Err(e) => tracing::warn!(error = %e, "finding the oldest email failed"),
    }
}

/// Refreshes stale statistics of the queue tables.
pub async fn tend_tables(d: &Delivery) {
    match d.store.tend_tables().await {
        Ok(tended) if !tended.is_empty() => {
            tracing::info!(tables = ?tended, "refreshed the statistics of queue tables")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "refreshing the statistics of queue tables failed"),
    }
}
