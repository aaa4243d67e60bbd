//! One round of delivery by hand: what the workers do continuously, made
//! deterministic for tests and tools.

use crate::lease_book::LeaseBook;
use crate::recorder::{self, Unwritten};
use crate::round::{attempt, claim_due, Claimed};
use crate::Delivery;
use mailqueue_core::queue::QueueError;
use mailqueue_core::store::{AttemptOutcome, StoreError};

/// What one round did.
#[derive(Debug, Default)]
pub struct Step {
    /// Emails claimed.
    pub claimed: usize,
    /// The outcomes recorded, in the order the emails were sent.
    pub outcomes: Vec<AttemptOutcome>,
    /// Claimed emails that went back unattempted (a rate limit, the fleet's
    /// connections, a lease without room).
    pub not_sent: usize,
}

/// Why a round stopped short.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Claiming or reading the suppression list failed (the emails go
    /// back, due in a second), or recording outcomes did (their leases
    /// expire and the rescuer returns them, as after a worker's crash).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Delivery {
    /// Takes up to `max` due emails from the queue, claims them, sends them
    /// one after another, records their outcomes (retries go back into the
    /// queue) and returns, leaving no task behind.
    pub async fn step(&self, max: usize) -> Result<Step, StepError> {
        let book = LeaseBook::default();
        let claimed = match claim_due(self, &book, self.clock.now(), max).await {
            Claimed::Ready(claimed) => claimed,
            Claimed::Idle => return Ok(Step::default()),
            Claimed::QueueUnavailable(e) => return Err(e.into()),
            Claimed::StoreFailed(e) => return Err(e.into()),
        };
        let mut step = Step {
            claimed: claimed.len(),
            ..Step::default()
        };
        let mut completed = Vec::with_capacity(claimed.len());
        for email in claimed {
            match attempt(self, &book, email).await {
                Some(c) => completed.push(c),
                None => step.not_sent += 1,
            }
        }
        step.outcomes = completed.iter().map(|c| c.outcome.clone()).collect();
        recorder::write(self, completed)
            .await
            .map_err(|Unwritten { error, .. }| error)?;
        Ok(step)
    }
}
