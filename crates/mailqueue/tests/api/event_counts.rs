//! `mailqueue_events_total` counts the events the store wrote, by type,
//! through every transition: accepted now or later, a scheduled email
//! coming due, delivered, bounced, suppressed, delayed, a reschedule of an
//! email waiting for a retry (which writes no `email.scheduled`), cancelled,
//! retried by hand, rescued after its worker vanished, and complained of
//! in a report to the bounce domain. (`email.failed` is left to the store
//! suite, which checks every change's report.)

use crate::helpers::*;
use chrono::Utc;
use mailqueue_core::events::EventType;
use mailqueue_core::store::{Claim, ListQuery};
use mailqueue_core::transition::WrittenEvents;
use mailqueue_core::EmailId;
use mailqueue_testkit::{stored_events, wait_until, RelayOptions, StoreKind, TestRelay};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Every event the store holds, by type.
async fn stored(app: &TestApp) -> WrittenEvents {
    let query = ListQuery {
        limit: 100,
        ..Default::default()
    };
    let emails = app.store.list_emails(&query).await.unwrap();
    let ids: Vec<EmailId> = emails.iter().map(|e| e.id).collect();
    stored_events(app.store.as_ref(), &ids).await
}

/// `mailqueue_events_total`, by type.
async fn counted(app: &TestApp) -> WrittenEvents {
    let metrics = app.metrics().await;
    let mut all = WrittenEvents::default();
    for t in EventType::ALL {
        let prefix = format!("mailqueue_events_total{{type=\"{t}\"}} ");
        let n = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse::<u64>().unwrap());
        all += std::iter::repeat_n(t, n as usize).collect();
    }
    all
}

async fn post(app: &TestApp, path: &str, body: &Value) -> Value {
    let (status, answer) = app.call(reqwest::Method::POST, path, &[], body).await;
    assert!(status < 300, "{path}: {status} {answer}");
    answer
}

async fn reschedule(app: &TestApp, id: &str, at: &str) {
    let body = json!({"scheduled_at": at});
    let path = format!("/v1/emails/{id}");
    let (status, answer) = app.call(reqwest::Method::PATCH, &path, &[], &body).await;
    assert_eq!(status, 200, "{answer}");
}

fn to(address: &str) -> Value {
    let mut e = minimal_email();
    e["to"] = json!([address]);
    e
}

fn scheduled(at: &str) -> Value {
    let mut e = minimal_email();
    e["scheduled_at"] = json!(at);
    e
}

async fn counts_match_what_was_written(kind: StoreKind) {
    let relay = TestRelay::start(RelayOptions {
        rcpt_replies: vec![
            ("gone@example.com".into(), 550),
            ("busy@example.com".into(), 451),
        ],
        ..Default::default()
    })
    .await;
    let env = [
        ("MAILQUEUE_SMTP_URL", relay.url()),
        // A delayed email waits long enough to be rescheduled.
        ("MAILQUEUE_RETRY_INITIAL_SECONDS", "600".into()),
        ("MAILQUEUE_RETRY_MAX_DELAY_SECONDS", "600".into()),
        ("MAILQUEUE_BOUNCE_DOMAIN", crate::bounces::DOMAIN.into()),
        ("MAILQUEUE_BOUNCE_SECRET", crate::bounces::SECRET.into()),
        ("MAILQUEUE_INBOUND_LISTEN", "127.0.0.1:0".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = spawn_app_with(kind, &env).await;

    let delivered = app.send(&minimal_email()).await;
    let bounced = app.send(&to("gone@example.com")).await;
    let soon = (Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let comes_due = app.send(&scheduled(&soon)).await;
    let delayed = app.send(&to("busy@example.com")).await;
    let later = app.send(&scheduled("in 1 hour")).await;
    app.wait_for_status(&delivered, "sent", WAIT).await;
    // Another recipient complains of the email sent to them.
    let complained = app.send(&to("complains@example.com")).await;
    app.wait_for_status(&complained, "sent", WAIT).await;
    let return_path = crate::bounces::paths()
        .address_for(complained.parse().unwrap())
        .to_string();
    let complaint = crate::bounces::arf(&return_path, "complains@example.com");
    let dir = mailqueue_testkit::TempDir::new("complaint");
    let replies = crate::bounces::report_to_mx(&app, &return_path, &complaint, &dir).await;
    assert_eq!(replies, (250, 250));
    wait_until("the complaint", WAIT, || async {
        (app.email(&complained).await["last_event"] == "complained").then_some(())
    })
    .await;
    app.wait_for_status(&bounced, "failed", WAIT).await;
    app.wait_for_status(&comes_due, "sent", WAIT).await;
    wait_until("the busy recipient's first attempt", WAIT, || async {
        (app.email(&delayed).await["last_event"] == "delivery_delayed").then_some(())
    })
    .await;

    // Waiting for a retry: the new time is no `email.scheduled`.
    reschedule(&app, &delayed, "in 2 hours").await;
    post(&app, &format!("/v1/emails/{delayed}/cancel"), &json!({})).await;
    reschedule(&app, &later, "in 2 hours").await;
    post(&app, &format!("/v1/emails/{later}/cancel"), &json!({})).await;
    // Retried by hand: its recipient is now suppressed.
    post(&app, &format!("/v1/emails/{bounced}/retry"), &json!({})).await;
    wait_until("the retried email to end suppressed", WAIT, || async {
        (app.email(&bounced).await["last_event"] == "suppressed").then_some(())
    })
    .await;

    // A worker that claimed an email and vanished: the test claims it,
    // as that worker, so the event of that claim is the test's own.
    let vanished = app.send(&scheduled("in 1 hour")).await;
    let id: EmailId = vanished.parse().unwrap();
    let due = Utc::now() + chrono::Duration::hours(1);
    let claim = Claim {
        holder: "vanished".into(),
        now: due,
        lease_expires_at: Utc::now() + chrono::Duration::milliseconds(300),
    };
    let claimed = app.store.claim_emails(&[id], &claim).await.unwrap();
    assert!(claimed[0].came_due);
    let written_by_the_test: WrittenEvents = [EventType::Sent].into_iter().collect();
    app.wait_for_status(&vanished, "sent", WAIT).await;

    // A worker counts right after its write commits: allow it that moment.
    let stored = stored(&app).await;
    let mut last = WrittenEvents::default();
    for _ in 0..50 {
        last = counted(&app).await;
        last += written_by_the_test;
        if last == stored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        last, stored,
        "counted (plus the test's own claim) against stored"
    );
    // `email.failed` needs an email out of retries or given up by the
    // rescuer; the store suite checks what those report.
    for t in EventType::ALL
        .into_iter()
        .filter(|t| *t != EventType::Failed)
    {
        assert!(stored.count(t) > 0, "the scenario writes {t}");
    }
    app.stop().await.unwrap();
}

#[tokio::test]
async fn event_counts_match_what_was_written_sqlite() {
    counts_match_what_was_written(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn event_counts_match_what_was_written_postgres() {
    counts_match_what_was_written(StoreKind::Postgres).await;
}
