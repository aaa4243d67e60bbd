//! Every status change writes exactly its event, in its transaction; a
//! change that does not happen writes none.

use crate::emails::outcome;
use crate::support::*;
use chrono::Duration;
use mailqueue_core::delivery::{DeliveryError, FailureClass, RejectedRecipient, SmtpReply};
use mailqueue_core::events::EventType;
use mailqueue_core::store::{AttemptResult, HeldClaim, Store};
use mailqueue_core::suppression::SuppressionOrigin;
use mailqueue_core::EmailAddress;
use mailqueue_core::EmailId;
use mailqueue_testkit::{test_store, StoreKind};

async fn history(store: &dyn Store, id: EmailId) -> Vec<&'static str> {
    store
        .list_email_events(id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_type.last_event())
        .collect()
}

async fn last_event(store: &dyn Store, id: EmailId) -> Option<EventType> {
    store.get_email(id).await.unwrap().unwrap().last_event
}

fn ok() -> AttemptResult {
    AttemptResult::Sent(SmtpReply {
        code: 250,
        message: "2.0.0 Ok".into(),
    })
}

pub async fn each_change_writes_its_event(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let now = insert(store, email("now"), t0()).await;
    let mut later = email("later");
    later.scheduled_at = Some(t0() + Duration::minutes(10));
    let later = insert(store, later, t0()).await;
    assert_eq!(history(store, now).await, ["sent"]);
    assert_eq!(history(store, later).await, ["scheduled"]);
    assert_eq!(last_event(store, later).await, Some(EventType::Scheduled));

    store.claim_emails(&[now], &claim("w", t0())).await.unwrap();
    assert_eq!(history(store, now).await, ["sent"], "a claim is no event");
    store
        .record_outcomes(&[outcome(now, 1, ok())])
        .await
        .unwrap();
    assert_eq!(history(store, now).await, ["sent", "delivered"]);
    assert_eq!(last_event(store, now).await, Some(EventType::Delivered));
    // The same outcome again changes nothing and writes nothing.
    store
        .record_outcomes(&[outcome(now, 1, ok())])
        .await
        .unwrap();
    assert_eq!(history(store, now).await, ["sent", "delivered"]);

    // The scheduled email's time comes: `sent`, then a retry, a bounce.
    let due = t0() + Duration::minutes(10);
    store
        .claim_emails(&[later], &claim("w", due))
        .await
        .unwrap();
    assert_eq!(history(store, later).await, ["scheduled", "sent"]);
    let retry_at = due + Duration::minutes(1);
    let transient = DeliveryError::transient(FailureClass::Reply4xx, Some(451), "451 later");
    store
        .record_outcomes(&[outcome(
            later,
            1,
            AttemptResult::RetryAt(transient, retry_at),
        )])
        .await
        .unwrap();
    store
        .claim_emails(&[later], &claim("w", retry_at))
        .await
        .unwrap();
    let refused = DeliveryError::permanent(FailureClass::Reply5xx, Some(554), "554 5.7.1 rejected");
    store
        .record_outcomes(&[outcome(later, 2, AttemptResult::Failed(refused))])
        .await
        .unwrap();
    let events = store.list_email_events(later).await.unwrap();
    let bounce = events.last().unwrap().data.bounce.clone().unwrap();
    assert_eq!(bounce.kind, "Permanent");
    assert_eq!(bounce.sub_type, "ContentRejected");
    assert_eq!(bounce.diagnostic_code, ["smtp; 554 5.7.1 rejected"]);
    // Retried by hand, then cancelled.
    store.retry_failed_email(later, retry_at).await.unwrap();
    store.cancel_email(later, retry_at).await.unwrap();
    assert_eq!(
        history(store, later).await,
        [
            "scheduled",
            "sent",
            "delivery_delayed",
            "bounced",
            "sent",
            "canceled"
        ]
    );
    // A cancel that is too late writes nothing.
    store.cancel_email(later, retry_at).await.unwrap();
    assert_eq!(history(store, later).await.len(), 6);
    assert_eq!(last_event(store, later).await, Some(EventType::Canceled));
}

