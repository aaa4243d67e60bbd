//! Retention: only finished emails older than the limit go, with what
//! hangs off them; contents go earlier when asked; pending and recent
//! emails stay, even while delivery runs. Rows are backdated with the
//! times given to the store, never by waiting.

use crate::support::*;
use chrono::{DateTime, Duration, Utc};
use mailqueue_core::delivery::{DeliveryError, FailureClass, SmtpReply};
use mailqueue_core::store::{AttemptOutcome, AttemptResult, ChangeOutcome, InsertGroup, Store};
use mailqueue_core::{EmailId, EmailStatus};
use mailqueue_testkit::{test_store, StoreKind};

fn sent() -> AttemptResult {
    AttemptResult::Sent(SmtpReply {
        code: 250,
        message: "2.0.0 Ok".into(),
    })
}

fn failed() -> AttemptResult {
    AttemptResult::Failed(DeliveryError::permanent(
        FailureClass::Reply5xx,
        Some(550),
        "550 no such user",
    ))
}

/// Inserts, claims and finishes an email at `at` (a second later).
async fn finished(
    store: &dyn Store,
    e: mailqueue_core::NewEmail,
    at: DateTime<Utc>,
    result: AttemptResult,
) -> EmailId {
    let id = insert(store, e, at).await;
    store.claim_emails(&[id], &claim("w", at)).await.unwrap();
    store
        .record_outcomes(&[AttemptOutcome {
            email_id: id,
            attempt: 1,
            claim: 1,
            started_at: at,
            finished_at: at + Duration::seconds(1),
            result,
            rejected: vec![],
            suppressed: vec![],
        }])
        .await
        .unwrap();
    id
}

async fn gone(store: &dyn Store, id: EmailId) -> bool {
    store.get_email(id).await.unwrap().is_none()
        && store.list_attempts(id).await.unwrap().is_empty()
        && store.list_email_events(id).await.unwrap().is_empty()
}

pub async fn only_old_finished_emails_are_deleted_with_what_hangs_off_them(kind: StoreKind) {
    let s = test_store(kind).await;
    let st = s.store.as_ref();
    let old_sent = finished(st, full_email(), t0(), sent()).await;
    let old_failed = finished(st, email("failed"), t0(), failed()).await;
    let old_cancelled = insert(st, email("cancelled"), t0()).await;
    st.cancel_email(old_cancelled, t0()).await.unwrap();
    let old_queued = insert(st, email("still waiting"), t0()).await;
    let old_sending = insert(st, email("in flight"), t0()).await;
    st.claim_emails(&[old_sending], &claim("w", t0()))
        .await
        .unwrap();
    let recent = finished(st, email("recent"), t0() + Duration::days(40), sent()).await;
    let cutoff = t0() + Duration::days(30);
    // Batches of two: the oldest go first, until none is left.
    assert_eq!(st.purge_finished_emails(cutoff, 2).await.unwrap(), 2);
    assert_eq!(st.purge_finished_emails(cutoff, 2).await.unwrap(), 1);
    assert_eq!(st.purge_finished_emails(cutoff, 2).await.unwrap(), 0);
    for id in [old_sent, old_failed, old_cancelled] {
        assert!(gone(st, id).await, "{id} was deleted with its history");
    }
    for (id, status) in [
        (old_queued, EmailStatus::Queued),
        (old_sending, EmailStatus::Sending),
        (recent, EmailStatus::Sent),
    ] {
        let kept = st.get_email(id).await.unwrap().expect("kept");
        assert_eq!(kept.status, status);
        assert!(!st.list_email_events(id).await.unwrap().is_empty());
    }
    assert_eq!(st.list_attempts(recent).await.unwrap().len(), 1);
    // The oldest email kept is now the oldest pending one.
    assert_eq!(st.oldest_email_created_at().await.unwrap(), Some(t0()));
    st.cancel_email(old_queued, t0()).await.unwrap();
    st.record_outcomes(&[AttemptOutcome {
        email_id: old_sending,
        attempt: 1,
        claim: 1,
        started_at: t0(),
        finished_at: t0() + Duration::seconds(1),
        result: sent(),
        rejected: vec![],
        suppressed: vec![],
    }])
    .await
    .unwrap();
    assert_eq!(st.purge_finished_emails(cutoff, 500).await.unwrap(), 2);
    assert_eq!(
        st.oldest_email_created_at().await.unwrap(),
        Some(t0() + Duration::days(40))
    );
}

