//! Every malformed request gets its status, Resend's error shape, and
//! stores nothing.

use crate::helpers::*;
use mailqueue_testkit::StoreKind;
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    body: Value,
    status: u16,
    error: &'static str,
    field: Option<&'static str>,
}

fn with(patch: Value) -> Value {
    let mut e = minimal_email();
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            e.as_object_mut().unwrap().remove(k);
        } else {
            e[k] = v.clone();
        }
    }
    e
}

fn cases() -> Vec<Case> {
    let c = |name, body, status, error, field| Case {
        name,
        body,
        status,
        error,
        field,
    };
    let mut cases = vec![
        c(
            "bad to",
            with(json!({"to": "nobody"})),
            422,
            "validation_error",
            Some("to"),
        ),
        c(
            "bad from",
            with(json!({"from": "a@b@c"})),
            422,
            "validation_error",
            Some("from"),
        ),
        c(
            "missing from",
            with(json!({"from": null})),
            422,
            "missing_required_field",
            Some("from"),
        ),
        c(
            "missing to",
            with(json!({"to": null})),
            422,
            "missing_required_field",
            Some("to"),
        ),
        c(
            "empty to",
            with(json!({"to": []})),
            422,
            "missing_required_field",
            Some("to"),
        ),
        c(
            "missing subject",
            with(json!({"subject": null})),
            422,
            "missing_required_field",
            Some("subject"),
        ),
        c(
            "no body",
            with(json!({"text": null})),
            422,
            "missing_required_field",
            Some("html"),
        ),
        c(
            "CRLF in subject",
            with(json!({"subject": "Hi\r\nBcc: victim@example.com"})),
            422,
            "validation_error",
            Some("subject"),
        ),
        c(
            "LF in a header",
            with(json!({"headers": {"X-Tag": "a\nBcc: victim@example.com"}})),
            422,
            "validation_error",
            Some("headers.X-Tag"),
        ),
        c(
            "CRLF in an address",
            with(json!({"to": "a@example.com\r\nBcc: victim@example.com"})),
            422,
            "validation_error",
            Some("to"),
        ),
        c(
            "reserved header",
            with(json!({"headers": {"Bcc": "victim@example.com"}})),
            422,
            "validation_error",
            Some("headers.Bcc"),
        ),
        c(
            "bad header name",
            with(json!({"headers": {"X Bad": "1"}})),
            422,
            "validation_error",
            Some("headers"),
        ),
        c(
            "unknown field",
            with(json!({"tempalte": "x"})),
            422,
            "validation_error",
            Some("tempalte"),
        ),
        c(
            "unknown attachment field",
            with(json!({"attachments": [{"filename": "a", "content": "YQ==", "size": 1}]})),
            422,
            "validation_error",
            Some("attachments[0].size"),
        ),
        c(
            "wrong type",
            with(json!({"subject": 5})),
            422,
            "validation_error",
            Some("subject"),
        ),
        c(
            "bad base64",
            with(json!({"attachments": [{"filename": "a.txt", "content": "not base64!"}]})),
            422,
            "validation_error",
            Some("attachments[0].content"),
        ),
        c(
            "byte out of range",
            with(json!({"attachments": [{"filename": "a.txt", "content": [1, 256]}]})),
            422,
            "validation_error",
            Some("attachments[0].content[1]"),
        ),
        c(
            "remote attachment",
            with(json!({"attachments": [{"filename": "a.pdf", "path": "https://x.test/a.pdf"}]})),
            422,
            "validation_error",
            Some("attachments[0].path"),
        ),
        c(
            "bad scheduled_at",
            with(json!({"scheduled_at": "next tuesday"})),
            422,
            "validation_error",
            Some("scheduled_at"),
        ),
        c(
            "bad priority",
            with(json!({"priority": "urgent"})),
            422,
            "validation_error",
            Some("priority"),
        ),
        c(
            // Valid JSON of the wrong type: the field is named, not "not valid JSON".
            "numeric priority",
            with(json!({"priority": 123})),
            422,
            "validation_error",
            Some("priority"),
        ),
        c(
            "bad tag",
            with(json!({"tags": [{"name": "a b"}]})),
            422,
            "validation_error",
            Some("tags[0].name"),
        ),
        c(
            "too many recipients",
            with(json!({"to": (0..51).map(|i| format!("u{i}@x.test")).collect::<Vec<_>>()})),
            422,
            "validation_error",
            Some("to"),
        ),
        c("not an object", json!(["a"]), 422, "validation_error", None),
    ];
    // Content types the message builder cannot take: refused at once, never
    // accepted and then failed.
    let long_parameter = format!("text/plain; name={}", "x".repeat(2000));
    for content_type in [
        "a/b/c d",
        "text/plain/x",
        "text /plain",
        long_parameter.as_str(),
    ] {
        cases.push(c(
            "unbuildable content type",
            with(json!({"attachments": [
                {"filename": "ok.txt", "content": "aGk=", "content_type": "text/plain"},
                {"filename": "a.txt", "content": "aGk=", "content_type": content_type}
            ]})),
            422,
            "validation_error",
            Some("attachments[1].content_type"),
        ));
    }
    // Headers that belong to the transport (trace, authentication, resent).
    for name in [
        "DKIM-Signature",
        "Received",
        "Return-Path",
        "Resent-From",
        "resent-message-id",
        "ARC-Seal",
        "Authentication-Results",
    ] {
        cases.push(c(
            "a transport header",
            with(json!({"headers": {name: "x"}})),
            422,
            "validation_error",
            None,
        ));
    }
    cases
}

