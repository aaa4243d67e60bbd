//! The leases this process holds, and whether each still has room for a send.
//!
//! Claimed emails wait in the ready buffer until a send slot frees. Behind a
//! slow relay they can wait longer than their lease, and a send started on
//! an expired lease races the rescuer into a duplicate. So the keeper
//! (`keep_leases`) renews every lease this process holds well before it
//! runs short, and the starter begins a send only while its lease has room
//! for a whole send (`send_timeout`); a claim without that room is released
//! unattempted. A lease therefore never expires under a live worker, and
//! only the sends truly in flight when a worker dies can be repeated.

use crate::Delivery;
use chrono::{DateTime, Utc};
use mailqueue_core::store::{ClaimedEmail, DeferReason, HeldClaim};
use mailqueue_core::EmailId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug)]
struct Held {
    claim: u32,
    expires_at: DateTime<Utc>,
    started: bool,
}

/// What the starter may do with a ready email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartCheck {
    /// The lease covers a whole send: send it.
    Go,
    /// The lease is too short for a send: release the claim unattempted.
    NoRoom(HeldClaim),
    /// This process holds no lease on it any more (already released).
    NotHeld,
}

#[derive(Debug, Default)]
pub struct LeaseBook {
    held: Mutex<HashMap<EmailId, Held>>,
}

impl LeaseBook {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<EmailId, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes freshly claimed emails and when their leases expire.
    pub fn hold(&self, claimed: &[ClaimedEmail], expires_at: DateTime<Utc>) {
        let mut held = self.held();
        for c in claimed {
            held.insert(
                c.id,
                Held {
                    claim: c.claim,
                    expires_at,
                    started: false,
                },
            );
        }
    }

    /// Marks the email as being sent if its lease lasts `room` beyond `now`.
    pub fn try_start(&self, id: EmailId, now: DateTime<Utc>, room: Duration) -> StartCheck {
        let mut held = self.held();
        let Some(h) = held.get_mut(&id) else {
            return StartCheck::NotHeld;
        };
        let left = (h.expires_at - now).to_std().unwrap_or(Duration::ZERO);
        if left >= room {
            h.started = true;
            StartCheck::Go
        } else {
            StartCheck::NoRoom(HeldClaim { id, claim: h.claim })
        }
    }

    /// The email left this process: sent and recorded, or released.
    pub fn forget(&self, id: EmailId) {
        self.held().remove(&id);
    }

    /// Extends the leases the store confirmed it renewed. Leases it did not
    /// renew keep their old expiry and run out of room in time.
    pub fn renewed(&self, ids: &[EmailId], until: DateTime<Utc>) {
        let mut held = self.held();
        for id in ids {
            if let Some(h) = held.get_mut(id) {
                h.expires_at = h.expires_at.max(until);
            }
        }
    }

    /// Claims whose send never started (the ready buffer at shutdown).
    pub fn unstarted(&self) -> Vec<HeldClaim> {
        self.held()
            .iter()
            .filter(|(_, h)| !h.started)
            .map(|(id, h)| HeldClaim {
                id: *id,
                claim: h.claim,
            })
            .collect()
    }

    /// Sends started and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.held().values().filter(|h| h.started).count()
    }

    pub fn is_empty(&self) -> bool {
        self.held().is_empty()
    }
}

/// How often leases are renewed: often enough that a renewed lease always
/// keeps more than a send's worth of room until the next renewal.
pub fn renew_interval(lease: Duration, send_timeout: Duration) -> Duration {
    (lease.saturating_sub(send_timeout) / 2).max(Duration::from_millis(50))
}

/// Renews every lease of this process until `stop` turns true.
pub async fn keep_leases(d: Arc<Delivery>, book: Arc<LeaseBook>, mut stop: watch::Receiver<bool>) {
    let every = renew_interval(d.settings.lease, d.settings.send_timeout);
    let lease = chrono::Duration::from_std(d.settings.lease).unwrap_or(chrono::Duration::MAX);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if book.is_empty() {
            continue;
        }
        let now = d.clock.now();
        let until = now + lease;
        match d.store.renew_leases(&d.settings.holder, now, until).await {
            Ok(ids) => book.renewed(&ids, until),
            Err(e) => tracing::warn!(error = %e,
                "renewing leases failed; emails whose lease runs short are released unsent"),
        }
    }
}

/// Puts claims this process will not send back into the store and the
/// queue, due at `due_at`, without counting an attempt. Failures are
/// logged: the rescuer returns those emails once their leases expire.
pub async fn defer(
    d: &Delivery,
    book: &LeaseBook,
    claims: &[HeldClaim],
    due_at: DateTime<Utc>,
    reason: DeferReason,
) {
    if claims.is_empty() {
        return;
    }
    for c in claims {
        book.forget(c.id);
    }
    match d
        .store
        .defer_claims(&d.settings.holder, claims, due_at, d.clock.now())
        .await
    {
        Ok(deferred) => {
            d.metrics
                .deferrals
                .get_or_create(&[("reason", reason.as_str())])
                .inc_by(deferred.len() as u64);
            if let Err(e) = d.queue.enqueue(&deferred).await {
                tracing::warn!(error = %e, "re-enqueueing deferred emails failed; the reconciler will restore them");
            }
        }
        Err(e) => tracing::warn!(error = %e, count = claims.len(), reason = reason.as_str(),
            "deferring claims failed; their leases will expire"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn claimed(id: EmailId, attempt: u32) -> ClaimedEmail {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        ClaimedEmail {
            id,
            message_id: "<m@x>".into(),
            created_at: t,
            email: mailqueue_testkit::plain_email("a@x.io", &[]),
            attempt,
            claim: attempt,
            first_attempt_at: t,
            suppressed: Vec::new(),
            came_due: false,
        }
    }

    #[test]
    fn a_send_starts_only_with_room_left_and_renewal_gives_room_back() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let id = EmailId::generate(t0);
        let book = LeaseBook::default();
        book.hold(&[claimed(id, 3)], t0 + chrono::Duration::seconds(10));
        let room = Duration::from_secs(5);
        assert_eq!(
            book.try_start(id, t0 + chrono::Duration::seconds(6), room),
            StartCheck::NoRoom(HeldClaim { id, claim: 3 })
        );
        book.renewed(&[id], t0 + chrono::Duration::seconds(16));
        assert_eq!(
            book.try_start(id, t0 + chrono::Duration::seconds(6), room),
            StartCheck::Go
        );
        assert_eq!(book.in_flight(), 1);
        assert!(book.unstarted().is_empty());
        book.forget(id);
        assert_eq!(
            book.try_start(id, t0, room),
            StartCheck::NotHeld,
            "a forgotten claim is never started"
        );
    }

    #[test]
    fn the_renewal_interval_keeps_a_send_worth_of_room() {
        let lease = Duration::from_secs(300);
        let send = Duration::from_secs(180);
        let every = renew_interval(lease, send);
        assert!(lease - every >= send);
        assert_eq!(
            renew_interval(Duration::from_secs(4), Duration::from_secs(2)),
            Duration::from_secs(1)
        );
    }
}
