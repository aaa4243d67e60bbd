//! A sending domain's DKIM key travels with a backup of the store, sealed:
//! restored, the server signs with it again, given the same secret.

use crate::domains::verify_with_both;
use crate::processes::Embedded;
use mailqueue_testkit::{wait_until, LocalDns, SinkOptions, SmtpSink, TempDir};
use serde_json::{json, Value};
use std::time::Duration;

const SECRET: &str = "a secret of at least thirty-two characters";

async fn call(base: &str, key: &str, method: reqwest::Method, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[tokio::test]
async fn a_domains_key_survives_a_backup_and_restore() {
    let dns = LocalDns::start().await;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let e = Embedded {
        dir: TempDir::new("domain-backup"),
        env: vec![
            ("MAILQUEUE_SECRET_KEY".into(), SECRET.into()),
            ("MAILQUEUE_DNS_SERVERS".into(), dns.address()),
            ("MAILQUEUE_SMTP_URL".into(), sink.url()),
        ],
    };
    let key = e.api_key("b");
    let mut server = e.serve().await;
    let base = server.base.clone();
    let created = call(
        &base,
        &key,
        reqwest::Method::POST,
        "/v1/domains",
        json!({"name": "acme.test", "dkim_algorithm": "ed25519"}),
    )
    .await;
    dns.publish("acme.test", created["records"].as_array().unwrap());
    let id = created["id"].as_str().unwrap().to_string();
    call(
        &base,
        &key,
        reqwest::Method::POST,
        &format!("/v1/domains/{id}/verify"),
        json!({}),
    )
    .await;
    wait_until("the domain to verify", Duration::from_secs(20), || async {
        let d = call(
            &base,
            &key,
            reqwest::Method::GET,
            &format!("/v1/domains/{id}"),
            Value::Null,
        )
        .await;
        (d["status"] == "verified").then_some(())
    })
    .await;
    server.terminate();
    e.ok(&["backup"]);
    // The store is lost, then the backup comes back.
    std::fs::remove_file(e.dir.path().join("data/mailqueue.db")).unwrap();
    e.ok(&["restore", "sqlite", "latest", "--force"]);

    let server = e.serve().await;
    let restored = call(
        &server.base,
        &key,
        reqwest::Method::GET,
        &format!("/v1/domains/{id}"),
        Value::Null,
    )
    .await;
    assert_eq!(restored["status"], "verified");
    assert_eq!(
        restored["records"],
        created["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["status"] = json!("verified");
                r
            })
            .collect::<Value>(),
        "the same key, as published"
    );
    call(&server.base, &key, reqwest::Method::POST, "/v1/emails",
        json!({"from": "a@acme.test", "to": "u@example.com", "subject": "after the restore", "text": "t"})).await;
    let raw = wait_until(
        "the email to reach the sink",
        Duration::from_secs(30),
        || async { sink.messages().last().map(|m| m.raw()) },
    )
    .await;
    assert!(
        raw.starts_with(b"DKIM-Signature:"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    let verdicts = verify_with_both(&dns, &[raw]).await;
    assert_eq!(verdicts, vec![(true, "pass".to_string())]);
}
