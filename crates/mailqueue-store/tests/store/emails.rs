use crate::support::*;
use chrono::Duration;
use mailqueue_core::delivery::{DeliveryError, FailureClass, SmtpReply};
use mailqueue_core::store::{
    AttemptKind, AttemptOutcome, AttemptResult, ChangeOutcome, InsertGroup, ListQuery,
};
use mailqueue_core::{EmailId, EmailStatus};
use mailqueue_testkit::{test_store, StoreKind};

pub async fn insert_then_get_returns_every_field(kind: StoreKind) {
    let s = test_store(kind).await;
    let mut e = full_email();
    e.scheduled_at = Some(t0() + Duration::hours(1));
    let id = insert(s.store.as_ref(), e.clone(), t0()).await;
    let r = s.store.get_email(id).await.unwrap().expect("stored");
    assert_eq!(r.status, EmailStatus::Scheduled);
    assert_eq!(r.created_at, t0());
    assert_eq!(r.next_attempt_at, Some(t0() + Duration::hours(1)));
    assert_eq!(r.message_id, format!("<{id}@acme.test>"));
    let mut expected = e.clone();
    expected.attachments.clear();
    assert_eq!(r.email, expected);
    assert_eq!(r.attachments.len(), 2);
    assert_eq!(r.attachments[0].size, 14);
    assert_eq!(r.attachments[1].content_id.as_deref(), Some("logo"));
    assert!(s
        .store
        .get_email(EmailId::generate(t0()))
        .await
        .unwrap()
        .is_none());
}

pub async fn a_failed_insert_stores_nothing_of_the_call(kind: StoreKind) {
    let s = test_store(kind).await;
    let existing = insert(s.store.as_ref(), email("first"), t0()).await;
    let fresh = to_insert(email("fresh"), t0());
    let fresh_id = fresh.id;
    let mut duplicate = to_insert(email("dup"), t0());
    duplicate.id = existing;
    let result = s
        .store
        .insert_emails(&[
            InsertGroup {
                emails: vec![fresh].into(),
                idempotency: None,
            },
            InsertGroup {
                emails: vec![duplicate].into(),
                idempotency: None,
            },
        ])
        .await;
    assert!(result.is_err());
    assert!(
        s.store.get_email(fresh_id).await.unwrap().is_none(),
        "all or nothing"
    );
}

pub async fn claims_only_due_pending_emails_once(kind: StoreKind) {
    let s = test_store(kind).await;
    let due = insert(s.store.as_ref(), email("due"), t0()).await;
    let mut later = email("later");
    later.scheduled_at = Some(t0() + Duration::minutes(10));
    let later = insert(s.store.as_ref(), later, t0()).await;
    let claimed = s
        .store
        .claim_emails(&[due, later], &claim("w1", t0()))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, due);
    assert_eq!(claimed[0].attempt, 1);
    assert_eq!(claimed[0].first_attempt_at, t0());
    assert_eq!(claimed[0].email.subject, "due");
    let again = s
        .store
        .claim_emails(&[due], &claim("w2", t0()))
        .await
        .unwrap();
    assert!(again.is_empty(), "a claimed email is not claimed twice");
    let r = s.store.get_email(due).await.unwrap().unwrap();
    assert_eq!(r.status, EmailStatus::Sending);
    assert_eq!(r.lease_expires_at, Some(t0() + Duration::minutes(5)));
    let at_time = s
        .store
        .claim_emails(&[later], &claim("w1", t0() + Duration::minutes(10)))
        .await
        .unwrap();
    assert_eq!(
        at_time.len(),
        1,
        "a scheduled email is claimable at its time"
    );
}

pub async fn claimed_emails_carry_their_attachments(kind: StoreKind) {
    let s = test_store(kind).await;
    let plain = insert(s.store.as_ref(), email("plain"), t0()).await;
    let with_files = insert(s.store.as_ref(), full_email(), t0()).await;
    let claimed = s
        .store
        .claim_emails(&[plain, with_files], &claim("w", t0()))
        .await
        .unwrap();
    let c = claimed.iter().find(|c| c.id == with_files).unwrap();
    assert_eq!(c.email.attachments, full_email().attachments);
    assert!(claimed
        .iter()
        .find(|c| c.id == plain)
        .unwrap()
        .email
        .attachments
        .is_empty());
}

pub fn outcome(id: EmailId, attempt: u32, result: AttemptResult) -> AttemptOutcome {
    AttemptOutcome {
        email_id: id,
        attempt,
        claim: attempt,
        started_at: t0(),
        finished_at: t0() + Duration::seconds(1),
        result,
        rejected: vec![],
        suppressed: vec![],
    }
}

