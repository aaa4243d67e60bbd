//! Delivery through a real SMTP server.

use crate::helpers::*;
use base64::Engine;
use mail_parser::MimeHeaders;
use mailqueue_testkit::{SinkOptions, SmtpSink, StoreKind};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn app_with_sink(kind: StoreKind, sink: &SmtpSink) -> TestApp {
    spawn_app_with(kind, &[("MAILQUEUE_SMTP_URL", &sink.url())]).await
}

fn rich_email() -> Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    json!({
        "from": "Zoë from Acme <noreply@acme.test>",
        "to": ["first@example.com", "Second Person <second@example.com>"],
        "cc": "copy@example.com",
        "bcc": ["hidden@example.com"],
        "reply_to": "support@acme.test",
        "subject": "Grüße aus Köln — ✓",
        "text": "Plain text: naïve café",
        "html": "<p>HTML: naïve café <img src=\"cid:logo\"></p>",
        "headers": {"X-Campaign": "spring-2026", "List-Unsubscribe": "<mailto:u@acme.test>"},
        "attachments": [
            {"filename": "report.pdf", "content": b64(b"%PDF-1.4 fake report")},
            {"filename": "data.csv", "content": b64(b"a,b\n1,2\n"), "content_type": "text/csv"},
            {"filename": "logo.png", "content": [137, 80, 78, 71, 13, 10], "content_id": "logo"}
        ],
        "tags": [{"name": "category", "value": "newsletter"}]
    })
}

async fn the_relay_receives_everything_that_was_sent(kind: StoreKind) {
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with_sink(kind, &sink).await;
    let id = app.send(&rich_email()).await;
    let email = app.wait_for_status(&id, "sent", WAIT).await;
    assert_eq!(email["attempts"], 1);
    assert!(
        email["last_smtp_reply"]
            .as_str()
            .unwrap()
            .starts_with("250"),
        "{email}"
    );
    let received = sink.wait_for_messages(1, WAIT).await;
    let m = &received[0];
    assert_eq!(m.mail_from, "noreply@acme.test");
    let mut rcpt = m.rcpt_tos.clone();
    rcpt.sort();
    assert_eq!(
        rcpt,
        [
            "copy@example.com",
            "first@example.com",
            "hidden@example.com",
            "second@example.com"
        ]
    );
    let raw = String::from_utf8_lossy(&m.raw()).to_string();
    assert!(
        !raw.contains("hidden@example.com"),
        "bcc never appears in the headers"
    );
    let parsed = m.parsed();
    assert_eq!(parsed.subject(), Some("Grüße aus Köln — ✓"));
    assert_eq!(
        parsed.from().unwrap().first().unwrap().name(),
        Some("Zoë from Acme")
    );
    assert_eq!(
        parsed.body_text(0).unwrap().trim(),
        "Plain text: naïve café"
    );
    assert!(parsed.body_html(0).unwrap().contains("naïve café"));
    assert_eq!(
        parsed.message_id(),
        Some(
            email["message_id"]
                .as_str()
                .unwrap()
                .trim_matches(['<', '>'])
        )
    );
    assert!(parsed.date().is_some());
    assert_eq!(
        parsed.header_raw("X-Campaign").map(str::trim),
        Some("spring-2026")
    );
    assert_eq!(
        parsed.header_raw("List-Unsubscribe").map(str::trim),
        Some("<mailto:u@acme.test>")
    );
    assert_eq!(
        parsed.reply_to().unwrap().first().unwrap().address(),
        Some("support@acme.test")
    );
    let files: Vec<(String, Vec<u8>, String)> = parsed
        .attachments()
        .map(|a| {
            let ct = a
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
                .unwrap_or_default();
            (
                a.attachment_name().unwrap_or("").to_string(),
                a.contents().to_vec(),
                ct,
            )
        })
        .collect();
    assert!(
        files.contains(&(
            "report.pdf".into(),
            b"%PDF-1.4 fake report".to_vec(),
            "application/pdf".into()
        )),
        "{files:?}"
    );
    assert!(
        files.contains(&("data.csv".into(), b"a,b\n1,2\n".to_vec(), "text/csv".into())),
        "{files:?}"
    );
    assert!(
        files.contains(&(
            "logo.png".into(),
            vec![137, 80, 78, 71, 13, 10],
            "image/png".into()
        )),
        "{files:?}"
    );
    assert!(
        raw.contains("Content-ID: <logo>"),
        "the inline image keeps its content id"
    );
}

