//! Webhook delivery end to end: a real SMTP sink, real HTTP receivers,
//! both stores. An endpoint that fails gets the same event again (same
//! `svix-id`, valid signatures) until it answers 2xx; one that hangs slows
//! neither sending nor the other webhooks; one that keeps failing is
//! disabled; a worker killed with deliveries in flight loses none.

use crate::fleet::Fleet;
use crate::helpers::*;
use mailqueue_core::store::WebhookOutbox;
use mailqueue_core::webhooks::SigningSecret;
use mailqueue_store::{PgSettings, PgStore};
use mailqueue_testkit::{
    wait_until, ReceivedHook, ReceiverAnswers, SinkOptions, SmtpSink, StoreKind, WebhookReceiver,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Settings that keep webhook retries fast enough for tests.
const FAST: [(&str, &str); 3] = [
    ("MAILQUEUE_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("MAILQUEUE_WEBHOOK_RETRY_SCHEDULE", "200ms,200ms,200ms"),
    ("MAILQUEUE_WEBHOOK_POLL_SECONDS", "0.05"),
];

async fn app_with(kind: StoreKind, sink: &SmtpSink, extra: &[(&str, &str)]) -> TestApp {
    let url = sink.url();
    let mut env: Vec<(&str, &str)> = vec![("MAILQUEUE_SMTP_URL", &url)];
    env.extend(FAST);
    env.extend(extra);
    spawn_app_with(kind, &env).await
}

/// Creates a webhook; returns its id and signing secret.
pub async fn subscribe(app: &TestApp, endpoint: &str, events: &[&str]) -> (String, String) {
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/webhooks",
            &[],
            &json!({"endpoint": endpoint, "events": events}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    (
        body["id"].as_str().unwrap().to_string(),
        body["signing_secret"].as_str().unwrap().to_string(),
    )
}

/// Whether one of the request's `v1,` signatures is `secret`'s.
pub fn signed_by(hook: &ReceivedHook, secret: &str) -> bool {
    let secret = SigningSecret::parse(secret).unwrap();
    let timestamp: i64 = hook.header("svix-timestamp").parse().unwrap();
    let expected = secret.sign(hook.header("svix-id"), timestamp, hook.body.as_bytes());
    hook.header("svix-signature")
        .split(' ')
        .any(|s| s == expected)
}

async fn a_failing_endpoint_gets_the_same_event_until_it_answers(kind: StoreKind) {
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with(kind, &sink, &[]).await;
    let receiver = WebhookReceiver::start(ReceiverAnswers::Statuses(vec![500, 500]));
    let (webhook, secret) = subscribe(&app, &receiver.url(), &["email.delivered"]).await;
    let mut email = minimal_email();
    email["tags"] = json!([{"name": "kind", "value": "welcome"}]);
    let id = app.send(&email).await;

    let hooks = receiver.wait_for(3, WAIT).await;
    let svix_id = hooks[0].header("svix-id").to_string();
    for hook in &hooks {
        assert_eq!(
            hook.header("svix-id"),
            svix_id,
            "the same id on every retry"
        );
        assert!(signed_by(hook, &secret), "{:?}", hook.headers);
        assert_eq!(hook.header("content-type"), "application/json");
        let payload = hook.json();
        assert_eq!(payload["type"], "email.delivered");
        assert_eq!(payload["data"]["email_id"], id.as_str());
        assert_eq!(payload["data"]["from"], "Acme <noreply@acme.test>");
        assert_eq!(payload["data"]["to"], json!(["user@example.com"]));
        assert_eq!(payload["data"]["subject"], "Hello");
        assert_eq!(payload["data"]["tags"], json!({"kind": "welcome"}));
    }
    let (_, events) = app.get(&format!("/v1/emails/{id}/events")).await;
    let delivered = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "email.delivered")
        .unwrap();
    assert_eq!(delivered["id"], svix_id.as_str(), "svix-id is the event id");

    let log = wait_until("the delivery to be recorded", WAIT, || async {
        let (_, d) = app
            .get(&format!("/v1/webhooks/{webhook}/events/{svix_id}"))
            .await;
        (d["status"] == "success").then_some(d)
    })
    .await;
    assert_eq!(log["attempts"], 3);
    assert_eq!(log["payload"]["type"], "email.delivered");
    assert_eq!(log["payload"]["data"]["email_id"], id.as_str());
    assert_eq!(log["last_status_code"], 200);
    let (_, list) = app.get(&format!("/v1/webhooks/{webhook}/events")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    let (status, attempts) = app
        .get(&format!("/v1/webhooks/{webhook}/events/{svix_id}/attempts"))
        .await;
    assert_eq!(status, 200, "{attempts}");
    let tries = attempts["data"].as_array().unwrap();
    let codes: Vec<&Value> = tries.iter().map(|a| &a["http_status_code"]).collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(200)]);
    assert_eq!(tries[0]["response"], "the endpoint answered 500");
    assert_eq!(tries[0]["id"], "1");
    assert!(tries.iter().all(|a| a["duration_ms"].is_u64()));
    assert_eq!(tries[2]["error"], Value::Null);

    // A replay sends it once more, same id.
    let (status, replay) = app
        .call(
            Method::POST,
            &format!("/v1/webhooks/{webhook}/events/{svix_id}/replay"),
            &[],
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{replay}");
    let hooks = receiver.wait_for(4, WAIT).await;
    assert_eq!(hooks[3].header("svix-id"), svix_id);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mailqueue_webhook_deliveries_total{outcome=\"retry\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailqueue_webhook_outbox_depth"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_same_event_until_it_answers_on_sqlite() {
    a_failing_endpoint_gets_the_same_event_until_it_answers(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_same_event_until_it_answers_on_postgres() {
    a_failing_endpoint_gets_the_same_event_until_it_answers(StoreKind::Postgres).await;
}

async fn a_hanging_endpoint_slows_neither_sending_nor_other_webhooks(kind: StoreKind) {
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with(
        kind,
        &sink,
        &[
            ("MAILQUEUE_WEBHOOK_TIMEOUT_SECONDS", "5"),
            ("MAILQUEUE_WEBHOOK_ENDPOINT_CONCURRENCY", "2"),
        ],
    )
    .await;
    let hanging = WebhookReceiver::start(ReceiverAnswers::Hang);
    let healthy = WebhookReceiver::start(ReceiverAnswers::Statuses(vec![]));
    let events = ["email.sent", "email.delivered"];
    subscribe(&app, &hanging.url(), &events).await;
    subscribe(&app, &healthy.url(), &events).await;

    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(app.send(&minimal_email()).await);
    }
    for id in &ids {
        app.wait_for_status(id, "sent", Duration::from_secs(5))
            .await;
    }
    let hooks = healthy.wait_for(20, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "sending and the healthy webhook took {took:?}: the hanging one held them up"
    );
    let mut kinds: Vec<String> = hooks
        .iter()
        .map(|h| h.json()["type"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["email.delivered", "email.sent"]);
    assert!(
        hanging.received().len() <= 2,
        "at most two requests in flight to one endpoint: {}",
        hanging.received().len()
    );
}

#[tokio::test]
async fn a_hanging_endpoint_slows_neither_sending_nor_other_webhooks_on_sqlite() {
    a_hanging_endpoint_slows_neither_sending_nor_other_webhooks(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_hanging_endpoint_slows_neither_sending_nor_other_webhooks_on_postgres() {
    a_hanging_endpoint_slows_neither_sending_nor_other_webhooks(StoreKind::Postgres).await;
}

#[tokio::test]
async fn an_endpoint_failing_too_long_is_disabled_with_its_reason() {
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with(
        StoreKind::Sqlite,
        &sink,
        &[
            ("MAILQUEUE_WEBHOOK_DISABLE_AFTER_SECONDS", "1"),
            (
                "MAILQUEUE_WEBHOOK_RETRY_SCHEDULE",
                "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms",
            ),
        ],
    )
    .await;
    let failing = WebhookReceiver::start(ReceiverAnswers::Statuses(vec![503; 100]));
    let (webhook, _) = subscribe(&app, &failing.url(), &["email.sent"]).await;
    app.send(&minimal_email()).await;
    let disabled = wait_until("the webhook to be disabled", WAIT, || async {
        let (_, w) = app.get(&format!("/v1/webhooks/{webhook}")).await;
        (w["status"] == "disabled").then_some(w)
    })
    .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("every delivery failed"),
        "{disabled}"
    );
    // That a disabled webhook is sent nothing more, however late it gets,
    // is shown round by round in the webhook crate's own tests.
    let tries = failing.received().len();
    assert!(tries >= 2, "{tries}");

    // Enabled again, its pending delivery goes out.
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{webhook}"),
            &[],
            &json!({"status": "enabled"}),
        )
        .await;
    assert_eq!(status, 200);
    failing.wait_for(tries + 1, WAIT).await;
    let (_, w) = app.get(&format!("/v1/webhooks/{webhook}")).await;
    assert_eq!(w["disabled_reason"], Value::Null, "{w}");
}

#[tokio::test]
async fn a_worker_killed_with_deliveries_in_flight_loses_none() {
    // The first five requests never get an answer: the worker is killed
    // while they are in flight.
    let receiver = WebhookReceiver::start(ReceiverAnswers::Statuses(vec![0; 5]));
    let mut fleet = Fleet::start(
        1,
        1,
        Duration::ZERO,
        &[
            ("MAILQUEUE_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("MAILQUEUE_WEBHOOK_TIMEOUT_SECONDS", "2"),
            ("MAILQUEUE_WEBHOOK_ENDPOINT_CONCURRENCY", "5"),
            ("MAILQUEUE_WEBHOOK_POLL_SECONDS", "0.1"),
        ],
    )
    .await;
    let base = fleet.apis[0].base.clone();
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(&fleet.key)
        .json(&json!({"endpoint": receiver.url(), "events": ["email.sent"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook = created["id"].as_str().unwrap().to_string();
    let mut emails = HashSet::new();
    for i in 0..5 {
        let r: Value = client
            .post(format!("{base}/v1/emails"))
            .bearer_auth(&fleet.key)
            .json(&json!({"from": "app@acme.test", "to": "u@example.com",
                          "subject": format!("kill-{i}"), "text": "x"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        emails.insert(r["id"].as_str().unwrap().to_string());
    }
    receiver.wait_for(5, WAIT).await;
    fleet.workers[0].child.kill().unwrap();
    fleet.workers[0].child.wait().unwrap();
    fleet.add_worker().await;

    let delivered = wait_until(
        "every event to be delivered",
        Duration::from_secs(60),
        || async {
            let answered: HashSet<String> = receiver.received()[5..]
                .iter()
                .map(|h| h.json()["data"]["email_id"].as_str().unwrap().to_string())
                .collect();
            (answered == emails).then_some(answered)
        },
    )
    .await;
    assert_eq!(delivered.len(), 5);
    let log = wait_until("the log to show them delivered", WAIT, || async {
        let log: Value = client
            .get(format!("{base}/v1/webhooks/{webhook}/events"))
            .bearer_auth(&fleet.key)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        log["data"]
            .as_array()?
            .iter()
            .all(|d| d["status"] == "success")
            .then_some(log)
    })
    .await;
    assert_eq!(log["data"].as_array().unwrap().len(), 5, "{log}");
}

#[tokio::test]
async fn two_workers_share_the_deliveries_without_sending_one_twice() {
    let receiver = WebhookReceiver::start(ReceiverAnswers::Statuses(vec![]));
    let fleet = Fleet::start(
        1,
        2,
        Duration::ZERO,
        &[
            ("MAILQUEUE_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("MAILQUEUE_WEBHOOK_POLL_SECONDS", "0.02"),
            ("MAILQUEUE_WEBHOOK_ENDPOINT_CONCURRENCY", "8"),
        ],
    )
    .await;
    let base = fleet.apis[0].base.clone();
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(&fleet.key)
        .json(&json!({"endpoint": receiver.url(), "events": ["email.sent", "email.delivered"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let emails: Vec<Value> = (0..40)
        .map(|i| {
            json!({"from": "app@acme.test", "to": "u@example.com",
                        "subject": format!("shared-{i}"), "text": "x"})
        })
        .collect();
    let r = client
        .post(format!("{base}/v1/emails/batch"))
        .bearer_auth(&fleet.key)
        .json(&emails)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let hooks = receiver.wait_for(80, WAIT).await;
    // Once the outbox has nothing pending, nothing more can be sent.
    let store = PgStore::connect(&PgSettings {
        url: fleet.db.url.clone(),
        max_connections: 1,
        acquire_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    wait_until("the outbox to be empty", WAIT, || async {
        let stats = store.webhook_outbox_stats().await.ok()?;
        (stats.pending == 0).then_some(())
    })
    .await;
    let hooks_after = receiver.received();
    assert_eq!(hooks_after.len(), 80, "no event was sent twice");
    let ids: HashSet<&str> = hooks.iter().map(|h| h.header("svix-id")).collect();
    assert_eq!(ids.len(), 80);
}

/// A client that retries a rotation (the first call timed out on its
/// side) leaves receivers still on the original secret working: every
/// secret in its grace signs, each with its own `v1,` signature.
#[tokio::test]
async fn a_retried_rotation_keeps_the_first_secret_signing() {
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with(StoreKind::Sqlite, &sink, &[]).await;
    let receiver = WebhookReceiver::start(ReceiverAnswers::Statuses(vec![]));
    let (webhook, original) = subscribe(&app, &receiver.url(), &["email.sent"]).await;
    let mut secrets = vec![original];
    for _ in 0..2 {
        let (status, rotated) = app
            .call(
                Method::POST,
                &format!("/v1/webhooks/{webhook}/signing-secret/rotate"),
                &[],
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{rotated}");
        secrets.push(rotated["signing_secret"].as_str().unwrap().to_string());
    }
    app.send(&minimal_email()).await;
    let hook = receiver.wait_for(1, WAIT).await.remove(0);
    for secret in &secrets {
        assert!(signed_by(&hook, secret), "{:?}", hook.headers);
    }
    assert_eq!(hook.header("svix-signature").split(' ').count(), 3);
}
