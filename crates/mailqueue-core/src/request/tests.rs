use super::*;
use chrono::TimeZone;
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
}

fn parse(v: serde_json::Value) -> Result<NewEmail, FieldError> {
    let req: EmailRequest =
        serde_json::from_value(v).map_err(|e| FieldError::invalid("body", e.to_string()))?;
    req.into_new_email(now(), &RequestLimits::default())
}

fn minimal() -> serde_json::Value {
    json!({"from": "Acme <a@acme.test>", "to": "b@example.com", "subject": "Hi", "text": "hello"})
}

#[test]
fn accepts_a_minimal_email_with_defaults() {
    let e = parse(minimal()).unwrap();
    assert_eq!(e.to.len(), 1);
    assert_eq!(e.priority, Priority::Normal);
    assert_eq!(e.scheduled_at, None);
}

#[test]
fn accepts_every_field() {
    let e = parse(json!({
        "from": "a@acme.test", "to": ["b@x.io", "C <c@x.io>"], "cc": "d@x.io", "bcc": ["e@x.io"],
        "reply_to": "r@x.io", "subject": "Grüße", "html": "<p>x</p>", "text": "x",
        "headers": {"X-Entity-Ref-ID": "123"},
        "attachments": [
            {"filename": "a.pdf", "content": "JVBERi0="},
            {"filename": "logo.png", "content": [137, 80, 78, 71], "inline_content_id": "logo"}
        ],
        "tags": [{"name": "category", "value": "welcome"}, {"name": "flag"}],
        "scheduled_at": "in 10 min", "metadata": {"user": 7}, "priority": "high"
    }))
    .unwrap();
    assert_eq!(e.attachments[0].content_type, "application/pdf");
    assert_eq!(e.attachments[0].content, b"%PDF-");
    assert_eq!(e.attachments[1].content_id.as_deref(), Some("logo"));
    assert_eq!(e.attachments[1].content, vec![137, 80, 78, 71]);
    assert_eq!(e.scheduled_at, Some(now() + chrono::Duration::minutes(10)));
    assert_eq!(e.priority, Priority::High);
    assert_eq!(e.recipients().count(), 4);
}

fn rejected(patch: serde_json::Value) -> FieldError {
    let mut v = minimal();
    for (k, val) in patch.as_object().unwrap() {
        if val.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = val.clone();
        }
    }
    parse(v).expect_err("should be rejected")
}

#[test]
fn names_the_field_that_is_wrong() {
    assert_eq!(rejected(json!({"to": "not-an-address"})).field, "to");
    assert_eq!(rejected(json!({"from": null})).field, "from");
    assert!(rejected(json!({"from": null})).missing);
    assert_eq!(
        rejected(json!({"subject": "a\r\nBcc: x@y.z"})).field,
        "subject"
    );
    assert_eq!(rejected(json!({"text": null})).field, "html");
    assert_eq!(
        rejected(json!({"headers": {"X-A": "1\nBcc: x@y.z"}})).field,
        "headers.X-A"
    );
    assert_eq!(
        rejected(json!({"headers": {"Bad Name": "1"}})).field,
        "headers"
    );
    assert_eq!(
        rejected(json!({"headers": {"Content-Type": "text/html"}})).field,
        "headers.Content-Type"
    );
    assert_eq!(
        rejected(json!({"attachments": [{"filename": "a", "content": "%%%"}]})).field,
        "attachments[0].content"
    );
    assert_eq!(
        rejected(json!({"attachments": [{"path": "https://x.io/a.pdf", "filename": "a.pdf"}]}))
            .field,
        "attachments[0].path"
    );
    assert_eq!(
        rejected(json!({"tags": [{"name": "a b"}]})).field,
        "tags[0].name"
    );
    assert_eq!(
        rejected(json!({"scheduled_at": "someday"})).field,
        "scheduled_at"
    );
    let many: Vec<String> = (0..51).map(|i| format!("u{i}@x.io")).collect();
    assert_eq!(rejected(json!({"to": many})).field, "to");
}

#[test]
fn unknown_fields_are_refused() {
    let mut v = minimal();
    v["templat"] = json!("x");
    assert!(parse(v).is_err());
}

#[test]
fn nul_characters_are_refused_where_a_store_cannot_keep_them() {
    assert_eq!(rejected(json!({"text": "a\0b"})).field, "text");
    assert_eq!(rejected(json!({"html": "<p>\0</p>"})).field, "html");
    assert_eq!(
        rejected(json!({"metadata": {"k": ["x", {"y": "\0"}]}})).field,
        "metadata"
    );
    assert_eq!(rejected(json!({"metadata": {"a\0": 1}})).field, "metadata");
    assert_eq!(rejected(json!({"subject": "a\0"})).field, "subject");
}

#[test]
fn attachment_content_types_are_parsed_as_the_builder_parses_them() {
    let with_type = |ct: &str| json!({"attachments": [{"filename": "a.txt", "content": "aGk=", "content_type": ct}]});
    for good in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "image/svg+xml",
    ] {
        let mut v = minimal();
        v["attachments"] = with_type(good)["attachments"].clone();
        assert_eq!(parse(v).unwrap().attachments[0].content_type, good);
    }
    let long = format!("text/plain; name={}", "x".repeat(2000));
    for bad in [
        "a/b/c d",
        "text/plain/x",
        "text /plain",
        "text",
        "tëxt/plain",
        long.as_str(),
    ] {
        let e = rejected(with_type(bad));
        assert_eq!(e.field, "attachments[0].content_type", "{bad}: {e:?}");
        assert!(!e.missing);
    }
}

#[test]
fn transport_headers_are_refused() {
    for name in [
        "DKIM-Signature",
        "received",
        "Return-Path",
        "Resent-Date",
        "RESENT-TO",
        "ARC-Message-Signature",
        "Authentication-Results",
        "Received-SPF",
        "Delivered-To",
    ] {
        let e = rejected(json!({"headers": {name: "x"}}));
        assert_eq!(e.field, format!("headers.{name}"), "{name}");
    }
    assert!(parse(json!({
        "from": "a@acme.test", "to": "b@x.io", "subject": "s", "text": "t",
        "headers": {"X-Received-By": "ok", "List-Unsubscribe": "<https://x.io/u>"}
    }))
    .is_ok());
}
