//! Changing an email that exists: reschedule, cancel, retry; and putting
//! every pending email back into the dispatch queue.

use crate::{EmailService, ServiceError};
use chrono::{DateTime, Utc};
use mailqueue_core::events::EventType;
use mailqueue_core::queue::{requeue_pending, RequeueCounts, RequeueError};
use mailqueue_core::store::ChangeOutcome;
use mailqueue_core::EmailId;

fn changed(
    id: EmailId,
    outcome: ChangeOutcome,
) -> Result<Option<mailqueue_core::store::DueEmail>, ServiceError> {
    match outcome {
        ChangeOutcome::Changed(due) => Ok(Some(due)),
        ChangeOutcome::NotFound => Err(ServiceError::NoEmail(id)),
        ChangeOutcome::TooLate(status) => Err(ServiceError::TooLate(status)),
    }
}

impl EmailService {
    /// Moves an email not yet handed to a worker to `at`.
    pub async fn reschedule(&self, id: EmailId, at: DateTime<Utc>) -> Result<(), ServiceError> {
        let now = self.now();
        let outcome = self.store.reschedule_email(id, at, now).await?;
        if let Some(due) = changed(id, outcome)? {
            if due.due_at > now {
                self.count_events(EventType::Scheduled, 1);
            }
            self.dispatch(&[due], "a rescheduled email was").await;
        }
        Ok(())
    }

    /// Cancels an email not yet handed to a worker. Its queue entry, if any,
    /// is left to expire: a claim of a cancelled email does nothing.
    pub async fn cancel(&self, id: EmailId) -> Result<(), ServiceError> {
        let outcome = self.store.cancel_email(id, self.now()).await?;
        changed(id, outcome)?;
        self.count_events(EventType::Canceled, 1);
        Ok(())
    }

    /// Queues a `failed` email again, with a fresh retry window.
    pub async fn retry(&self, id: EmailId) -> Result<(), ServiceError> {
        let outcome = self.store.retry_failed_email(id, self.now()).await?;
        if let Some(due) = changed(id, outcome)? {
            self.count_events(EventType::Sent, 1);
            self.dispatch(&[due], "a retried email was").await;
        }
        Ok(())
    }

    /// Puts every pending email of the store into the queue. Harmless to
    /// repeat, or to run while workers send: the store's claim decides who
    /// sends, so a duplicated entry can never send twice.
    pub async fn requeue_all(&self) -> Result<RequeueCounts, ServiceError> {
        requeue_pending(self.store.as_ref(), self.queue.as_ref(), self.now())
            .await
            .map_err(|e| match e {
                RequeueError::Store(e) => ServiceError::Store(e),
                RequeueError::Queue(e) => ServiceError::QueueUnavailable(e.0),
            })
    }
}