pub async fn outcomes_move_emails_and_are_recorded(kind: StoreKind) {
    let s = test_store(kind).await;
    let ids = [
        insert(s.store.as_ref(), email("sent"), t0()).await,
        insert(s.store.as_ref(), email("retry"), t0()).await,
        insert(s.store.as_ref(), email("failed"), t0()).await,
    ];
    s.store.claim_emails(&ids, &claim("w", t0())).await.unwrap();
    let retry_at = t0() + Duration::minutes(1);
    s.store
        .record_outcomes(&[
            outcome(
                ids[0],
                1,
                AttemptResult::Sent(SmtpReply {
                    code: 250,
                    message: "2.0.0 Ok".into(),
                }),
            ),
            outcome(
                ids[1],
                1,
                AttemptResult::RetryAt(
                    DeliveryError::transient(FailureClass::Reply4xx, Some(451), "451 try later"),
                    retry_at,
                ),
            ),
            outcome(
                ids[2],
                1,
                AttemptResult::Failed(DeliveryError::permanent(
                    FailureClass::Reply5xx,
                    Some(550),
                    "550 no such user",
                )),
            ),
        ])
        .await
        .unwrap();
    let sent = s.store.get_email(ids[0]).await.unwrap().unwrap();
    assert_eq!(sent.status, EmailStatus::Sent);
    assert_eq!(sent.sent_at, Some(t0() + Duration::seconds(1)));
    assert_eq!(sent.last_smtp_reply.as_deref(), Some("250 2.0.0 Ok"));
    assert_eq!(sent.lease_expires_at, None);
    let retry = s.store.get_email(ids[1]).await.unwrap().unwrap();
    assert_eq!(retry.status, EmailStatus::Queued);
    assert_eq!(retry.next_attempt_at, Some(retry_at));
    assert_eq!(retry.last_error.as_deref(), Some("451 try later"));
    let failed = s.store.get_email(ids[2]).await.unwrap().unwrap();
    assert_eq!(failed.status, EmailStatus::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("550 no such user"));
    let attempts = s.store.list_attempts(ids[1]).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptKind::TransientFailure);
    assert_eq!(attempts[0].smtp_code, Some(451));
    // The retried email is claimable again at its time, as attempt 2.
    let second = s
        .store
        .claim_emails(&[ids[1]], &claim("w", retry_at))
        .await
        .unwrap();
    assert_eq!(second[0].attempt, 2);
    assert_eq!(
        second[0].first_attempt_at,
        t0(),
        "the retry window starts at the first attempt"
    );
}

pub async fn a_stale_outcome_cannot_overwrite_a_newer_claim(kind: StoreKind) {
    let s = test_store(kind).await;
    let id = insert(s.store.as_ref(), email("x"), t0()).await;
    s.store
        .claim_emails(&[id], &claim("slow", t0()))
        .await
        .unwrap();
    let later = t0() + Duration::minutes(6);
    let rescued = s
        .store
        .rescue_expired_leases(later, t0() - Duration::hours(48))
        .await
        .unwrap();
    assert_eq!(rescued.requeued.len(), 1);
    let reclaimed = s
        .store
        .claim_emails(&[id], &claim("fast", later))
        .await
        .unwrap();
    assert_eq!(reclaimed[0].attempt, 2);
    // The slow worker finally reports failure of attempt 1: history only.
    s.store
        .record_outcomes(&[outcome(
            id,
            1,
            AttemptResult::Failed(DeliveryError::permanent(
                FailureClass::Reply5xx,
                Some(550),
                "late",
            )),
        )])
        .await
        .unwrap();
    let r = s.store.get_email(id).await.unwrap().unwrap();
    assert_eq!(
        r.status,
        EmailStatus::Sending,
        "attempt 2 still owns the email"
    );
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
        vec![AttemptKind::LeaseExpired, AttemptKind::PermanentFailure]
    );
}

