//! Retention through the real application: finished emails past
//! `MAILQUEUE_RETENTION_DAYS` answer 404 with their history, their
//! contents go earlier with `MAILQUEUE_CONTENT_RETENTION_DAYS`, pending
//! emails stay, and `/metrics` counts what went. Time moves on the app's
//! injected clock; the maintenance loop runs on short real ticks.

use crate::helpers::*;
use chrono::Utc;
use mailqueue_core::ManualClock;
use mailqueue_testkit::{wait_until, StoreKind};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// Maintenance every 0.1 s, retention looked at as often.
const FAST_MAINTENANCE: [(&str, &str); 2] = [
    ("MAILQUEUE_MAINTENANCE_LEASE_SECONDS", "0.3"),
    ("MAILQUEUE_RETENTION_INTERVAL_SECONDS", "0.1"),
];

async fn app_on(kind: StoreKind, extra: &[(&str, &str)]) -> (TestApp, ManualClock) {
    let clock = ManualClock::new(Utc::now());
    let mut env = FAST_MAINTENANCE.to_vec();
    env.extend_from_slice(extra);
    let app = spawn_app_with_clock(kind, &env, Arc::new(clock.clone())).await;
    (app, clock)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l[name.len()..].trim().parse().ok())
}

/// A webhook subscribed to the sent email's events and to domain.created,
/// so its deliveries (and an attempt of one) exist to be cascaded;
/// PostgreSQL only.
async fn subscribe_a_webhook(app: &TestApp) -> Option<sqlx::PgConnection> {
    let db = app.db.as_ref()?;
    let mut conn = db.connect().await;
    sqlx::query(
        "INSERT INTO webhooks (id, endpoint, events, status, signing_secret, created_at) \
         VALUES (gen_random_uuid(), 'http://127.0.0.1:9/hook', ARRAY['email.sent', 'email.delivered', 'domain.created'], \
                 'enabled', 'whsec_dGVzdA==', now())",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    Some(conn)
}

/// Rows left in each table hanging off `emails`.
async fn rows_hanging_off(conn: &mut sqlx::PgConnection) -> Vec<(String, i64)> {
    let mut counts = Vec::new();
    for table in [
        "email_contents",
        "email_attachments",
        "email_attempts",
        "email_events",
        "webhook_deliveries",
        "webhook_attempts",
        "idempotency_keys",
        "account_events",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        counts.push((table.to_string(), n));
    }
    counts
}

async fn finished_emails_answer_404_after_retention(kind: StoreKind) {
    let secret = (
        "MAILQUEUE_SECRET_KEY",
        "0123456789abcdef0123456789abcdef-test",
    );
    let (app, clock) = app_on(kind, &[secret]).await;
    let mut pg = subscribe_a_webhook(&app).await;
    // A domain event, kept as long as emails are.
    let (status, domain) = app
        .call(
            reqwest::Method::POST,
            "/v1/domains",
            &[],
            &json!({"name": "retained.test", "dkim_algorithm": "ed25519"}),
        )
        .await;
    assert_eq!(status, 201, "{domain}");
    let headers = [("Idempotency-Key", "order-7")];
    let mut with_file = minimal_email();
    with_file["attachments"] = json!([{"filename": "a.txt", "content": "aGk="}]);
    let (status, first) = app
        .call(reqwest::Method::POST, "/v1/emails", &headers, &with_file)
        .await;
    assert_eq!(status, 202, "{first}");
    let sent = first["id"].as_str().unwrap().to_string();
    app.wait_for_status(&sent, "sent", WAIT).await;
    let mut later = minimal_email();
    later["scheduled_at"] = json!((Utc::now() + chrono::Duration::days(90)).to_rfc3339());
    let pending = app.send(&later).await;
    assert_eq!(app.email(&pending).await["status"], "scheduled");
    if let Some(conn) = pg.as_mut() {
        sqlx::query(
            "INSERT INTO webhook_attempts (webhook_id, event_id, attempted_at, status_code, duration_ms) \
             SELECT webhook_id, event_id, now(), 500, 3 FROM webhook_deliveries",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        let before = rows_hanging_off(conn).await;
        assert!(before.iter().all(|(_, n)| *n > 0), "{before:?}");
    }

    clock.advance(chrono::Duration::days(31));
    wait_until("the sent email to be purged", WAIT, || async {
        (app.get(&format!("/v1/emails/{sent}")).await.0 == 404).then_some(())
    })
    .await;
    for path in ["attempts", "events"] {
        let (status, body) = app.get(&format!("/v1/emails/{sent}/{path}")).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["name"], "not_found", "{body}");
    }
    assert_eq!(app.email(&pending).await["status"], "scheduled");
    if let Some(conn) = pg.as_mut() {
        // What is left is the scheduled email's: its content and event.
        let after: Vec<(String, i64)> = rows_hanging_off(conn).await;
        let expected: Vec<(String, i64)> = [
            ("email_contents", 1),
            ("email_attachments", 0),
            ("email_attempts", 0),
            ("email_events", 1),
            ("webhook_deliveries", 0),
            ("webhook_attempts", 0),
            ("idempotency_keys", 0),
            ("account_events", 0),
        ]
        .iter()
        .map(|(t, n)| (t.to_string(), *n))
        .collect();
        assert_eq!(after, expected);
    }
    let created: chrono::DateTime<Utc> = app.email(&pending).await["created_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let text = wait_until("the metrics of the purge", WAIT, || async {
        let text = app.metrics().await;
        (metric(&text, "mailqueue_oldest_email_created_timestamp_seconds")
            == Some(created.timestamp() as f64))
        .then_some(text)
    })
    .await;
    assert_eq!(
        metric(&text, "mailqueue_retention_purged_total{what=\"emails\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "mailqueue_retention_purged_total{what=\"account_events\"}"
        ),
        Some(1.0),
        "the domain.created event went after as many days: {text}"
    );
    // The idempotency key went with the email it answered for.
    let (status, again) = app
        .call(reqwest::Method::POST, "/v1/emails", &headers, &with_file)
        .await;
    assert_eq!(status, 202, "{again}");
    assert_ne!(again["id"], first["id"]);
}

#[tokio::test]
async fn finished_emails_answer_404_after_retention_sqlite() {
    finished_emails_answer_404_after_retention(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn finished_emails_answer_404_after_retention_postgres() {
    finished_emails_answer_404_after_retention(StoreKind::Postgres).await;
}

async fn contents_go_first_and_the_email_says_so(kind: StoreKind) {
    let (app, clock) = app_on(kind, &[("MAILQUEUE_CONTENT_RETENTION_DAYS", "7")]).await;
    let body = json!({
        "from": "Acme <noreply@acme.test>", "to": ["user@example.com"], "subject": "Invoice",
        "html": "<p>Your invoice</p>", "text": "Your invoice",
        "attachments": [{"filename": "invoice.pdf", "content": "JVBERi0xLjQ="}]
    });
    let id = app.send(&body).await;
    let before = app.wait_for_status(&id, "sent", WAIT).await;
    assert_eq!(before["content_purged_at"], Value::Null);
    assert_eq!(before["html"], "<p>Your invoice</p>");

    clock.advance(chrono::Duration::days(8));
    let after = wait_until("the contents to be dropped", WAIT, || async {
        let e = app.email(&id).await;
        e["content_purged_at"].is_string().then_some(e)
    })
    .await;
    assert_eq!(after["html"], Value::Null, "{after}");
    assert_eq!(after["text"], Value::Null, "{after}");
    assert_eq!(after["subject"], "Invoice");
    assert_eq!(after["status"], "sent");
    assert_eq!(after["to"], json!(["user@example.com"]));
    assert_eq!(after["attachments"][0]["filename"], "invoice.pdf");
    let (status, attempts) = app.get(&format!("/v1/emails/{id}/attempts")).await;
    assert_eq!(status, 200);
    assert_eq!(
        attempts["data"].as_array().map(Vec::len),
        Some(1),
        "{attempts}"
    );
    let text = app.metrics().await;
    assert_eq!(
        metric(&text, "mailqueue_retention_purged_total{what=\"contents\"}"),
        Some(1.0),
        "{text}"
    );
    // The rest follows at the email retention (30 days by default).
    clock.advance(chrono::Duration::days(23));
    wait_until("the email to be purged", WAIT, || async {
        (app.get(&format!("/v1/emails/{id}")).await.0 == 404).then_some(())
    })
    .await;
}

#[tokio::test]
async fn contents_go_first_and_the_email_says_so_sqlite() {
    contents_go_first_and_the_email_says_so(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn contents_go_first_and_the_email_says_so_postgres() {
    contents_go_first_and_the_email_says_so(StoreKind::Postgres).await;
}
