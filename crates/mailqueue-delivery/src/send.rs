//! One delivery attempt: send, then decide what the outcome means.

use crate::signing::SenderSetup;
use crate::Delivery;
use chrono::{DateTime, Utc};
use mailqueue_core::delivery::{DeliveryError, Failure, FailureClass, RejectedRecipient};
use mailqueue_core::retry::RetryDecision;
use mailqueue_core::store::{AttemptOutcome, AttemptResult, ClaimedEmail, HeldClaim};
use mailqueue_core::transport::OutgoingEmail;
use mailqueue_core::transport::SendError;
use std::time::Instant;

/// An attempt's outcome, with what the recorder needs after committing it.
pub struct Completed {
    pub outcome: AttemptOutcome,
    pub priority: mailqueue_core::Priority,
    /// When the email was due, for the latency histogram.
    pub due_at: DateTime<Utc>,
    /// The attempt's record permit, held until its outcome is written
    /// (see the dispatcher): dropping a `Completed` frees it.
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// What became of a send.
pub enum Sent {
    /// The relay was reached: the outcome must be recorded.
    Attempted(Completed),
    /// The message never left (no relay connection was free for it): not
    /// an attempt; the claim goes back unattempted.
    NotSent(HeldClaim),
}

pub async fn send_one(d: &Delivery, claimed: ClaimedEmail) -> Sent {
    let started_at = d.clock.now();
    if claimed.email.recipients().next().is_none() {
        // Every recipient is suppressed: nothing to send, ever.
        return Sent::Attempted(completed(
            &claimed,
            started_at,
            started_at,
            AttemptResult::Suppressed,
            Vec::new(),
        ));
    }
    let setup = match &d.senders {
        Some(senders) => senders.for_sender(&claimed.email.from.address).await,
        None => SenderSetup::default(),
    };
    let out = OutgoingEmail {
        id: claimed.id,
        message_id: &claimed.message_id,
        date: claimed.created_at,
        email: &claimed.email,
        return_path: setup.return_path(d.settings.return_paths.as_ref(), claimed.id),
        signer: setup.signer,
        require_tls: setup.require_tls,
    };
    let timer = Instant::now();
    let sent = match tokio::time::timeout(d.settings.send_timeout, d.transport.send(&out)).await {
        Ok(Ok(delivered)) => Ok(delivered),
        Ok(Err(SendError::Failed(e))) => Err(e),
        Ok(Err(SendError::NoConnectionSlot)) => return Sent::NotSent(claimed.held()),
        Err(_) => Err(DeliveryError::transient(
            FailureClass::Timeout,
            None,
            format!("the send took longer than {:?}", d.settings.send_timeout),
        )),
    };
    d.metrics
        .send_duration_seconds
        .observe(timer.elapsed().as_secs_f64());
    let finished_at = d.clock.now();
    let mut rejected = Vec::new();
    let result = match sent {
        Ok(delivered) => {
            rejected = delivered.rejected;
            AttemptResult::Sent(delivered.reply)
        }
        Err(e @ DeliveryError::Permanent(_)) => AttemptResult::Failed(e),
        Err(e @ DeliveryError::Transient(_)) => {
            match d.policy.decide(
                claimed.attempt,
                claimed.first_attempt_at,
                finished_at,
                d.jitter.sample(),
            ) {
                RetryDecision::RetryAt(at) => AttemptResult::RetryAt(e, at),
                RetryDecision::GiveUp => {
                    let f = e.failure();
                    AttemptResult::Failed(DeliveryError::Permanent(Failure {
                        class: f.class,
                        smtp_code: f.smtp_code,
                        detail: format!(
                            "gave up after {} attempts since {}: {}",
                            claimed.attempt,
                            claimed.first_attempt_at.to_rfc3339(),
                            f.detail
                        ),
                        rejected: f.rejected.clone(),
                    }))
                }
            }
        }
    };
    Sent::Attempted(completed(
        &claimed,
        started_at,
        finished_at,
        result,
        rejected,
    ))
}

/// The outcome of `claimed`'s attempt, with what the recorder needs.
fn completed(
    claimed: &ClaimedEmail,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    result: AttemptResult,
    rejected: Vec<RejectedRecipient>,
) -> Completed {
    let due_at = claimed
        .email
        .scheduled_at
        .unwrap_or(claimed.created_at)
        .max(claimed.created_at);
    Completed {
        outcome: AttemptOutcome {
            email_id: claimed.id,
            attempt: claimed.attempt,
            claim: claimed.claim,
            started_at,
            finished_at,
            result,
            rejected,
            suppressed: claimed.suppressed.clone(),
        },
        priority: claimed.email.priority,
        due_at,
        slot: None,
    }
}
