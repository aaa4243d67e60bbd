//! Leases held by a live worker, claims released without an attempt, and
//! outcomes that must never be thrown away.

use crate::emails::outcome;
use crate::support::*;
use chrono::Duration;
use mailqueue_core::batch::apply_isolating;
use mailqueue_core::delivery::{DeliveryError, FailureClass, SmtpReply};
use mailqueue_core::store::{AttemptKind, AttemptResult, HeldClaim, InsertGroup, StoreError};
use mailqueue_core::{EmailId, EmailStatus, Priority};
use mailqueue_testkit::{test_store, StoreKind};

fn retry_at(at: chrono::DateTime<chrono::Utc>) -> AttemptResult {
    AttemptResult::RetryAt(
        DeliveryError::transient(FailureClass::Reply4xx, Some(451), "451 later"),
        at,
    )
}

fn sent() -> AttemptResult {
    AttemptResult::Sent(SmtpReply {
        code: 250,
        message: "2.0.0 queued".into(),
    })
}

pub async fn leases_are_renewed_only_while_held(kind: StoreKind) {
    let s = test_store(kind).await;
    let id = insert(s.store.as_ref(), email("x"), t0()).await;
    let other = insert(s.store.as_ref(), email("y"), t0()).await;
    s.store
        .claim_emails(&[id], &claim("w", t0()))
        .await
        .unwrap();
    s.store
        .claim_emails(&[other], &claim("someone-else", t0()))
        .await
        .unwrap();
    let at = t0() + Duration::minutes(4);
    let until = at + Duration::minutes(5);
    let renewed = s.store.renew_leases("w", at, until).await.unwrap();
    assert_eq!(renewed, vec![id], "only the holder's own lease");
    let r = s.store.get_email(id).await.unwrap().unwrap();
    assert_eq!(r.lease_expires_at, Some(until));
    // Past the renewed expiry the lease is the rescuer's: never revived.
    let late = until + Duration::seconds(1);
    assert!(s
        .store
        .renew_leases("w", late, late + Duration::minutes(5))
        .await
        .unwrap()
        .is_empty());
    let rescued = s
        .store
        .rescue_expired_leases(late, t0() - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(rescued.requeued.len(), 2);
    assert!(s
        .store
        .renew_leases("w", t0(), late)
        .await
        .unwrap()
        .is_empty());
}

pub async fn deferred_claims_go_back_without_an_attempt(kind: StoreKind) {
    let s = test_store(kind).await;
    let mut e = email("x");
    e.priority = Priority::High;
    let id = insert(s.store.as_ref(), e, t0()).await;
    let claimed = s
        .store
        .claim_emails(&[id], &claim("w", t0()))
        .await
        .unwrap();
    assert_eq!(claimed[0].attempt, 1);
    let claim_1 = HeldClaim { id, claim: 1 };
    let now = t0() + Duration::seconds(30);
    let wrong_attempt = HeldClaim { id, claim: 2 };
    assert!(s
        .store
        .defer_claims("w", &[wrong_attempt], now, now)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .store
        .defer_claims("other", &[claim_1], now, now)
        .await
        .unwrap()
        .is_empty());
    let released = s
        .store
        .defer_claims("w", &[claim_1], now + Duration::seconds(5), now)
        .await
        .unwrap();
    assert_eq!(released.len(), 1);
    assert_eq!(released[0].id, id);
    assert_eq!(released[0].due_at, now + Duration::seconds(5));
    assert_eq!(
        released[0].priority,
        Priority::High,
        "it keeps its priority"
    );
    let r = s.store.get_email(id).await.unwrap().unwrap();
    assert_eq!(r.status, EmailStatus::Queued);
    assert_eq!(r.attempts, 0, "no attempt is counted");
    assert_eq!(r.last_attempt_at, None);
    assert_eq!(r.lease_expires_at, None);
    assert!(s.store.list_attempts(id).await.unwrap().is_empty());
    assert!(
        s.store
            .claim_emails(&[id], &claim("w", now))
            .await
            .unwrap()
            .is_empty(),
        "not due before its new time"
    );
    let later = now + Duration::seconds(5);
    let again = s
        .store
        .claim_emails(&[id], &claim("w", later))
        .await
        .unwrap();
    assert_eq!(again[0].attempt, 1, "the next claim is the first attempt");
    assert_eq!(again[0].claim, 2, "under a claim of its own");
    assert_eq!(again[0].first_attempt_at, later);
    let mut stale = outcome(id, 1, retry_at(later));
    stale.claim = 1;
    let written = s.store.record_outcomes(&[stale]).await.unwrap();
    assert_eq!(written.total(), 0, "a fenced-out outcome writes no event");
    assert_eq!(
        s.store.get_email(id).await.unwrap().unwrap().status,
        EmailStatus::Sending,
        "the deferred claim's outcome is fenced out"
    );
    let mut retried = outcome(id, 1, retry_at(later + Duration::minutes(1)));
    retried.claim = 2;
    retried.started_at = later;
    s.store.record_outcomes(&[retried]).await.unwrap();
    let r = s.store.get_email(id).await.unwrap().unwrap();
    assert_eq!((r.status, r.attempts), (EmailStatus::Queued, 1));
    assert_eq!(
        r.last_attempt_at,
        Some(later),
        "the attempt counts when it ends"
    );
    let attempts = s.store.list_attempts(id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
        [1, 1],
        "a stale outcome is kept as history only"
    );
}

pub async fn a_sent_outcome_is_kept_after_its_lease_was_lost(kind: StoreKind) {
    let s = test_store(kind).await;
    let id = insert(s.store.as_ref(), email("x"), t0()).await;
    s.store
        .claim_emails(&[id], &claim("slow", t0()))
        .await
        .unwrap();
    let later = t0() + Duration::minutes(6);
    s.store
        .rescue_expired_leases(later, t0() - Duration::hours(48))
        .await
        .unwrap();
    s.store
        .claim_emails(&[id], &claim("fast", later))
        .await
        .unwrap();
    // The relay accepted attempt 1 after all: the email is sent.
    s.store
        .record_outcomes(&[outcome(id, 1, sent())])
        .await
        .unwrap();
    let r = s.store.get_email(id).await.unwrap().unwrap();
    assert_eq!(r.status, EmailStatus::Sent);
    assert_eq!(r.lease_expires_at, None);
    assert_eq!(r.last_error, None);
    // Attempt 2 ends too; the email stays sent, the history has both.
    s.store
        .record_outcomes(&[outcome(
            id,
            2,
            AttemptResult::Failed(DeliveryError::permanent(
                FailureClass::Reply5xx,
                Some(550),
                "duplicate",
            )),
        )])
        .await
        .unwrap();
    let r = s.store.get_email(id).await.unwrap().unwrap();
    assert_eq!(r.status, EmailStatus::Sent);
    let kinds: Vec<_> = s
        .store
        .list_attempts(id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(
        kinds,
        [
            AttemptKind::LeaseExpired,
            AttemptKind::Sent,
            AttemptKind::PermanentFailure
        ]
    );
}

pub async fn a_sent_email_carries_no_error(kind: StoreKind) {
    let s = test_store(kind).await;
    let id = insert(s.store.as_ref(), email("x"), t0()).await;
    s.store
        .claim_emails(&[id], &claim("w", t0()))
        .await
        .unwrap();
    let retry = t0() + Duration::seconds(1);
    s.store
        .record_outcomes(&[outcome(id, 1, retry_at(retry))])
        .await
        .unwrap();
    let r = s.store.get_email(id).await.unwrap().unwrap();
    assert!(r.last_error.unwrap().contains("451"));
    s.store
        .claim_emails(&[id], &claim("w", retry))
        .await
        .unwrap();
    s.store
        .record_outcomes(&[outcome(id, 2, sent())])
        .await
        .unwrap();
    let r = s.store.get_email(id).await.unwrap().unwrap();
    assert_eq!(r.status, EmailStatus::Sent);
    assert_eq!(r.last_error, None);
    assert_eq!(r.last_smtp_reply.as_deref(), Some("250 2.0.0 queued"));
}

pub async fn outcomes_of_emails_that_do_not_exist_are_ignored(kind: StoreKind) {
    let s = test_store(kind).await;
    let id = insert(s.store.as_ref(), email("x"), t0()).await;
    s.store
        .claim_emails(&[id], &claim("w", t0()))
        .await
        .unwrap();
    let ghost = EmailId::generate(t0());
    s.store
        .record_outcomes(&[outcome(ghost, 1, sent()), outcome(id, 1, sent())])
        .await
        .expect("an outcome without its email cannot fail the batch");
    assert!(s.store.list_attempts(ghost).await.unwrap().is_empty());
    let r = s.store.get_email(id).await.unwrap().unwrap();
    assert_eq!(r.status, EmailStatus::Sent);
}

pub async fn a_refused_group_fails_alone(kind: StoreKind) {
    let s = test_store(kind).await;
    let existing = to_insert(email("first"), t0());
    s.store
        .insert_emails(&[InsertGroup {
            emails: vec![existing.clone()].into(),
            idempotency: None,
        }])
        .await
        .unwrap();
    // The middle group reuses an id: the store refuses that row.
    let groups: Vec<InsertGroup> = [
        to_insert(email("a"), t0()),
        existing,
        to_insert(email("b"), t0()),
        to_insert(email("c"), t0()),
    ]
    .into_iter()
    .map(|e| InsertGroup {
        emails: vec![e].into(),
        idempotency: None,
    })
    .collect();
    let results = apply_isolating(&groups, |part| s.store.insert_emails(part))
        .await
        .results;
    assert!(
        matches!(results[1], Err(StoreError::Rejected(_))),
        "{:?}",
        results[1]
    );
    for i in [0, 2, 3] {
        assert!(results[i].is_ok(), "group {i}: {:?}", results[i]);
        let id = groups[i].emails[0].id;
        assert!(s.store.get_email(id).await.unwrap().is_some());
    }
}