#[tokio::test]
async fn each_invalid_email_gets_its_error_and_stores_nothing() {
    let app = spawn_app(StoreKind::Sqlite).await;
    for case in cases() {
        let r = app.post_email(&case.body).await;
        let status = r.status().as_u16();
        assert_eq!(
            r.headers()["content-type"],
            "application/json",
            "{}",
            case.name
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(body["statusCode"], case.status, "{}: {body}", case.name);
        assert_eq!(body["name"], case.error, "{}: {body}", case.name);
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            case.name
        );
        if let Some(field) = case.field {
            assert_eq!(body["field"], field, "{}: {body}", case.name);
        }
    }
    assert_eq!(app.stored_count().await, 0, "no invalid email is stored");
}

async fn raw_post(app: &TestApp, body: &'static str, auth: Option<&str>) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/v1/emails"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn malformed_requests_and_credentials_get_precise_errors() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let bearer = format!("Bearer {}", app.api_key);
    let (s, b) = raw_post(&app, "{\"from\": ", Some(&bearer)).await;
    assert_eq!(
        (s, b["name"].as_str()),
        (400, Some("validation_error")),
        "{b}"
    );
    let (s, _) = raw_post(&app, "", Some(&bearer)).await;
    assert_eq!(s, 400);
    let (s, _) = raw_post(&app, "{} trailing", Some(&bearer)).await;
    assert_eq!(s, 400);
    let (s, b) = raw_post(&app, "{}", None).await;
    assert_eq!((s, b["name"].as_str()), (401, Some("missing_api_key")));
    let (s, b) = raw_post(&app, "{}", Some("Bearer mq_not_a_real_key")).await;
    assert_eq!((s, b["name"].as_str()), (403, Some("invalid_api_key")));
    let (s, b) = raw_post(&app, "{}", Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!((s, b["name"].as_str()), (401, Some("missing_api_key")));
    let (s, b) = app.get("/v1/nothing-here").await;
    assert_eq!((s, b["name"].as_str()), (404, Some("not_found")));
    let r = app
        .client
        .delete(app.url("/v1/emails"))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<Value>().await.unwrap()["name"],
        "method_not_allowed"
    );
    let (s, b) = app.get("/v1/emails/not-a-uuid").await;
    assert_eq!((s, b["name"].as_str()), (404, Some("not_found")));
    let r = app
        .client
        .post(app.url("/v1/emails"))
        .bearer_auth(&app.api_key)
        .header("idempotency-key", "x".repeat(257))
        .json(&minimal_email())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["name"],
        "invalid_idempotency_key"
    );
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn an_oversized_body_gets_413_and_stores_nothing() {
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_MAX_BODY_BYTES", "2048")]).await;
    let mut e = minimal_email();
    e["text"] = json!("x".repeat(4096));
    let r = app.post_email(&e).await;
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["name"], "payload_too_large");
    assert_eq!(body["statusCode"], 413);
    assert!(body["message"].as_str().unwrap().contains("2048"));
    assert_eq!(app.stored_count().await, 0);
    // Just under the limit is fine.
    assert_eq!(app.post_email(&minimal_email()).await.status(), 202);
}

#[tokio::test]
async fn a_revoked_key_stops_working() {
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_AUTH_CACHE_SECONDS", "0")]).await;
    assert_eq!(app.post_email(&minimal_email()).await.status(), 202);
    app.store
        .revoke_api_key(
            &mailqueue_core::store::ApiKeySelector::Name("test".into()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(app.post_email(&minimal_email()).await.status(), 403);
}
