//! Events through the API: an email's history, `last_event`, and one
//! recipient refused among three.

use crate::helpers::*;
use mailqueue_testkit::{RelayOptions, StoreKind, TestRelay};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn history(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/v1/emails/{id}/events")).await;
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn one_refused_of_three(kind: StoreKind) {
    let relay = TestRelay::start(RelayOptions {
        rcpt_replies: vec![("gone@example.com".into(), 550)],
        ..Default::default()
    })
    .await;
    let app = spawn_app_with(kind, &[("MAILQUEUE_SMTP_URL", &relay.url())]).await;
    let mut e = minimal_email();
    e["to"] = json!(["a@example.com", "gone@example.com"]);
    e["cc"] = json!(["c@example.com"]);
    let id = app.send(&e).await;
    let email = app.wait_for_status(&id, "sent", WAIT).await;
    assert_eq!(email["last_event"], "bounced", "{email}");
    let messages = relay.wait_for_messages(1, WAIT).await;
    assert_eq!(messages[0].rcpt_to, ["a@example.com", "c@example.com"]);

    let events = history(&app, &id).await;
    assert_eq!(
        types(&events),
        ["email.sent", "email.delivered", "email.bounced"]
    );
    let bounced = &events[2];
    assert_eq!(bounced["to"], json!(["gone@example.com"]));
    assert_eq!(bounced["bounce"]["type"], "Permanent");
    let diagnostic = bounced["bounce"]["diagnosticCode"][0].as_str().unwrap();
    assert!(diagnostic.starts_with("smtp; 550"), "{diagnostic}");
    assert_eq!(bounced["email_id"], id.as_str());

    // The next email to the bounced address is not sent to it; one whose
    // only recipient it is ends without an SMTP transaction.
    let mut both = minimal_email();
    both["to"] = json!(["gone@example.com", "b@example.com"]);
    let both = app.send(&both).await;
    app.wait_for_status(&both, "sent", WAIT).await;
    let mut alone = minimal_email();
    alone["to"] = json!(["gone@EXAMPLE.com"]);
    let alone = app.send(&alone).await;
    let ended = app.wait_for_status(&alone, "failed", WAIT).await;
    assert_eq!(ended["last_event"], "suppressed", "{ended}");
    let events = history(&app, &alone).await;
    assert_eq!(types(&events), ["email.sent", "email.suppressed"]);
    assert_eq!(events[1]["suppressed"]["reason"], "previous_bounce");
    let messages = relay.wait_for_messages(2, WAIT).await;
    assert_eq!(messages.len(), 2, "nothing went out for the suppressed one");
    assert_eq!(messages[1].rcpt_to, ["b@example.com"]);
    let transactions = relay
        .commands()
        .iter()
        .filter(|c| c.line.starts_with("MAIL FROM"))
        .count();
    assert_eq!(
        transactions, 2,
        "no SMTP transaction for the suppressed one"
    );
    let events = history(&app, &both).await;
    assert_eq!(
        types(&events),
        ["email.sent", "email.delivered", "email.suppressed"]
    );
    let metrics = app.metrics().await;
    for counted in [
        "mailqueue_events_total{type=\"email.suppressed\"} 2",
        "mailqueue_events_total{type=\"email.sent\"} 3",
        "mailqueue_events_total{type=\"email.bounced\"} 1",
        "mailqueue_events_total{type=\"email.delivered\"} 2",
    ] {
        assert!(metrics.contains(counted), "{counted}: {metrics}");
    }
}

#[tokio::test]
async fn one_refused_recipient_bounces_alone_and_is_suppressed_on_sqlite() {
    one_refused_of_three(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn one_refused_recipient_bounces_alone_and_is_suppressed_on_postgres() {
    one_refused_of_three(StoreKind::Postgres).await;
}

#[tokio::test]
async fn a_scheduled_then_cancelled_email_tells_its_history() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let mut e = minimal_email();
    e["scheduled_at"] = json!("2099-01-01T00:00:00Z");
    let id = app.send(&e).await;
    assert_eq!(app.email(&id).await["last_event"], "scheduled");
    let r = app
        .post(&format!("/v1/emails/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        types(&history(&app, &id).await),
        ["email.scheduled", "email.canceled"]
    );
    assert_eq!(app.email(&id).await["last_event"], "canceled");
    let (status, body) = app
        .get("/v1/emails/00000000-0000-7000-8000-000000000000/events")
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["name"], "not_found", "{body}");
}
