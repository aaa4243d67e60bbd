//! `/v1/webhooks` as Resend's SDKs shape it: created with a `whsec_`
//! secret, read, listed in keyset pages, changed, rotated and deleted;
//! every malformed request refused in Resend's error shape with nothing
//! stored.

use crate::helpers::*;
use mailqueue_testkit::StoreKind;
use reqwest::Method;
use serde_json::{json, Value};

const ALLOW_PRIVATE: (&str, &str) = ("MAILQUEUE_WEBHOOK_ALLOW_PRIVATE", "true");

async fn create(app: &TestApp, endpoint: &str, events: Value) -> Value {
    let (status, body) = app
        .call(
            Method::POST,
            "/v1/webhooks",
            &[],
            &json!({"endpoint": endpoint, "events": events}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn webhooks_are_managed_as_resend_shapes_them(kind: StoreKind) {
    let app = spawn_app_with(kind, &[ALLOW_PRIVATE]).await;
    let first = create(&app, "http://127.0.0.1:9/a", json!(["email.sent"])).await;
    assert_eq!(first["object"], "webhook");
    let id = first["id"].as_str().unwrap().to_string();
    let secret = first["signing_secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let second = create(
        &app,
        "https://hooks.example.com/b",
        json!(["email.delivered", "email.bounced", "email.opened"]),
    )
    .await;
    let second_id = second["id"].as_str().unwrap();

    let (status, got) = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["object"], "webhook");
    assert_eq!(got["endpoint"], "http://127.0.0.1:9/a");
    assert_eq!(got["events"], json!(["email.sent"]));
    assert_eq!(got["status"], "enabled");
    assert_eq!(got["signing_secret"], secret.as_str());
    assert!(got["created_at"].is_string());

    let (_, list) = app.get("/v1/webhooks?limit=1").await;
    assert_eq!(list["object"], "list");
    assert_eq!(list["has_more"], true);
    assert_eq!(list["data"][0]["id"], second_id);
    assert!(list["data"][0].get("signing_secret").is_none());
    let (_, rest) = app
        .get(&format!("/v1/webhooks?limit=1&after={second_id}"))
        .await;
    assert_eq!(
        (&rest["data"][0]["id"], &rest["has_more"]),
        (&json!(id), &json!(false))
    );

    let (status, updated) = app
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &[],
            &json!({"events": ["email.failed", "email.failed"], "status": "disabled"}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated, json!({"object": "webhook", "id": id}));
    let (_, got) = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(
        (&got["events"], &got["status"], &got["endpoint"]),
        (
            &json!(["email.failed"]),
            &json!("disabled"),
            &json!("http://127.0.0.1:9/a")
        )
    );

    let (status, rotated) = app
        .call(
            Method::POST,
            &format!("/v1/webhooks/{id}/signing-secret/rotate"),
            &[],
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let fresh = rotated["signing_secret"].as_str().unwrap();
    assert!(fresh.starts_with("whsec_") && fresh != secret);
    assert!(rotated["previous_secret_expires_at"].is_string());

    let (status, events) = app.get(&format!("/v1/webhooks/{id}/events")).await;
    assert_eq!((status, &events["data"]), (200, &json!([])), "{events}");

    let (status, deleted) = app
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{id}"),
            &[],
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(
        deleted,
        json!({"object": "webhook", "id": id, "deleted": true})
    );
    let (status, gone) = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!((status, &gone["name"]), (404, &json!("not_found")));
}

#[tokio::test]
async fn webhooks_are_managed_as_resend_shapes_them_on_sqlite() {
    webhooks_are_managed_as_resend_shapes_them(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn webhooks_are_managed_as_resend_shapes_them_on_postgres() {
    webhooks_are_managed_as_resend_shapes_them(StoreKind::Postgres).await;
}

/// Sends a raw body; returns the status and the answer.
async fn raw(app: &TestApp, method: Method, path: &str, body: &str) -> (u16, Value) {
    let r = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.api_key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_webhook_requests_are_refused_and_store_nothing() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let ok_events = json!(["email.sent"]);
    let creates = [
        (
            json!({"endpoint": "https://hooks.example.com/h", "events": ["email.sent", "email.exploded"]}),
            422,
            "validation_error",
            "events",
        ),
        (
            json!({"endpoint": "https://hooks.example.com/h", "events": []}),
            422,
            "validation_error",
            "events",
        ),
        (
            json!({"endpoint": "https://hooks.example.com/h", "events": ["email.canceled"]}),
            422,
            "validation_error",
            "events",
        ),
        (
            json!({"endpoint": "https://hooks.example.com/h"}),
            422,
            "missing_required_field",
            "events",
        ),
        (
            json!({"events": ok_events}),
            422,
            "missing_required_field",
            "endpoint",
        ),
        (
            json!({"endpoint": "ftp://hooks.example.com/h", "events": ok_events}),
            422,
            "validation_error",
            "endpoint",
        ),
        (
            json!({"endpoint": "hooks.example.com/h", "events": ok_events}),
            422,
            "validation_error",
            "endpoint",
        ),
        (
            json!({"endpoint": "http://127.0.0.1:8080/h", "events": ok_events}),
            422,
            "validation_error",
            "endpoint",
        ),
        (
            json!({"endpoint": "http://localhost/h", "events": ok_events}),
            422,
            "validation_error",
            "endpoint",
        ),
        (
            json!({"endpoint": "http://[::ffff:169.254.169.254]/latest", "events": ok_events}),
            422,
            "validation_error",
            "endpoint",
        ),
        (
            json!({"endpoint": "http://10.0.0.8/h", "events": ok_events}),
            422,
            "validation_error",
            "endpoint",
        ),
        (
            json!({"endpoint": "https://hooks.example.com/h", "events": ok_events, "secret": "x"}),
            422,
            "validation_error",
            "",
        ),
        (
            json!({"endpoint": 7, "events": ok_events}),
            422,
            "validation_error",
            "endpoint",
        ),
    ];
    for (body, status, name, field) in creates {
        let (got, answer) = app.call(Method::POST, "/v1/webhooks", &[], &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["statusCode"], status, "{answer}");
        assert_eq!(answer["name"], name, "{body}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["field"], field, "{body}: {answer}");
        }
        assert!(answer["message"].is_string());
    }
    let (status, answer) = raw(&app, Method::POST, "/v1/webhooks", "{\"endpoint\": ").await;
    assert_eq!((status, &answer["name"]), (400, &json!("validation_error")));
    let (_, list) = app.get("/v1/webhooks").await;
    assert_eq!(list["data"], json!([]), "nothing was stored");

    // A stored webhook is not changed by a bad update.
    let created = app
        .call(
            Method::POST,
            "/v1/webhooks",
            &[],
            &json!({"endpoint": "https://hooks.example.com/h", "events": ok_events}),
        )
        .await
        .1;
    let id = created["id"].as_str().unwrap();
    for body in [
        json!({"status": "paused"}),
        json!({"events": ["email.nope"]}),
        json!({"endpoint": "http://192.168.1.1/"}),
        json!({"endpoint": "gopher://hooks.example.com/"}),
    ] {
        let (status, answer) = app
            .call(Method::PATCH, &format!("/v1/webhooks/{id}"), &[], &body)
            .await;
        assert_eq!(
            (status, &answer["name"]),
            (422, &json!("validation_error")),
            "{body}: {answer}"
        );
    }
    let (_, got) = app.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(
        (&got["endpoint"], &got["events"], &got["status"]),
        (
            &json!("https://hooks.example.com/h"),
            &ok_events,
            &json!("enabled")
        )
    );

    let unknown = "0190a6f1-0000-7000-8000-000000000000";
    let event = "0190a6f1-0000-7000-8000-000000000001";
    for (method, path) in [
        (Method::GET, format!("/v1/webhooks/{unknown}")),
        (Method::GET, "/v1/webhooks/not-an-id".to_string()),
        (Method::DELETE, format!("/v1/webhooks/{unknown}")),
        (
            Method::POST,
            format!("/v1/webhooks/{unknown}/signing-secret/rotate"),
        ),
        (Method::GET, format!("/v1/webhooks/{unknown}/events")),
        (Method::GET, format!("/v1/webhooks/{id}/events/{event}")),
        (
            Method::GET,
            format!("/v1/webhooks/{id}/events/{event}/attempts"),
        ),
        (
            Method::POST,
            format!("/v1/webhooks/{id}/events/{event}/replay"),
        ),
    ] {
        let (status, answer) = app.call(method.clone(), &path, &[], &json!({})).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert_eq!(answer["name"], "not_found");
    }
    let (status, answer) = app
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{unknown}"),
            &[],
            &json!({"status": "enabled"}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = app.get("/v1/webhooks?limit=0").await;
    assert_eq!((status, &answer["field"]), (422, &json!("limit")));
}
