//! The suppression list through the API: what it does to sending, and
//! every malformed request answered precisely with nothing stored.

use crate::helpers::*;
use mailqueue_testkit::{SinkOptions, SmtpSink, StoreKind};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn listed(app: &TestApp) -> Vec<String> {
    let (status, body) = app.get("/v1/suppressions?limit=100").await;
    assert_eq!(status, 200, "{body}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["email"].as_str().unwrap().to_string())
        .collect()
}

async fn a_listed_address_is_skipped_until_removed(kind: StoreKind) {
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = spawn_app_with(kind, &[("MAILQUEUE_SMTP_URL", &sink.url())]).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/suppressions",
            &[],
            &json!({"email": "Stop@Example.com", "reason": "asked by phone"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let (_, entry) = app.get("/v1/suppressions/Stop@example.com").await;
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["reason"], "asked by phone");
    let (status, same) = app.get("/v1/suppressions/stop@example.com").await;
    assert_eq!(
        (status, &same["id"]),
        (200, &json!(id)),
        "the whole address is compared without case"
    );
    assert_eq!(same["email"], "stop@example.com");

    // Mailboxes fold case: a listed address stops mail to it in any case.
    let mut lower = minimal_email();
    lower["to"] = json!(["stop@example.com"]);
    let also_skipped = app.send(&lower).await;
    let email = app.wait_for_status(&also_skipped, "failed", WAIT).await;
    assert_eq!(email["last_event"], "suppressed");
    let mut e = minimal_email();
    e["to"] = json!(["Stop@EXAMPLE.com"]);
    let skipped = app.send(&e).await;
    let email = app.wait_for_status(&skipped, "failed", WAIT).await;
    assert_eq!(email["last_event"], "suppressed");
    let (_, events) = app.get(&format!("/v1/emails/{skipped}/events")).await;
    let suppressed = &events["data"][1];
    assert_eq!(suppressed["suppressed"]["type"], "OnAccountSuppressionList");
    assert_eq!(suppressed["suppressed"]["reason"], "manual");
    assert_eq!(suppressed["to"], json!(["Stop@EXAMPLE.com"]));

    let (status, body) = app
        .call(
            Method::DELETE,
            &format!("/v1/suppressions/{id}"),
            &[],
            &Value::Null,
        )
        .await;
    assert_eq!((status, &body["deleted"]), (200, &json!(true)), "{body}");
    let sent = app.send(&e).await;
    app.wait_for_status(&sent, "sent", WAIT).await;
    assert_eq!(sink.wait_for_messages(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn a_listed_address_is_skipped_until_removed_on_sqlite() {
    a_listed_address_is_skipped_until_removed(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_listed_address_is_skipped_until_removed_on_postgres() {
    a_listed_address_is_skipped_until_removed(StoreKind::Postgres).await;
}

#[tokio::test]
async fn bad_suppression_requests_are_refused_and_store_nothing() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let many: Vec<String> = (0..101).map(|i| format!("u{i}@example.com")).collect();
    let cases: Vec<(Method, &str, Value, u16, &str, &str)> = vec![
        (
            Method::POST,
            "/v1/suppressions",
            json!({}),
            422,
            "missing_required_field",
            "email",
        ),
        (
            Method::POST,
            "/v1/suppressions",
            json!({"email": "no at sign"}),
            422,
            "validation_error",
            "email",
        ),
        (
            Method::POST,
            "/v1/suppressions",
            json!({"email": "a@b.co\r\nBcc: x@y.z"}),
            422,
            "validation_error",
            "email",
        ),
        (
            Method::POST,
            "/v1/suppressions",
            json!({"email": "a@b.co", "origin": "bounce"}),
            422,
            "validation_error",
            "origin",
        ),
        (
            Method::POST,
            "/v1/suppressions",
            json!({"email": ["a@b.co"]}),
            422,
            "validation_error",
            "email",
        ),
        (
            Method::POST,
            "/v1/suppressions/batch/add",
            json!({"emails": []}),
            422,
            "validation_error",
            "emails",
        ),
        (
            Method::POST,
            "/v1/suppressions/batch/add",
            json!({"emails": many}),
            422,
            "validation_error",
            "emails",
        ),
        (
            Method::POST,
            "/v1/suppressions/batch/add",
            json!({"emails": ["ok@example.com", "bad"]}),
            422,
            "validation_error",
            "emails",
        ),
        (
            Method::POST,
            "/v1/suppressions/batch/remove",
            json!({}),
            422,
            "missing_required_field",
            "emails",
        ),
        (
            Method::POST,
            "/v1/suppressions/batch/remove",
            json!({"emails": ["a@b.co"], "ids": []}),
            422,
            "validation_error",
            "ids",
        ),
        (
            Method::POST,
            "/v1/suppressions/batch/remove",
            json!({"ids": ["nope"]}),
            422,
            "validation_error",
            "ids",
        ),
        (
            Method::GET,
            "/v1/suppressions?origin=spam",
            Value::Null,
            422,
            "validation_error",
            "origin",
        ),
        (
            Method::GET,
            "/v1/suppressions?after=nope",
            Value::Null,
            422,
            "validation_error",
            "after",
        ),
        (
            Method::GET,
            "/v1/suppressions/0190f0a0-0000-7000-8000-000000000000",
            Value::Null,
            404,
            "not_found",
            "",
        ),
        (
            Method::GET,
            "/v1/suppressions/not-an-address",
            Value::Null,
            404,
            "not_found",
            "",
        ),
        (
            Method::DELETE,
            "/v1/suppressions/nobody@example.com",
            Value::Null,
            404,
            "not_found",
            "",
        ),
    ];
    for (method, path, body, status, name, field) in cases {
        let (got, answer) = app.call(method.clone(), path, &[], &body).await;
        assert_eq!(
            (got, answer["name"].as_str()),
            (status, Some(name)),
            "{method} {path} {body}: {answer}"
        );
        assert_eq!(answer["statusCode"], status, "{answer}");
        if !field.is_empty() {
            assert_eq!(answer["field"], field, "{method} {path} {body}: {answer}");
        }
    }
    let r = app
        .client
        .post(app.url("/v1/suppressions"))
        .bearer_auth(&app.api_key)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(listed(&app).await.is_empty(), "nothing was stored");
}