pub async fn content_retention_drops_bodies_and_attachment_bytes_only(kind: StoreKind) {
    let s = test_store(kind).await;
    let st = s.store.as_ref();
    let old = finished(st, full_email(), t0(), failed()).await;
    let pending = insert(st, full_email(), t0()).await;
    let recent = finished(st, full_email(), t0() + Duration::days(10), sent()).await;
    let now = t0() + Duration::days(8);
    let cutoff = now - Duration::days(7);
    assert_eq!(st.purge_email_contents(cutoff, now, 500).await.unwrap(), 1);
    assert_eq!(
        st.purge_email_contents(cutoff, now, 500).await.unwrap(),
        0,
        "once is enough"
    );
    let r = st
        .get_email(old)
        .await
        .unwrap()
        .expect("the metadata stays");
    assert_eq!(r.content_purged_at, Some(now));
    assert_eq!((r.email.text, r.email.html), (None, None));
    assert_eq!(r.email.subject, full_email().subject);
    assert_eq!(r.email.to, full_email().to);
    assert_eq!(r.email.tags, full_email().tags);
    assert_eq!(r.attachments.len(), 2, "the files are still named");
    assert_eq!(st.list_attempts(old).await.unwrap().len(), 1);
    // Without its contents a failed email cannot be sent again.
    assert_eq!(
        st.retry_failed_email(old, now).await.unwrap(),
        ChangeOutcome::TooLate(EmailStatus::Failed)
    );
    for id in [recent, pending] {
        let r = st.get_email(id).await.unwrap().unwrap();
        assert_eq!(r.content_purged_at, None);
        assert!(r.email.text.is_some() && r.email.html.is_some());
    }
    // The pending email is claimed with every byte of its attachments.
    let claimed = st.claim_emails(&[pending], &claim("w", now)).await.unwrap();
    assert_eq!(claimed[0].email.attachments, full_email().attachments);
    // Deleting an email whose contents went first works the same.
    assert_eq!(
        st.purge_finished_emails(now, 500).await.unwrap(),
        1,
        "only the old email is past the email retention"
    );
    assert!(gone(st, old).await);
}

pub async fn a_purge_during_delivery_loses_nothing(kind: StoreKind) {
    let s = test_store(kind).await;
    let st = s.store.clone();
    let old: Vec<EmailId> = {
        let mut ids = Vec::new();
        for i in 0..60 {
            ids.push(finished(st.as_ref(), email(&format!("old {i}")), t0(), sent()).await);
        }
        ids
    };
    let now = t0() + Duration::days(31);
    let fresh: Vec<_> = (0..60)
        .map(|i| to_insert(email(&format!("fresh {i}")), now))
        .collect();
    let fresh_ids: Vec<EmailId> = fresh.iter().map(|e| e.id).collect();
    st.insert_emails(&[InsertGroup {
        emails: fresh.into(),
        idempotency: None,
    }])
    .await
    .unwrap();
    let purge = {
        let st = st.clone();
        tokio::spawn(async move {
            let mut total = 0;
            loop {
                let n = st
                    .purge_finished_emails(t0() + Duration::days(1), 7)
                    .await
                    .unwrap();
                total += n;
                if n == 0 {
                    return total;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    for chunk in fresh_ids.chunks(6) {
        let claimed = st.claim_emails(chunk, &claim("w", now)).await.unwrap();
        assert_eq!(claimed.len(), chunk.len());
        let outcomes: Vec<AttemptOutcome> = chunk
            .iter()
            .map(|id| AttemptOutcome {
                email_id: *id,
                attempt: 1,
                claim: 1,
                started_at: now,
                finished_at: now + Duration::seconds(1),
                result: sent(),
                rejected: vec![],
                suppressed: vec![],
            })
            .collect();
        st.record_outcomes(&outcomes).await.unwrap();
    }
    assert_eq!(purge.await.unwrap(), 60);
    for id in &fresh_ids {
        let r = st.get_email(*id).await.unwrap().expect("kept");
        assert_eq!(r.status, EmailStatus::Sent);
        assert_eq!(st.list_attempts(*id).await.unwrap().len(), 1);
    }
    for id in &old {
        assert!(gone(st.as_ref(), *id).await);
    }
}

pub async fn stale_statistics_are_refreshed(kind: StoreKind) {
    let s = test_store(kind).await;
    let st = s.store.as_ref();
    let many: Vec<_> = (0..1500)
        .map(|i| to_insert(email(&format!("{i}")), t0()))
        .collect();
    st.insert_emails(&[InsertGroup {
        emails: many.into(),
        idempotency: None,
    }])
    .await
    .unwrap();
    match kind {
        // SQLite's `PRAGMA optimize` names nothing; it must simply work.
        StoreKind::Sqlite => assert!(st.tend_tables().await.unwrap().is_empty()),
        // The activity counters reach PostgreSQL's statistics within a
        // second or so of the commit.
        StoreKind::Postgres => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let tended = st.tend_tables().await.unwrap();
                if tended.iter().any(|t| t == "emails") {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "emails was never analysed: {tended:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            // Fresh now: nothing more to do for emails.
            assert!(!st
                .tend_tables()
                .await
                .unwrap()
                .iter()
                .any(|t| t == "emails"));
        }
    }
}

pub async fn old_unclassified_reports_are_deleted(kind: StoreKind) {
    use mailqueue_core::store::UnclassifiedReport;
    let s = test_store(kind).await;
    let report = |at| UnclassifiedReport {
        id: mailqueue_core::EmailId::generate(at).0,
        received_at: at,
        mail_from: String::new(),
        rcpt_to: "b-x@bounces.acme.test".into(),
        email_id: None,
        reason: "not a report".into(),
        message: b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
    };
    let old = t0() - chrono::Duration::days(40);
    for at in [old, old, t0()] {
        s.store.keep_unclassified_report(&report(at)).await.unwrap();
    }
    let cutoff = t0() - chrono::Duration::days(30);
    assert_eq!(
        s.store.purge_unclassified_reports(cutoff, 1).await.unwrap(),
        1
    );
    assert_eq!(
        s.store
            .purge_unclassified_reports(cutoff, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.store
            .purge_unclassified_reports(cutoff, 10)
            .await
            .unwrap(),
        0,
        "the new one stays"
    );
}