pub async fn interrupted_and_deferred_attempts(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let rescued = insert(store, email("rescued"), t0()).await;
    let released = insert(store, email("released"), t0()).await;
    let deferred = insert(store, email("deferred"), t0()).await;
    let given_up = insert(store, email("given up"), t0() - Duration::hours(72)).await;
    store
        .claim_emails(&[rescued], &claim("dead", t0()))
        .await
        .unwrap();
    store
        .claim_emails(&[given_up], &claim("dead", t0() - Duration::hours(72)))
        .await
        .unwrap();
    store
        .claim_emails(&[released, deferred], &claim("me", t0()))
        .await
        .unwrap();
    store
        .defer_claims(
            "me",
            &[HeldClaim {
                id: deferred,
                claim: 1,
            }],
            t0() + Duration::seconds(5),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(
        history(store, deferred).await,
        ["sent"],
        "no attempt, no event"
    );
    store.release_leases("me", t0()).await.unwrap();
    assert_eq!(history(store, released).await, ["sent", "delivery_delayed"]);
    let later = t0() + Duration::minutes(6);
    store
        .rescue_expired_leases(later, t0() - Duration::hours(48))
        .await
        .unwrap();
    assert_eq!(history(store, rescued).await, ["sent", "delivery_delayed"]);
    assert_eq!(history(store, given_up).await, ["sent", "failed"]);
    let failed = store.list_email_events(given_up).await.unwrap();
    let reason = failed[1].data.failed.as_ref().unwrap().reason.clone();
    assert!(reason.contains("lease expired"), "{reason}");
}

pub async fn refused_recipients_bounce_alone_and_are_suppressed(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let id = insert(store, email("three"), t0()).await;
    store.claim_emails(&[id], &claim("w", t0())).await.unwrap();
    let refusal = |address: &str, code, text: &str| RejectedRecipient {
        address: EmailAddress::parse(address).unwrap(),
        reply: SmtpReply {
            code,
            message: text.into(),
        },
    };
    let mut o = outcome(id, 1, ok());
    o.rejected = vec![
        refusal("Gone@Example.COM", 550, "5.1.1 no such user"),
        refusal("full@example.com", 552, "5.2.2 mailbox full"),
    ];
    store.record_outcomes(&[o]).await.unwrap();
    let events = store.list_email_events(id).await.unwrap();
    let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            EventType::Sent,
            EventType::Delivered,
            EventType::Bounced,
            EventType::Bounced
        ]
    );
    assert_eq!(events[2].data.to, ["Gone@Example.COM"]);
    let bounce = events[2].data.bounce.as_ref().unwrap();
    assert_eq!(bounce.sub_type, "NoEmail");
    assert_eq!(bounce.diagnostic_code, ["smtp; 550 5.1.1 no such user"]);
    assert_eq!(
        events[3].data.bounce.as_ref().unwrap().sub_type,
        "MailboxFull"
    );
    let listed = store
        .suppressed_among(&[
            EmailAddress::parse("Gone@example.com").unwrap(),
            EmailAddress::parse("gone@example.com").unwrap(),
            EmailAddress::parse("full@example.com").unwrap(),
        ])
        .await
        .unwrap();
    // Addresses are compared without case: both spellings are listed.
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].address.as_str(), "Gone@example.com");
    assert_eq!(listed[1].address.as_str(), "gone@example.com");
    assert!(listed.iter().all(|l| l.origin == SuppressionOrigin::Bounce));
    // The same bounce again does not list the address twice.
    let again = insert(store, email("again"), t0()).await;
    store
        .claim_emails(&[again], &claim("w", t0()))
        .await
        .unwrap();
    let mut o = outcome(again, 1, ok());
    o.rejected = vec![refusal("gone@EXAMPLE.com", 550, "5.1.1 no such user")];
    store.record_outcomes(&[o]).await.unwrap();
    let listed = store
        .suppressed_among(&[EmailAddress::parse("Gone@example.com").unwrap()])
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

