//! Changing an email that exists: reschedule, cancel, retry; and putting
//! every pending email back into the dispatch queue.

use crate::{EmailService, ServiceError};
use chrono::{DateTime, Utc};
use mailqueue_core::queue::{requeue_pending, RequeueCounts, RequeueError};
use mailqueue_core::store::{ChangeOutcome, DueEmail};
use mailqueue_core::EmailId;

impl EmailService {
    /// The changed email's place in the queue, once its events are counted.
    fn changed(&self, id: EmailId, outcome: ChangeOutcome) -> Result<DueEmail, ServiceError> {
        match outcome {
            ChangeOutcome::Changed(due, written) => {
                self.metrics.count_events(&written);
                Ok(due)
            }
            ChangeOutcome::NotFound => Err(ServiceError::NoEmail(id)),
            ChangeOutcome::TooLate(status) => Err(ServiceError::TooLate(status)),
        }
    }

    /// Moves an email not yet handed to a worker to `at`.
    pub async fn reschedule(&self, id: EmailId, at: DateTime<Utc>) -> Result<(), ServiceError> {
        let now = self.now();
        let outcome = self.store.reschedule_email(id, at, now).await?;
        let due = self.changed(id, outcome)?;
        self.dispatch(&[due], "a rescheduled email was").await;
        Ok(())
    }

    /// Cancels an email not yet handed to a worker. Its queue entry, if any,
    /// is left to expire: a claim of a cancelled email does nothing.
    pub async fn cancel(&self, id: EmailId) -> Result<(), ServiceError> {
        let outcome = self.store.cancel_email(id, self.now()).await?;
        self.changed(id, outcome)?;
        Ok(())
    }

    /// Queues a `failed` email again, with a fresh retry window.
    pub async fn retry(&self, id: EmailId) -> Result<(), ServiceError> {
        let outcome = self.store.retry_failed_email(id, self.now()).await?;
        let due = self.changed(id, outcome)?;
        self.dispatch(&[due], "a retried email was").await;
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