pub async fn expired_leases_are_rescued_or_given_up(kind: StoreKind) {
    let s = test_store(kind).await;
    let young = insert(s.store.as_ref(), email("young"), t0()).await;
    let old = insert(s.store.as_ref(), email("old"), t0()).await;
    s.store
        .claim_emails(&[old, young], &claim("w", t0()))
        .await
        .unwrap();
    let not_yet = s
        .store
        .rescue_expired_leases(t0() + Duration::minutes(4), t0() - Duration::hours(48))
        .await
        .unwrap();
    assert!(
        not_yet.requeued.is_empty(),
        "leases that have not expired stay"
    );
    // Everything whose first attempt is before the cut-off is given up.
    let now = t0() + Duration::minutes(6);
    let rescued = s
        .store
        .rescue_expired_leases(now, t0() + Duration::seconds(1))
        .await
        .unwrap();
    assert!(
        rescued.requeued.is_empty(),
        "both first attempts are before the cut-off"
    );
    for id in [young, old] {
        let r = s.store.get_email(id).await.unwrap().unwrap();
        assert_eq!(r.status, EmailStatus::Failed);
        assert!(r.last_error.unwrap().contains("lease expired"));
    }
    let fresh = insert(s.store.as_ref(), email("fresh"), t0()).await;
    s.store
        .claim_emails(&[fresh], &claim("w", t0()))
        .await
        .unwrap();
    let rescued = s
        .store
        .rescue_expired_leases(now, t0() - Duration::hours(48))
        .await
        .unwrap();
    assert_eq!(
        rescued.requeued.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![fresh]
    );
    assert_eq!(rescued.requeued[0].due_at, now);
    assert_eq!(
        s.store.get_email(fresh).await.unwrap().unwrap().status,
        EmailStatus::Queued
    );
}

pub async fn release_returns_a_holders_emails(kind: StoreKind) {
    let s = test_store(kind).await;
    let mine = insert(s.store.as_ref(), email("mine"), t0()).await;
    let theirs = insert(s.store.as_ref(), email("theirs"), t0()).await;
    s.store
        .claim_emails(&[mine], &claim("me", t0()))
        .await
        .unwrap();
    s.store
        .claim_emails(&[theirs], &claim("them", t0()))
        .await
        .unwrap();
    let released = s.store.release_leases("me", t0()).await.unwrap();
    assert_eq!(
        released.requeued.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![mine]
    );
    assert_eq!(
        s.store.get_email(mine).await.unwrap().unwrap().status,
        EmailStatus::Queued
    );
    assert_eq!(
        s.store.get_email(theirs).await.unwrap().unwrap().status,
        EmailStatus::Sending
    );
}

pub async fn reschedule_cancel_and_retry_follow_the_state_machine(kind: StoreKind) {
    let s = test_store(kind).await;
    let id = insert(s.store.as_ref(), email("x"), t0()).await;
    let at = t0() + Duration::hours(2);
    match s.store.reschedule_email(id, at, t0()).await.unwrap() {
        ChangeOutcome::Changed(due, _) => assert_eq!(due.due_at, at),
        other => panic!("{other:?}"),
    }
    let r = s.store.get_email(id).await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.email.scheduled_at),
        (EmailStatus::Scheduled, Some(at))
    );
    assert!(s
        .store
        .claim_emails(&[id], &claim("w", t0()))
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        s.store.cancel_email(id, t0()).await.unwrap(),
        ChangeOutcome::Changed(..)
    ));
    assert_eq!(
        s.store.get_email(id).await.unwrap().unwrap().status,
        EmailStatus::Cancelled
    );
    assert_eq!(
        s.store.reschedule_email(id, at, t0()).await.unwrap(),
        ChangeOutcome::TooLate(EmailStatus::Cancelled)
    );
    assert!(
        s.store
            .claim_emails(&[id], &claim("w", at))
            .await
            .unwrap()
            .is_empty(),
        "cancelled is never sent"
    );
    let missing = EmailId::generate(t0());
    assert_eq!(
        s.store.cancel_email(missing, t0()).await.unwrap(),
        ChangeOutcome::NotFound
    );
    // Retry only applies to failed emails, and gives a fresh window.
    let f = insert(s.store.as_ref(), email("f"), t0()).await;
    assert_eq!(
        s.store.retry_failed_email(f, t0()).await.unwrap(),
        ChangeOutcome::TooLate(EmailStatus::Queued)
    );
    s.store.claim_emails(&[f], &claim("w", t0())).await.unwrap();
    assert_eq!(
        s.store.cancel_email(f, t0()).await.unwrap(),
        ChangeOutcome::TooLate(EmailStatus::Sending)
    );
    s.store
        .record_outcomes(&[outcome(
            f,
            1,
            AttemptResult::Failed(DeliveryError::permanent(
                FailureClass::Reply5xx,
                Some(550),
                "no",
            )),
        )])
        .await
        .unwrap();
    let later = t0() + Duration::hours(3);
    assert!(matches!(
        s.store.retry_failed_email(f, later).await.unwrap(),
        ChangeOutcome::Changed(..)
    ));
    let c = s
        .store
        .claim_emails(&[f], &claim("w", later))
        .await
        .unwrap();
    assert_eq!((c[0].attempt, c[0].first_attempt_at), (2, later));
}