pub async fn every_recipient_suppressed_ends_the_email(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let id = insert(store, email("nobody"), t0()).await;
    store.claim_emails(&[id], &claim("w", t0())).await.unwrap();
    let mut o = outcome(id, 1, AttemptResult::Suppressed);
    o.suppressed = vec![mailqueue_core::store::SuppressedRecipient {
        address: EmailAddress::parse("a@example.com").unwrap(),
        origin: SuppressionOrigin::Manual,
    }];
    store.record_outcomes(&[o]).await.unwrap();
    let r = store.get_email(id).await.unwrap().unwrap();
    assert!(r.status.is_terminal(), "{:?}", r.status);
    assert_eq!(r.last_event, Some(EventType::Suppressed));
    let events = store.list_email_events(id).await.unwrap();
    let suppressed = events[1].data.suppressed.as_ref().unwrap();
    assert_eq!(suppressed.kind, "OnAccountSuppressionList");
    assert_eq!(suppressed.reason, "manual");
}

pub async fn a_late_report_writes_its_events_and_suppressions(kind: StoreKind) {
    use mailqueue_core::transition::{LateReport, ReportTransition};
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let id = insert(store, email("reported"), t0()).await;
    store.claim_emails(&[id], &claim("w", t0())).await.unwrap();
    store
        .record_outcomes(&[outcome(id, 1, ok())])
        .await
        .unwrap();
    let later = t0() + Duration::minutes(5);
    let reports = [
        LateReport::Bounced {
            recipient: EmailAddress::parse("a@example.com").unwrap(),
            status: "5.1.1".into(),
            diagnostic_code: Some("550 5.1.1 user unknown".into()),
        },
        LateReport::Complained {
            recipient: EmailAddress::parse("b@example.com").unwrap(),
            feedback_type: "abuse".into(),
        },
    ];
    let written = store
        .record_report(&ReportTransition::of(id, later, &reports))
        .await
        .unwrap();
    assert_eq!(written.count(EventType::Bounced), 1);
    assert_eq!(written.count(EventType::Complained), 1);
    assert_eq!(
        history(store, id).await,
        ["sent", "delivered", "bounced", "complained"]
    );
    let record = store.get_email(id).await.unwrap().unwrap();
    assert_eq!(record.status, mailqueue_core::EmailStatus::Sent);
    assert_eq!(record.last_event, Some(EventType::Complained));
    let listed = store
        .suppressed_among(&[
            EmailAddress::parse("a@example.com").unwrap(),
            EmailAddress::parse("b@example.com").unwrap(),
        ])
        .await
        .unwrap();
    let origins: Vec<_> = listed.iter().map(|l| l.origin).collect();
    assert_eq!(
        origins,
        [SuppressionOrigin::Bounce, SuppressionOrigin::Complaint]
    );
    // A report about an email that is gone writes nothing.
    let gone = EmailId::generate(t0());
    let none = store
        .record_report(&ReportTransition::of(gone, later, &reports))
        .await
        .unwrap();
    assert_eq!(none.total(), 0);
}

pub async fn an_unclassified_report_is_kept_whole(kind: StoreKind) {
    use mailqueue_core::store::UnclassifiedReport;
    let s = test_store(kind).await;
    let report = UnclassifiedReport {
        id: EmailId::generate(t0()).0,
        received_at: t0(),
        mail_from: String::new(),
        rcpt_to: "b-x@bounces.acme.test".into(),
        email_id: None,
        reason: "not a multipart/report".into(),
        message: b"Subject: out of office\r\n\r\n\xff\0binary\r\n".to_vec(),
    };
    s.store.keep_unclassified_report(&report).await.unwrap();
    let again = s.store.keep_unclassified_report(&report).await;
    assert!(again.is_err(), "one id, one report");
}