#[tokio::test]
async fn the_relay_receives_everything_that_was_sent_sqlite() {
    the_relay_receives_everything_that_was_sent(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn the_relay_receives_everything_that_was_sent_postgres() {
    the_relay_receives_everything_that_was_sent(StoreKind::Postgres).await;
}

#[tokio::test]
async fn a_451_then_250_ends_sent_after_two_attempts() {
    let sink = SmtpSink::start(SinkOptions {
        replies: vec![451, 250],
        ..Default::default()
    })
    .await;
    let app = app_with_sink(StoreKind::Sqlite, &sink).await;
    let id = app.send(&minimal_email()).await;
    let email = app.wait_for_status(&id, "sent", WAIT).await;
    assert_eq!(email["attempts"], 2, "{email}");
    assert_eq!(
        email["last_error"],
        Value::Null,
        "a sent email carries no error: {email}"
    );
    let (_, attempts) = app.get(&format!("/v1/emails/{id}/attempts")).await;
    let outcomes: Vec<&str> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["transient_failure", "sent"]);
    assert_eq!(attempts["data"][0]["smtp_code"], 451);
    assert_eq!(
        sink.data_attempts().iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![451, 250]
    );
    assert_eq!(sink.messages().len(), 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mailqueue_smtp_errors_total{class=\"smtp_4xx\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_550_fails_at_once_and_retry_sends_it_again() {
    let sink = SmtpSink::start(SinkOptions {
        replies: vec![550],
        ..Default::default()
    })
    .await;
    let app = app_with_sink(StoreKind::Sqlite, &sink).await;
    let id = app.send(&minimal_email()).await;
    let email = app.wait_for_status(&id, "failed", WAIT).await;
    assert_eq!(email["attempts"], 1);
    // A 5xx is a bounce in Resend's words; the status says it ended.
    assert_eq!(email["last_event"], "bounced");
    assert!(
        email["last_error"].as_str().unwrap().contains("550"),
        "{email}"
    );
    assert!(sink.messages().is_empty());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mailqueue_smtp_errors_total{class=\"smtp_5xx\"} 1"),
        "{metrics}"
    );
    // The retry endpoint queues it again; the sink now accepts.
    let r = app
        .post(&format!("/v1/emails/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let email = app.wait_for_status(&id, "sent", WAIT).await;
    assert_eq!(email["attempts"], 2);
    let r = app
        .post(&format!("/v1/emails/{id}/retry"), &json!({}))
        .await;
    assert_eq!(r.status(), 409, "only failed emails are retried");
}

#[tokio::test]
async fn a_relay_that_is_down_then_up_ends_sent() {
    let mut sink = SmtpSink::start(SinkOptions::default()).await;
    sink.stop().await;
    let app = app_with_sink(StoreKind::Sqlite, &sink).await;
    let id = app.send(&minimal_email()).await;
    let delayed = mailqueue_testkit::wait_until("a failed attempt", WAIT, || async {
        let e = app.email(&id).await;
        (e["last_event"] == "delivery_delayed").then_some(e)
    })
    .await;
    assert!(
        delayed["last_error"].as_str().unwrap().len() > 3,
        "{delayed}"
    );
    let sink = sink.restart(SinkOptions::default()).await;
    let email = app.wait_for_status(&id, "sent", WAIT).await;
    assert!(email["attempts"].as_u64().unwrap() >= 2);
    assert_eq!(sink.messages().len(), 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mailqueue_smtp_errors_total{class=\"connection\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_scheduled_email_is_not_sent_before_its_time() {
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with_sink(StoreKind::Sqlite, &sink).await;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let mut e = minimal_email();
    e["scheduled_at"] = json!(at.to_rfc3339());
    let id = app.send(&e).await;
    let email = app.wait_for_status(&id, "sent", WAIT).await;
    let sent_at: chrono::DateTime<chrono::Utc> =
        email["sent_at"].as_str().unwrap().parse().unwrap();
    assert!(
        sent_at >= at - chrono::Duration::milliseconds(1),
        "sent at {sent_at}, scheduled for {at}"
    );
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn high_priority_emails_overtake_waiting_ones() {
    // One worker and a slow relay, so a backlog builds. At most four emails
    // are claimed ahead of the one send slot, so a high-priority email
    // overtakes every waiting email but those four.
    let slow = SmtpSink::start(SinkOptions {
        delay: Duration::from_millis(150),
        ..Default::default()
    })
    .await;
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[
            ("MAILQUEUE_SMTP_URL", &slow.url()),
            ("MAILQUEUE_WORKER_CONCURRENCY", "1"),
        ],
    )
    .await;
    let first = app.send(&minimal_email()).await;
    let mut low = minimal_email();
    low["priority"] = json!("low");
    let mut lows = Vec::new();
    for _ in 0..8 {
        lows.push(app.send(&low).await);
    }
    let mut high = minimal_email();
    high["priority"] = json!("high");
    let high = app.send(&high).await;
    let sent_at = |v: Value| v["sent_at"].as_str().unwrap().to_string();
    app.wait_for_status(&lows[7], "sent", WAIT).await;
    let high_at = sent_at(app.wait_for_status(&high, "sent", WAIT).await);
    let fifth_low = sent_at(app.email(&lows[4]).await);
    assert!(
        high_at < fifth_low,
        "high sent at {high_at}, the fifth low at {fifth_low}"
    );
    assert_eq!(app.email(&first).await["status"], "sent");
}