pub async fn lists_newest_first_with_keyset_pages(kind: StoreKind) {
    let s = test_store(kind).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            insert(
                s.store.as_ref(),
                email(&format!("m{i}")),
                t0() + Duration::seconds(i),
            )
            .await,
        );
    }
    let page = |q: ListQuery| {
        let store = s.store.clone();
        async move {
            store
                .list_emails(&q)
                .await
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        page(ListQuery {
            limit: 2,
            ..Default::default()
        })
        .await,
        vec![ids[4], ids[3]]
    );
    assert_eq!(
        page(ListQuery {
            limit: 2,
            after: Some(ids[3]),
            ..Default::default()
        })
        .await,
        vec![ids[2], ids[1]]
    );
    assert_eq!(
        page(ListQuery {
            limit: 2,
            before: Some(ids[1]),
            ..Default::default()
        })
        .await,
        vec![ids[3], ids[2]]
    );
    s.store.cancel_email(ids[2], t0()).await.unwrap();
    assert_eq!(
        page(ListQuery {
            limit: 10,
            status: Some(EmailStatus::Cancelled),
            ..Default::default()
        })
        .await,
        vec![ids[2]]
    );
}

pub async fn pending_emails_pages_through_everything_pending(kind: StoreKind) {
    let s = test_store(kind).await;
    let mut pending = Vec::new();
    for i in 0..7 {
        let mut e = email("p");
        if i % 2 == 0 {
            e.scheduled_at = Some(t0() + Duration::hours(1));
        }
        pending.push(insert(s.store.as_ref(), e, t0() + Duration::milliseconds(i)).await);
    }
    let sent = insert(s.store.as_ref(), email("s"), t0()).await;
    s.store
        .claim_emails(&[sent], &claim("w", t0()))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.store.pending_emails(after, 3).await.unwrap();
        seen.extend(page.iter().map(|d| d.id));
        if page.len() < 3 {
            break;
        }
        after = page.last().map(|d| d.id);
    }
    pending.sort();
    assert_eq!(
        seen, pending,
        "every pending email once, in id order; not the claimed one"
    );
}

pub async fn queue_stats_count_pending_and_find_the_oldest(kind: StoreKind) {
    let s = test_store(kind).await;
    insert(s.store.as_ref(), email("a"), t0()).await;
    let b = insert(s.store.as_ref(), email("b"), t0() + Duration::seconds(30)).await;
    let mut later = email("later");
    later.scheduled_at = Some(t0() + Duration::hours(1));
    insert(s.store.as_ref(), later, t0()).await;
    s.store
        .claim_emails(&[b], &claim("w", t0() + Duration::seconds(30)))
        .await
        .unwrap();
    let stats = s
        .store
        .queue_stats(t0() + Duration::minutes(1))
        .await
        .unwrap();
    let count = |st| {
        stats
            .by_status
            .iter()
            .find(|(s, _)| *s == st)
            .map(|(_, n)| *n)
    };
    assert_eq!(count(EmailStatus::Queued), Some(1));
    assert_eq!(count(EmailStatus::Scheduled), Some(1));
    assert_eq!(count(EmailStatus::Sending), Some(1));
    assert_eq!(stats.oldest_due_at, Some(t0()));
}

pub async fn a_submitted_message_is_stored_and_claimed_whole(kind: StoreKind) {
    use mailqueue_core::{EmailAddress, Mailbox, SubmittedMessage};
    let s = test_store(kind).await;
    let message =
        b"From: a@acme.test\r\nSubject: whole\r\n\r\n8-bit \xc3\xa9t\xc3\xa9\r\n".to_vec();
    let mut e = email("whole");
    e.submitted = Some(SubmittedMessage {
        envelope_from: EmailAddress::parse("bounce@acme.test").unwrap(),
        envelope_to: vec![
            Mailbox::parse("x@example.com").unwrap(),
            Mailbox::parse("y@example.com").unwrap(),
        ],
        message_id: "<own@acme.test>".into(),
        message: message.clone(),
    });
    let id = insert(s.store.as_ref(), e, t0()).await;
    let record = s.store.get_email(id).await.unwrap().unwrap();
    let submitted = record
        .email
        .submitted
        .as_ref()
        .expect("still a submitted message");
    assert_eq!(submitted.envelope_to.len(), 2);
    assert!(
        record.attachments.is_empty(),
        "the message is no attachment"
    );
    let claimed = s
        .store
        .claim_emails(&[id], &claim("w", t0()))
        .await
        .unwrap();
    let sent = claimed[0].email.submitted.as_ref().unwrap();
    assert_eq!(sent.message, message, "the bytes come back as they were");
    assert_eq!(sent.envelope_from.as_str(), "bounce@acme.test");
    let to: Vec<&str> = claimed[0]
        .email
        .envelope_recipients()
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(to, ["x@example.com", "y@example.com"]);
}
