//! Rate limits at send time. Before a send starts, the email reserves a
//! slot in each bucket that applies to it (the fleet's, its recipients'
//! domains'). A slot within the horizon is waited for, holding the send
//! slot; a later one sends the email back to the queue, unattempted, due
//! at its slot, which stays reserved for it. The horizon is short for an
//! email to a limited domain (`DOMAIN_HORIZON`), so that domain holds only
//! a slot or two of the process at a time and other domains keep flowing;
//! under the fleet's limit alone every email waits alike, so it is longer.

use crate::lease_book::{defer, LeaseBook};
use crate::Delivery;
use mailqueue_core::rate::BucketKind;
use mailqueue_core::store::ClaimedEmail;
use mailqueue_core::store::DeferReason;
use std::time::Duration;

/// The longest wait for a slot while holding a send slot.
pub const HORIZON: Duration = Duration::from_secs(1);
/// The same for an email to a limited domain.
pub const DOMAIN_HORIZON: Duration = Duration::from_millis(100);

/// Waits for the email's rate-limit slot; false when it was deferred.
pub async fn admit(d: &Delivery, book: &LeaseBook, email: &ClaimedEmail) -> bool {
    let Some(limiter) = &d.limiter else {
        return true;
    };
    let buckets = d.settings.rate_limits.buckets_for(&email.email);
    if buckets.is_empty() {
        return true;
    }
    let claim = email.held();
    let horizon = if buckets.iter().any(|b| b.kind == BucketKind::Domain) {
        DOMAIN_HORIZON
    } else {
        HORIZON
    };
    match limiter.reserve(email.id, &buckets, horizon).await {
        Ok(slot) if slot.wait <= horizon => {
            tokio::time::sleep(slot.wait).await;
            true
        }
        Ok(slot) => {
            let reason = match slot.binding.map(|i| buckets[i].kind) {
                Some(BucketKind::Domain) => DeferReason::DomainRateLimit,
                _ => DeferReason::RateLimit,
            };
            let due = d.clock.now()
                + chrono::Duration::from_std(slot.wait).unwrap_or(chrono::Duration::seconds(1));
            defer(d, book, &[claim], due, reason).await;
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "the rate limiter is unavailable; the email waits a second");
            let due = d.clock.now() + chrono::Duration::seconds(1);
            defer(d, book, &[claim], due, DeferReason::RateLimit).await;
            false
        }
    }
}
