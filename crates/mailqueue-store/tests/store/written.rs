//! Every change reports exactly the events it wrote (what the metrics
//! count), including changes that write fewer than one might predict: a
//! stale outcome, a reschedule of an email waiting for a retry, a claim
//! given back and taken again.

use crate::emails::outcome;
use crate::support::*;
use chrono::Duration;
use mailqueue_core::delivery::{DeliveryError, FailureClass, RejectedRecipient, SmtpReply};
use mailqueue_core::events::EventType;
use mailqueue_core::store::{AttemptResult, ChangeOutcome, HeldClaim, Store};
use mailqueue_core::transition::WrittenEvents;
use mailqueue_core::{EmailAddress, EmailId};
use mailqueue_testkit::{stored_events, test_store, StoreKind};

/// Checks that `reported` is what the store gained since `before`.
async fn gained(
    store: &dyn Store,
    ids: &[EmailId],
    before: &mut WrittenEvents,
    reported: WrittenEvents,
    what: &str,
) {
    let now = stored_events(store, ids).await;
    let mut expected = *before;
    expected += reported;
    assert_eq!(now, expected, "{what}: reported {reported:?}");
    *before = now;
}

fn changed(outcome: ChangeOutcome) -> WrittenEvents {
    match outcome {
        ChangeOutcome::Changed(_, written) => written,
        other => panic!("not changed: {other:?}"),
    }
}

fn sent() -> AttemptResult {
    AttemptResult::Sent(SmtpReply {
        code: 250,
        message: "2.0.0 Ok".into(),
    })
}

pub async fn every_change_reports_the_events_it_wrote(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let soon = t0() + Duration::minutes(10);
    let mut scheduled = email("scheduled");
    scheduled.scheduled_at = Some(soon);
    let a = insert(store, scheduled, t0()).await;
    let b = insert(store, email("retried"), t0()).await;
    let c = insert(store, email("rescued"), t0()).await;
    let d = insert(store, email("given up"), t0() - Duration::hours(72)).await;
    let ids = [a, b, c, d];
    let mut seen = stored_events(store, &ids).await;
    assert_eq!(seen.count(EventType::Scheduled), 1);
    assert_eq!(seen.count(EventType::Sent), 3);

    // A scheduled email comes due, is given back, and is claimed again:
    // `email.sent` once.
    let first = store.claim_emails(&[a], &claim("w", soon)).await.unwrap();
    assert!(first[0].came_due);
    let reported: WrittenEvents = [EventType::Sent].into_iter().collect();
    gained(store, &ids, &mut seen, reported, "came due").await;
    let back = HeldClaim { id: a, claim: 1 };
    store.defer_claims("w", &[back], soon, soon).await.unwrap();
    let again = store.claim_emails(&[a], &claim("w", soon)).await.unwrap();
    assert!(!again[0].came_due, "a claim given back comes due once");
    gained(
        store,
        &ids,
        &mut seen,
        WrittenEvents::default(),
        "claimed again",
    )
    .await;

    // A delivery with one refused recipient; then the same outcome again,
    // which no longer applies.
    let mut delivered = outcome(a, again[0].attempt, sent());
    delivered.rejected = vec![RejectedRecipient {
        address: EmailAddress::parse("gone@example.com").unwrap(),
        reply: SmtpReply {
            code: 550,
            message: "5.1.1 no such user".into(),
        },
    }];
    let written = store.record_outcomes(&[delivered.clone()]).await.unwrap();
    assert_eq!(written.count(EventType::Delivered), 1);
    assert_eq!(written.count(EventType::Bounced), 1);
    gained(store, &ids, &mut seen, written, "delivered").await;
    let stale = store.record_outcomes(&[delivered]).await.unwrap();
    assert_eq!(
        stale,
        WrittenEvents::default(),
        "a stale outcome writes nothing"
    );
    gained(store, &ids, &mut seen, stale, "stale").await;

    // An email waiting for a retry, rescheduled: no `email.scheduled`.
    store.claim_emails(&[b], &claim("w", t0())).await.unwrap();
    let transient = DeliveryError::transient(FailureClass::Reply4xx, Some(451), "451 later");
    let retry = AttemptResult::RetryAt(transient, t0() + Duration::minutes(5));
    let written = store
        .record_outcomes(&[outcome(b, 1, retry)])
        .await
        .unwrap();
    assert_eq!(written.count(EventType::DeliveryDelayed), 1);
    gained(store, &ids, &mut seen, written, "delayed").await;
    let moved = store
        .reschedule_email(b, t0() + Duration::hours(1), t0())
        .await
        .unwrap();
    let written = changed(moved);
    assert_eq!(
        written,
        WrittenEvents::default(),
        "still a retry, not scheduled"
    );
    gained(store, &ids, &mut seen, written, "rescheduled retry").await;
    let written = changed(store.cancel_email(b, t0()).await.unwrap());
    assert_eq!(written.count(EventType::Canceled), 1);
    gained(store, &ids, &mut seen, written, "cancelled").await;

    // Rescued (back to the queue, or given up), then released at a stop;
    // a failed email retried by hand.
    store
        .claim_emails(&[c], &claim("dead", t0()))
        .await
        .unwrap();
    let old = t0() - Duration::hours(72);
    store.claim_emails(&[d], &claim("dead", old)).await.unwrap();
    let later = t0() + Duration::minutes(6);
    let rescued = store
        .rescue_expired_leases(later, t0() - Duration::hours(48))
        .await
        .unwrap();
    assert_eq!(rescued.requeued.len(), 1);
    assert_eq!(rescued.events.count(EventType::DeliveryDelayed), 1);
    assert_eq!(rescued.events.count(EventType::Failed), 1);
    gained(store, &ids, &mut seen, rescued.events, "rescued").await;
    store.claim_emails(&[c], &claim("me", later)).await.unwrap();
    let released = store.release_leases("me", later).await.unwrap();
    assert_eq!(released.events.count(EventType::DeliveryDelayed), 1);
    gained(store, &ids, &mut seen, released.events, "released").await;
    let written = changed(store.retry_failed_email(d, later).await.unwrap());
    assert_eq!(written.count(EventType::Sent), 1);
    gained(store, &ids, &mut seen, written, "retried by hand").await;
}
