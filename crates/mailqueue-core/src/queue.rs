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

#[async_trait]
pub trait DispatchQueue: Send + Sync + 'static {
    /// Adds or moves entries (an id is in the queue at most once).
    async fn enqueue(&self, emails: &[DueEmail]) -> Result<(), QueueError>;
    /// Removes and returns up to `max` ids due at `now`, higher priority first,
    /// then earliest due.
    async fn take_due(&self, now: DateTime<Utc>, max: usize) -> Result<Vec<EmailId>, QueueError>;
    /// The earliest due time in the queue.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, QueueError>;
    async fn queued_count(&self) -> Result<u64, QueueError>;
    /// Returns when something is enqueued or after `timeout`, whichever is first.
    async fn wait_for_work(&self, timeout: Duration);
    async fn ping(&self) -> Result<(), QueueError>;
}

/// Why rebuilding a queue stopped.
#[derive(Debug, thiserror::Error)]
pub enum RequeueError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Puts every pending email of the store into the queue (entries already
/// there are moved, not doubled). Returns how many were enqueued.
pub async fn requeue_pending(
    store: &dyn crate::store::EmailStore,
    queue: &dyn DispatchQueue,
) -> Result<u64, RequeueError> {
    const PAGE: u32 = 1_000;
    let mut after = None;
    let mut total = 0;
    loop {
        let page = store.pending_emails(after, PAGE).await?;
        queue.enqueue(&page).await?;
        total += page.len() as u64;
        match page.last() {
            Some(last) if page.len() as u32 == PAGE => after = Some(last.id),
            _ => return Ok(total),
        }
    }
}
