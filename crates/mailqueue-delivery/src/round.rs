//! One round of delivery in pieces that the running loops and
//! [`Delivery::step`](crate::Delivery::step) share: take and claim due
//! emails, attempt one of them.

use crate::admission::admit;
use crate::lease_book::{defer, LeaseBook, StartCheck};
use crate::send::{send_one, Completed, Sent};
use crate::suppressions;
use crate::Delivery;
use chrono::{DateTime, Utc};
use mailqueue_core::events::EventType;
use mailqueue_core::queue::QueueError;
use mailqueue_core::store::DeferReason;
use mailqueue_core::store::{Claim, ClaimedEmail, DueEmail, HeldClaim, StoreError};
use mailqueue_core::EmailId;

/// What taking and claiming found.
pub enum Claimed {
    /// Claimed emails, their suppressed recipients taken out.
    Ready(Vec<ClaimedEmail>),
    /// Nothing is due.
    Idle,
    QueueUnavailable(QueueError),
    /// The claim failed, or the suppression list could not be read: the
    /// emails are back, due in a second.
    StoreFailed(StoreError),
}

/// Takes up to `max` due emails from the queue and claims them in the
/// store, noting each claim in `book`.
pub async fn claim_due(d: &Delivery, book: &LeaseBook, now: DateTime<Utc>, max: usize) -> Claimed {
    let due = match d.queue.take_due(now, max).await {
        Ok(due) if due.is_empty() => return Claimed::Idle,
        Ok(due) => due,
        Err(e) => return Claimed::QueueUnavailable(e),
    };
    let lease =
        chrono::Duration::from_std(d.settings.lease).unwrap_or(chrono::Duration::minutes(5));
    let claim = Claim {
        holder: d.settings.holder.clone(),
        now,
        lease_expires_at: now + lease,
    };
    let ids: Vec<EmailId> = due.iter().map(|e| e.id).collect();
    let claimed = d.store.claim_emails(&ids, &claim).await;
    if let Err(e) = &claimed {
        tracing::warn!(error = %e, count = ids.len(), "claiming failed; the emails go back to the queue");
        requeue_unclaimed(d, &due, now).await;
    }
    // Claimed or not, the store has decided: the entries are done with.
    if let Err(e) = d.queue.ack(&ids).await {
        tracing::warn!(error = %e, "acknowledging taken entries failed; they come back after the visibility timeout");
    }
    let mut claimed = match claimed {
        Ok(claimed) => claimed,
        Err(e) => return Claimed::StoreFailed(e),
    };
    let came_due = claimed
        .iter()
        .filter(|c| c.came_due)
        .map(|_| EventType::Sent);
    d.metrics.count_events(&came_due.collect());
    book.hold(&claimed, claim.lease_expires_at);
    if let Err(e) = suppressions::apply(d, &mut claimed).await {
        tracing::warn!(error = %e, "the suppression list cannot be read; the claimed emails wait a second");
        let held: Vec<HeldClaim> = claimed.iter().map(ClaimedEmail::held).collect();
        let due = now + chrono::Duration::seconds(1);
        defer(d, book, &held, due, DeferReason::SuppressionLookup).await;
        return Claimed::StoreFailed(e);
    }
    Claimed::Ready(claimed)
}

/// Sends a claimed email once its rate-limit slot and its lease allow:
/// the attempt to record, or `None` when it went back unattempted.
pub async fn attempt(d: &Delivery, book: &LeaseBook, email: ClaimedEmail) -> Option<Completed> {
    if !(admit(d, book, &email).await && may_start(d, book, &email).await) {
        return None;
    }
    let id = email.id;
    match send_one(d, email).await {
        Sent::Attempted(completed) => {
            book.forget(id);
            Some(completed)
        }
        Sent::NotSent(claim) => {
            let due = d.clock.now() + chrono::Duration::seconds(1);
            defer(d, book, &[claim], due, DeferReason::ConnectionLimit).await;
            None
        }
    }
}

/// Whether the lease still has room for a whole send; if not, the email
/// goes back unattempted.
async fn may_start(d: &Delivery, book: &LeaseBook, email: &ClaimedEmail) -> bool {
    match book.try_start(email.id, d.clock.now(), d.settings.send_timeout) {
        StartCheck::Go => true,
        StartCheck::NoRoom(claim) => {
            tracing::info!(email = %email.id, "the lease has no room left for a send; releasing it unsent");
            defer(d, book, &[claim], d.clock.now(), DeferReason::Lease).await;
            false
        }
        StartCheck::NotHeld => false,
    }
}

/// Puts entries whose claim failed back, due in a second, with their priority.
async fn requeue_unclaimed(d: &Delivery, due: &[DueEmail], now: DateTime<Utc>) {
    let back: Vec<DueEmail> = due
        .iter()
        .map(|e| DueEmail {
            due_at: now + chrono::Duration::seconds(1),
            ..*e
        })
        .collect();
    if let Err(e) = d.queue.enqueue(&back).await {
        tracing::warn!(error = %e, "re-enqueueing failed; the reconciler will restore the emails");
    }
}
