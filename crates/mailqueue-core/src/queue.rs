//! The dispatch layer: which emails are due, in what order. It holds no
//! truth of its own: every entry can be rebuilt from the store, and a worker
//! claims each id in the store before sending, so a stale, duplicated or
//! lost entry can delay an email but never send it twice or lose it.

use crate::ids::EmailId;
use crate::store::DueEmail;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("the dispatch queue is unavailable: {0}")]
pub struct QueueError(pub String);

/// A due time in whole milliseconds, rounded up, as queues keep it: rounded
/// down, a queue could hand an email out a fraction of a millisecond before
/// the store (which may keep microseconds) considers it due; the claim would
/// then skip it and the entry would be lost until the next rebuild.
pub fn due_millis(at: DateTime<Utc>) -> i64 {
    let ms = at.timestamp_millis();
    if at.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        ms
    } else {
        ms + 1
    }
}

#[async_trait]
pub trait DispatchQueue: Send + Sync + 'static {
    /// Adds or moves entries (an id is in the queue at most once).
    async fn enqueue(&self, emails: &[DueEmail]) -> Result<(), QueueError>;
    /// Takes up to `max` entries due at `now`, higher priority first, then
    /// earliest due. A shared queue keeps them in flight until [`ack`]
    /// (or returns them after its visibility timeout, if the taker died).
    ///
    /// [`ack`]: DispatchQueue::ack
    async fn take_due(&self, now: DateTime<Utc>, max: usize) -> Result<Vec<DueEmail>, QueueError>;
    /// Forgets taken entries once the store has decided about them (claimed,
    /// or not claimable any more).
    async fn ack(&self, ids: &[EmailId]) -> Result<(), QueueError>;
    /// The earliest due time in the queue.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, QueueError>;
    async fn queued_count(&self) -> Result<u64, QueueError>;
    /// Whether the queue lost its entries since it was last asked (a new
    /// in-process queue, a Redis restarted without persistence or
    /// flushed): then it must be rebuilt from the store. The first call on
    /// a queue nobody rebuilt yet answers true.
    async fn take_reset(&self) -> Result<bool, QueueError>;
    /// Returns when something is enqueued or after `timeout`, whichever is first.
    async fn wait_for_work(&self, timeout: Duration);
    async fn ping(&self) -> Result<(), QueueError>;
}

/// Why rebuilding a queue stopped.
#[derive(Debug, thiserror::Error)]
pub enum RequeueError {
    #[error(transparent)]
    Store(#[from] crate::error::StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What a rebuild of the queue put back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequeueCounts {
    /// Due at once (queued, or scheduled for a time already past).
    pub due_now: u64,
    /// Due later: scheduled, or waiting for a retry.
    pub due_later: u64,
}

impl RequeueCounts {
    pub fn total(&self) -> u64 {
        self.due_now + self.due_later
    }
}

/// Puts every pending email of the store into the queue (entries already
/// there are moved, not doubled), a page at a time.
pub async fn requeue_pending(
    store: &dyn crate::store::LeaseRecovery,
    queue: &dyn DispatchQueue,
    now: DateTime<Utc>,
) -> Result<RequeueCounts, RequeueError> {
    const PAGE: u32 = 5_000;
    let mut after = None;
    let mut counts = RequeueCounts::default();
    loop {
        let page = store.pending_emails(after, PAGE).await?;
        queue.enqueue(&page).await?;
        let due_now = page.iter().filter(|d| d.due_at <= now).count() as u64;
        counts.due_now += due_now;
        counts.due_later += page.len() as u64 - due_now;
        match page.last() {
            Some(last) if page.len() as u32 == PAGE => after = Some(last.id),
            _ => return Ok(counts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::due_millis;
    use chrono::{TimeZone, Utc};

    #[test]
    fn due_times_round_up_to_the_millisecond() {
        let exact = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
        assert_eq!(due_millis(exact), 1_700_000_000_123);
        let later = exact + chrono::Duration::microseconds(456);
        assert_eq!(due_millis(later), 1_700_000_000_124);
    }
}
