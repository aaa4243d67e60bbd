//! The in-process dispatch queue: a set ordered by (priority, due time),
//! with an index by id so each email appears at most once.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use mailqueue_core::email::Priority;
use mailqueue_core::queue::{due_millis, DispatchQueue, QueueError};
use mailqueue_core::store::DueEmail;
use mailqueue_core::EmailId;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

type Key = (i16, i64, EmailId);

#[derive(Default)]
struct Entries {
    ordered: BTreeSet<Key>,
    by_id: HashMap<EmailId, Key>,
}

#[derive(Default)]
pub struct InProcessQueue {
    entries: Mutex<Entries>,
    work: Notify,
    /// Set once the store has been asked to rebuild this (new) queue.
    rebuilt: std::sync::atomic::AtomicBool,
}

impl InProcessQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl DispatchQueue for InProcessQueue {
    async fn enqueue(&self, emails: &[DueEmail]) -> Result<(), QueueError> {
        if emails.is_empty() {
            return Ok(());
        }
        {
            let mut entries = self.lock();
            for e in emails {
                let key = (e.priority.rank(), due_millis(e.due_at), e.id);
                if let Some(old) = entries.by_id.insert(e.id, key) {
                    entries.ordered.remove(&old);
                }
                entries.ordered.insert(key);
            }
        }
        self.work.notify_one();
        Ok(())
    }

    async fn take_due(&self, now: DateTime<Utc>, max: usize) -> Result<Vec<DueEmail>, QueueError> {
        let now_ms = now.timestamp_millis();
        let mut entries = self.lock();
        let mut taken = Vec::new();
        for priority in Priority::ALL {
            let rank = priority.rank();
            let due: Vec<Key> = entries
                .ordered
                .range((rank, i64::MIN, EmailId(uuid_min()))..)
                .take_while(|(r, at, _)| *r == rank && *at <= now_ms)
                .take(max - taken.len())
                .copied()
                .collect();
            for key in due {
                entries.ordered.remove(&key);
                entries.by_id.remove(&key.2);
                taken.push(DueEmail {
                    id: key.2,
                    due_at: Utc.timestamp_millis_opt(key.1).single().unwrap_or(now),
                    priority,
                });
            }
            if taken.len() == max {
                break;
            }
        }
        Ok(taken)
    }

    /// Taken entries leave this queue at once; nothing to forget.
    async fn ack(&self, _ids: &[EmailId]) -> Result<(), QueueError> {
        Ok(())
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, QueueError> {
        let entries = self.lock();
        let earliest = Priority::ALL
            .iter()
            .filter_map(|p| {
                entries
                    .ordered
                    .range((p.rank(), i64::MIN, EmailId(uuid_min()))..)
                    .next()
                    .filter(|(r, _, _)| *r == p.rank())
                    .map(|(_, at, _)| *at)
            })
            .min();
        Ok(earliest.and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
    }

    async fn queued_count(&self) -> Result<u64, QueueError> {
        Ok(self.lock().by_id.len() as u64)
    }

    /// A new queue is empty: true once, then never (it lives as long as
    /// the process).
    async fn take_reset(&self) -> Result<bool, QueueError> {
        Ok(!self.rebuilt.swap(true, std::sync::atomic::Ordering::AcqRel))
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.work.notified()).await;
    }

    async fn ping(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

fn uuid_min() -> uuid::Uuid {
    uuid::Uuid::nil()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration as Span;

    fn due(id: u128, at: DateTime<Utc>, priority: Priority) -> DueEmail {
        DueEmail {
            id: EmailId(uuid::Uuid::from_u128(id)),
            due_at: at,
            priority,
        }
    }

    fn now_ms() -> chrono::DateTime<Utc> {
        use chrono::DurationRound;
        Utc::now().duration_trunc(Span::milliseconds(1)).unwrap()
    }

    #[tokio::test]
    async fn takes_due_entries_by_priority_then_time() {
        let q = InProcessQueue::new();
        let now = now_ms();
        q.enqueue(&[
            due(1, now - Span::seconds(5), Priority::Low),
            due(2, now - Span::seconds(1), Priority::Normal),
            due(3, now - Span::seconds(9), Priority::Normal),
            due(4, now, Priority::High),
            due(5, now + Span::seconds(60), Priority::High),
        ])
        .await
        .unwrap();
        let ids: Vec<u128> = q
            .take_due(now, 10)
            .await
            .unwrap()
            .iter()
            .map(|d| d.id.0.as_u128())
            .collect();
        assert_eq!(ids, vec![4, 3, 2, 1]);
        assert_eq!(q.queued_count().await.unwrap(), 1);
        assert_eq!(
            q.next_due_at().await.unwrap().map(|t| t.timestamp_millis()),
            Some((now + Span::seconds(60)).timestamp_millis())
        );
    }

    #[tokio::test]
    async fn an_id_is_queued_once_and_moves_when_enqueued_again() {
        let q = InProcessQueue::new();
        let now = now_ms();
        q.enqueue(&[due(1, now + Span::hours(1), Priority::Normal)])
            .await
            .unwrap();
        q.enqueue(&[due(1, now, Priority::Normal)]).await.unwrap();
        assert_eq!(q.queued_count().await.unwrap(), 1);
        assert_eq!(q.take_due(now, 10).await.unwrap().len(), 1);
        assert!(q
            .take_due(now + Span::hours(2), 10)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn respects_the_maximum() {
        let q = InProcessQueue::new();
        let now = now_ms();
        let many: Vec<DueEmail> = (0..10).map(|i| due(i, now, Priority::Normal)).collect();
        q.enqueue(&many).await.unwrap();
        assert_eq!(q.take_due(now, 3).await.unwrap().len(), 3);
        assert_eq!(q.queued_count().await.unwrap(), 7);
    }

    #[tokio::test]
    async fn enqueue_wakes_a_waiting_worker() {
        let q = std::sync::Arc::new(InProcessQueue::new());
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                q.wait_for_work(Duration::from_secs(30)).await;
                started.elapsed()
            })
        };
        tokio::task::yield_now().await;
        q.enqueue(&[due(1, Utc::now(), Priority::Normal)])
            .await
            .unwrap();
        assert!(waiter.await.unwrap() < Duration::from_secs(5));
    }
}
