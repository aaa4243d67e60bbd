//! Sending domains end to end: Resend's `/v1/domains` driven by the
//! official Node SDK, records checked through a real DNS server (dnslib),
//! delivered mail signed and verified by independent DKIM implementations
//! (dkimpy, mailauth), the sender rules at the API and at SMTP, and the
//! `domain.updated` webhooks a check sends when it changes something.

use crate::helpers::*;
use crate::webhooks_delivery::{signed_by, subscribe};
use base64::Engine;
use mailqueue_testkit::{
    wait_until, LocalDns, ReceiverAnswers, SinkOptions, SmtpSink, StoreKind, WebhookReceiver,
};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
const MX_HOST: &str = "mx.mailqueue.test";

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An app that checks domains against `dns` and delivers to `sink`.
async fn app_with_dns(
    kind: StoreKind,
    dns: &LocalDns,
    sink: &SmtpSink,
    extra: &[(&str, &str)],
) -> TestApp {
    let dns_servers = dns.address();
    let smtp_url = sink.url();
    let mut env = vec![
        ("MAILQUEUE_DNS_SERVERS", dns_servers.as_str()),
        ("MAILQUEUE_BOUNCE_MX_HOST", MX_HOST),
        ("MAILQUEUE_SECRET_KEY", SECRET),
        ("MAILQUEUE_SMTP_URL", smtp_url.as_str()),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(kind, &env).await
}

/// Creates `name` (with `algorithm`), publishes its records and waits
/// until it is verified; returns the domain as `GET` shows it.
async fn verified_domain(app: &TestApp, dns: &LocalDns, name: &str, algorithm: &str) -> Value {
    let (status, created) = app
        .call(
            Method::POST,
            "/v1/domains",
            &[],
            &json!({"name": name, "dkim_algorithm": algorithm}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    dns.publish(name, created["records"].as_array().unwrap());
    let id = created["id"].as_str().unwrap().to_string();
    verify_until(app, &id, "verified").await
}

/// Asks for a check of domain `id` and waits until it is `status`.
async fn verify_until(app: &TestApp, id: &str, status: &str) -> Value {
    verify_then(app, id, status, |d| d["status"] == status).await
}

/// Asks for a check of domain `id` and waits until `done` holds of it.
async fn verify_then(app: &TestApp, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let (code, v) = app
        .call(
            Method::POST,
            &format!("/v1/domains/{id}/verify"),
            &[],
            &json!({}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v, json!({"object": "domain", "id": id}));
    wait_until(
        &format!("domain {id}: {what}"),
        Duration::from_secs(20),
        || async {
            let (_, d) = app.get(&format!("/v1/domains/{id}")).await;
            done(&d).then_some(d)
        },
    )
    .await
}

pub(crate) async fn run_node(script: &str, input: &Value) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(script);
    let out = run_with_input(
        "node",
        vec![path.to_str().unwrap().to_string()],
        input.to_string(),
    )
    .await;
    serde_json::from_slice(&out).expect("the script prints JSON")
}

/// What dkimpy and mailauth say of each message: `(dkimpy valid, mailauth result)`.
pub(crate) async fn verify_with_both(dns: &LocalDns, messages: &[Vec<u8>]) -> Vec<(bool, String)> {
    let input = json!({
        "dns_port": dns.port,
        "messages": messages.iter().map(|m| b64(m)).collect::<Vec<_>>(),
    });
    let dkimpy = run_compat("dkim_verify_dkimpy.py", &input).await;
    let mailauth = run_node("dkim_verify_mailauth.js", &input).await;
    dkimpy
        .as_array()
        .unwrap()
        .iter()
        .zip(mailauth.as_array().unwrap())
        .map(|(p, m)| {
            (
                p["valid"] == true,
                m["result"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_official_node_sdk_manages_domains() {
    let dns = LocalDns::start().await;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with_dns(StoreKind::Sqlite, &dns, &sink, &[]).await;
    let out = run_node(
        "resend_node_domains.js",
        &json!({
            "base_url": app.url("/v1"),
            "api_key": app.api_key,
            "zone_file": dns.zone_file(),
        }),
    )
    .await;

    let created = &out["created"];
    assert!(
        created.get("object").is_none(),
        "Resend's create has no object: {created}"
    );
    assert_eq!(created["name"], "good.sdk.test");
    assert_eq!(created["status"], "not_started");
    assert_eq!(created["region"], "eu-west-1");
    assert_eq!(
        created["capabilities"],
        json!({"sending": "enabled", "receiving": "disabled"})
    );
    let records = created["records"].as_array().unwrap();
    let dkim = records.iter().find(|r| r["record"] == "DKIM").unwrap();
    assert_eq!(dkim["name"], "mq1._domainkey");
    assert_eq!(dkim["type"], "TXT");
    assert!(
        dkim["value"]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1; k=rsa; p=MII"),
        "{dkim}"
    );
    assert_eq!(dkim["ttl"], "Auto");
    let mx = records.iter().find(|r| r["type"] == "MX").unwrap();
    assert_eq!(mx["record"], "SPF");
    assert_eq!(mx["name"], "bounces");
    assert_eq!(mx["value"], MX_HOST);
    assert_eq!(mx["priority"], 10);
    let spf = records
        .iter()
        .find(|r| r["record"] == "SPF" && r["type"] == "TXT")
        .unwrap();
    assert_eq!(spf["value"], "v=spf1 mx ~all");
    let text = created.to_string();
    assert!(
        !text.contains("sealed") && !text.contains("PRIVATE"),
        "no private key is shown"
    );

    assert_eq!(out["verify"]["object"], "domain");
    let verified = &out["verified"];
    assert_eq!(verified["status"], "verified", "{verified}");
    assert_eq!(verified["object"], "domain");
    for r in verified["records"].as_array().unwrap() {
        assert_eq!(r["status"], "verified", "{r}");
    }
    let wrong = &out["wrong"];
    assert_eq!(wrong["status"], "partially_verified", "{wrong}");
    let wrong_dkim = wrong["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record"] == "DKIM")
        .unwrap();
    assert_eq!(wrong_dkim["status"], "failed", "{wrong_dkim}");

    assert_eq!(
        out["update"],
        json!({"object": "domain", "id": created["id"]})
    );
    assert_eq!(out["updated"]["tls"], "enforced");
    assert_eq!(out["updated"]["open_tracking"], true);
    assert_eq!(out["updated"]["click_tracking"], true);

    assert_eq!(out["first_page"]["object"], "list");
    assert_eq!(out["first_page"]["has_more"], true);
    assert_eq!(
        out["first_page"]["data"][0]["name"], "wrong.sdk.test",
        "newest first"
    );
    assert!(out["first_page"]["data"][0].get("records").is_none());
    assert_eq!(out["second_page"]["data"][0]["name"], "good.sdk.test");
    assert_eq!(out["second_page"]["has_more"], false);

    assert_eq!(out["removed"]["deleted"], true);
    assert_eq!(out["gone"]["statusCode"], 404);
    assert_eq!(out["after_remove"]["data"].as_array().unwrap().len(), 1);
    assert_eq!(out["duplicate"]["statusCode"], 403, "{}", out["duplicate"]);
    assert_eq!(out["duplicate"]["name"], "validation_error");
}

/// Each change of a domain's status, as `domain.updated` told it: the
/// domain's status and its DKIM record's.
fn told_statuses(receiver: &WebhookReceiver) -> Vec<(String, String)> {
    receiver
        .received()
        .iter()
        .map(|h| {
            let p = h.json();
            assert_eq!(p["type"], "domain.updated", "{p}");
            let dkim = p["data"]["records"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["record"] == "DKIM")
                .unwrap()["status"]
                .clone();
            (
                p["data"]["status"].as_str().unwrap().to_string(),
                dkim.as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_removed_or_unreachable_record_is_noticed() {
    let dns = LocalDns::start().await;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let hooks = [
        ("MAILQUEUE_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("MAILQUEUE_WEBHOOK_POLL_SECONDS", "0.05"),
    ];
    let app = app_with_dns(StoreKind::Sqlite, &dns, &sink, &hooks).await;
    let receiver = WebhookReceiver::start(ReceiverAnswers::Statuses(vec![]));
    let (_, secret) = subscribe(&app, &receiver.url(), &["domain.updated"]).await;
    let domain = verified_domain(&app, &dns, "acme.test", "ed25519").await;
    let id = domain["id"].as_str().unwrap();
    let told = |s: &str, dkim: &str| (s.to_string(), dkim.to_string());
    receiver.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(
        told_statuses(&receiver),
        [told("pending", "not_started"), told("verified", "verified")]
    );
    // A check that finds what the last one found tells nothing.
    verify_until(&app, id, "verified").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 2, "nothing new, nothing told");
    dns.set("send.acme.test", json!({"SERVFAIL": true}));
    let unreachable = verify_until(&app, id, "partially_verified").await;
    let statuses: Vec<(String, String)> = unreachable["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&("MX".into(), "temporary_failure".into())),
        "{statuses:?}"
    );
    dns.remove("mq1._domainkey.acme.test");
    dns.remove("send.acme.test");
    let failed = verify_until(&app, id, "failed").await;
    assert!(
        failed["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["record"] != "DMARC")
            .all(|r| r["status"] == "failed"),
        "{failed}"
    );
    let (_, signing) = app.get(&format!("/v1/domains/{id}")).await;
    assert_eq!(
        signing["dkim"][0]["signing"], false,
        "an unpublished key does not sign"
    );
    receiver.wait_for(5, Duration::from_secs(20)).await;
    assert_eq!(
        told_statuses(&receiver)[2..],
        [
            told("partially_verified", "verified"),
            told("pending", "verified"),
            told("failed", "failed")
        ],
        "a request to check a domain that is not verified makes it pending"
    );
    assert!(receiver.received().iter().all(|h| signed_by(h, &secret)));
}

/// One email of each kind the verifiers should see signed.
fn emails_from(from: &str) -> Vec<Value> {
    vec![
        json!({"from": from, "to": "user@example.com", "subject": "Plain", "text": "Hello\r\n\r\n\r\n"}),
        json!({"from": format!("Zoë Größe <{from}>"), "to": ["Ünïcode Person <u@example.com>"],
               "cc": "cc@example.com", "reply_to": "reply@example.com",
               "subject": "Grüße aus Köln — ünïcødé", "html": "<p>Hällo</p>", "text": "Hällo"}),
        json!({"from": from, "to": "user@example.com",
               "subject": "A subject long enough to be folded over several lines by the builder, \
                           because it runs well past seventy-eight characters of header width, twice over",
               "text": "folded", "headers": {"X-Long": "x ".repeat(80)}}),
        json!({"from": from, "to": "user@example.com", "subject": "With attachments", "text": "see attached",
        "attachments": [
            {"filename": "report.pdf", "content": b64(&[0x25, 0x50, 0x44, 0x46, 0, 1, 2, 3, 255])},
            {"filename": "notes.txt", "content": b64("line one\nline two\n".as_bytes())}
        ]}),
    ]
}

#[tokio::test]
async fn delivered_mail_is_signed_and_independent_verifiers_accept_it() {
    let dns = LocalDns::start().await;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with_dns(StoreKind::Postgres, &dns, &sink, &[]).await;
    verified_domain(&app, &dns, "rsa.acme.test", "rsa").await;
    verified_domain(&app, &dns, "ed.acme.test", "ed25519").await;
    let mut ids = Vec::new();
    for from in ["a@rsa.acme.test", "b@ed.acme.test", "c@news.rsa.acme.test"] {
        for email in emails_from(from) {
            ids.push(app.send(&email).await);
        }
    }
    let unsigned = app.send(&minimal_email()).await;
    for id in ids.iter().chain([&unsigned]) {
        app.wait_for_status(id, "sent", Duration::from_secs(30))
            .await;
    }
    let received = sink.messages();
    assert_eq!(received.len(), ids.len() + 1);
    let (signed, plain): (Vec<Vec<u8>>, Vec<Vec<u8>>) = received
        .iter()
        .map(|m| m.raw())
        .partition(|raw| raw.starts_with(b"DKIM-Signature:"));
    assert_eq!(
        signed.len(),
        ids.len(),
        "every email of a verified domain is signed"
    );
    assert_eq!(plain.len(), 1, "a sender without a domain is not");
    let verdicts = verify_with_both(&dns, &signed).await;
    for (i, (dkimpy, mailauth)) in verdicts.iter().enumerate() {
        let raw = String::from_utf8_lossy(&signed[i]);
        assert!(dkimpy, "dkimpy refuses message {i}:\n{raw}");
        assert_eq!(mailauth, "pass", "mailauth refuses message {i}:\n{raw}");
    }
    let algorithms: Vec<bool> = signed
        .iter()
        .map(|m| String::from_utf8_lossy(m).contains("a=ed25519-sha256"))
        .collect();
    assert_eq!(
        algorithms.iter().filter(|ed| **ed).count(),
        4,
        "Ed25519 and RSA both"
    );

    // Tampering with the body or a signed header breaks both verifiers.
    let body_changed = {
        let mut m = signed[0].clone();
        let at = m.len() - 4;
        m[at] = if m[at] == b'x' { b'y' } else { b'x' };
        m
    };
    let subject_changed =
        String::from_utf8_lossy(&signed[4]).replacen("Subject: Plain", "Subject: Plan", 1);
    assert_ne!(subject_changed.as_bytes(), &signed[4][..]);
    let from_added = {
        let text = String::from_utf8_lossy(&signed[5]).into_owned();
        let end = text.find("\r\n\r\n").unwrap();
        format!(
            "{}\r\nFrom: evil@attacker.test{}",
            &text[..end],
            &text[end..]
        )
    };
    let tampered = verify_with_both(
        &dns,
        &[
            body_changed,
            subject_changed.into_bytes(),
            from_added.into_bytes(),
        ],
    )
    .await;
    for (i, (dkimpy, mailauth)) in tampered.iter().enumerate() {
        assert!(!dkimpy, "dkimpy accepts tampered message {i}");
        assert_ne!(mailauth, "pass", "mailauth accepts tampered message {i}");
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(&format!("emails_signed_total {}", ids.len())),
        "{metrics}"
    );
    assert!(
        metrics.contains("emails_unsigned_total{reason=\"no_domain\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("domains{status=\"verified\"}")
            || metrics.contains("# TYPE domains gauge"),
        "{metrics}"
    );
}

#[tokio::test]
async fn unverified_senders_and_other_domains_are_refused() {
    let dns = LocalDns::start().await;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with_dns(
        StoreKind::Sqlite,
        &dns,
        &sink,
        &[
            ("MAILQUEUE_REQUIRE_VERIFIED_DOMAIN", "true"),
            ("MAILQUEUE_SUBMISSION_LISTEN", "127.0.0.1:0"),
            ("MAILQUEUE_SUBMISSION_ALLOW_PLAINTEXT_AUTH", "true"),
        ],
    )
    .await;
    let email =
        |from: &str| json!({"from": from, "to": "user@example.com", "subject": "s", "text": "t"});
    let (status, v) = app
        .call(Method::POST, "/v1/emails", &[], &email("a@acme.test"))
        .await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["name"], "validation_error");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("The acme.test domain is not verified"),
        "{v}"
    );
    let (status, v) = app
        .call(
            Method::POST,
            "/v1/emails/batch",
            &[],
            &json!([email("a@other.test")]),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(app.stored_count().await, 0, "nothing refused was stored");

    let acme = verified_domain(&app, &dns, "acme.test", "ed25519").await;
    let (_, other) = app
        .call(
            Method::POST,
            "/v1/domains",
            &[],
            &json!({"name": "other.test"}),
        )
        .await;
    dns.publish("other.test", other["records"].as_array().unwrap());
    verify_until(&app, other["id"].as_str().unwrap(), "verified").await;
    app.send(&email("a@acme.test")).await;

    let (status, key) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &[],
            &json!({"name": "acme only", "permission": "sending_access", "domain_id": acme["id"]}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let token = key["token"].as_str().unwrap();
    let (status, v) = app
        .call_as(
            token,
            Method::POST,
            "/v1/emails",
            &[],
            &email("a@other.test"),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("only from its domain"),
        "{v}"
    );
    let (status, v) = app
        .call_as(
            token,
            Method::POST,
            "/v1/emails",
            &[],
            &email("news@mail.acme.test"),
        )
        .await;
    assert_eq!(status, 202, "a subdomain of the key's domain: {v}");

    for bad in [
        json!({"name": "k", "permission": "full_access", "domain_id": acme["id"]}),
        json!({"name": "k", "permission": "sending_access", "domain_id": "nope"}),
    ] {
        let (status, v) = app.call(Method::POST, "/v1/api-keys", &[], &bad).await;
        assert_eq!(status, 422, "{bad}: {v}");
    }
    let (status, v) = app
        .call(
            Method::POST,
            "/v1/api-keys",
            &[],
            &json!({"name": "k", "permission": "sending_access", "domain_id": uuid_like()}),
        )
        .await;
    assert_eq!(status, 404, "an unknown domain: {v}");

    // The same rules at SMTP: MAIL FROM, and the From header.
    let eml = app.data_dir.path().join("other.eml");
    std::fs::write(
        &eml,
        "From: a@other.test\r\nTo: user@example.com\r\nSubject: s\r\n\r\nbody\r\n",
    )
    .unwrap();
    let conversation = |from: &str| {
        json!({
            "port": app.submission_ports[0],
            "mode": "plain",
            "auth": {"mechanism": "PLAIN", "user": "resend", "password": token},
            "steps": [["mail", from, []], ["rset"], ["mail", "a@acme.test", []],
                      ["rcpt", "user@example.com"], ["data", eml.to_str().unwrap()]],
        })
    };
    let replies = run_compat("smtp_conversation.py", &conversation("a@other.test")).await;
    let steps = replies["steps"].as_array().unwrap();
    assert_eq!(steps[0][0], 550, "{replies}");
    assert!(
        steps[0][1].as_str().unwrap().starts_with("5.7.1"),
        "{replies}"
    );
    assert_eq!(steps[2][0], 250, "{replies}");
    assert_eq!(
        steps[4][0], 550,
        "the From header is outside the key's domain: {replies}"
    );

    // A message submitted whole from the verified domain leaves signed,
    // over the bytes that are relayed.
    let good = app.data_dir.path().join("acme.eml");
    std::fs::write(
        &good,
        "From: a@acme.test\r\nTo: user@example.com\r\nSubject: signed over smtp\r\n\r\nbody\r\n",
    )
    .unwrap();
    let submitted = run_compat(
        "smtp_conversation.py",
        &json!({
            "port": app.submission_ports[0],
            "mode": "plain",
            "auth": {"mechanism": "PLAIN", "user": "resend", "password": token},
            "steps": [["mail", "a@acme.test", []], ["rcpt", "user@example.com"],
                      ["data", good.to_str().unwrap()]],
        }),
    )
    .await;
    assert_eq!(submitted["steps"][2][0], 250, "{submitted}");
    let raw = wait_until(
        "the submitted message to arrive",
        Duration::from_secs(30),
        || async {
            sink.messages()
                .into_iter()
                .map(|m| m.raw())
                .find(|raw| String::from_utf8_lossy(raw).contains("signed over smtp"))
        },
    )
    .await;
    assert!(
        raw.starts_with(b"DKIM-Signature:"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(
        verify_with_both(&dns, &[raw]).await,
        vec![(true, "pass".to_string())]
    );
}

fn uuid_like() -> String {
    "0190f5d2-0000-7000-8000-000000000000".into()
}

#[tokio::test]
async fn keys_are_sealed_and_a_worker_without_the_secret_does_not_sign() {
    let dns = LocalDns::start().await;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    // Without a secret, PostgreSQL refuses to store keys.
    let unsealed = spawn_app_with(StoreKind::Postgres, &[]).await;
    let (status, v) = unsealed
        .call(
            Method::POST,
            "/v1/domains",
            &[],
            &json!({"name": "acme.test"}),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("MAILQUEUE_SECRET_KEY"),
        "{v}"
    );

    let app = app_with_dns(StoreKind::Postgres, &dns, &sink, &[]).await;
    let domain = verified_domain(&app, &dns, "acme.test", "rsa").await;
    let stored = app.store.all_domains().await.unwrap();
    let sealed = &stored[0].dkim_keys[0].sealed_private_key;
    assert!(sealed.starts_with("aes256gcm:"), "{sealed}");
    let other = mailqueue_dkim::KeySealer::new(Some(
        &mailqueue_dkim::SecretKey::parse(&"another secret".repeat(4)).unwrap(),
    ));
    assert!(other.open(sealed).is_err(), "unreadable without the secret");
    let same =
        mailqueue_dkim::KeySealer::new(Some(&mailqueue_dkim::SecretKey::parse(SECRET).unwrap()));
    assert!(same.open(sealed).unwrap().len() > 1000, "an RSA-2048 key");
    let listed = app
        .get(&format!("/v1/domains/{}", domain["id"].as_str().unwrap()))
        .await
        .1;
    assert!(!listed.to_string().contains(&sealed[10..40]), "never shown");

    // A second process on the same database with another secret: its
    // mail leaves unsigned, and says why.
    let db_url = app.db.as_ref().unwrap().url.clone();
    let dns_servers = dns.address();
    let smtp_url = sink.url();
    let worker = spawn_app_with(
        StoreKind::Sqlite,
        &[
            ("DATABASE_URL", db_url.as_str()),
            ("MAILQUEUE_SECRET_KEY", &"another secret".repeat(4)),
            ("MAILQUEUE_DNS_SERVERS", dns_servers.as_str()),
            ("MAILQUEUE_SMTP_URL", smtp_url.as_str()),
        ],
    )
    .await;
    // Keep the database when the first process stops.
    let mut app = app;
    let _db = app.db.take();
    app.stop().await.unwrap();
    let id = worker
        .send(&json!({"from": "a@acme.test", "to": "u@example.com", "subject": "s", "text": "t"}))
        .await;
    worker
        .wait_for_status(&id, "sent", Duration::from_secs(30))
        .await;
    let raw = sink.messages().last().unwrap().raw();
    assert!(!raw.starts_with(b"DKIM-Signature:"));
    let metrics = worker.metrics().await;
    assert!(
        metrics.contains("emails_unsigned_total{reason=\"key_unreadable\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_rotation_signs_with_the_old_key_until_the_new_record_is_seen() {
    let dns = LocalDns::start().await;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with_dns(StoreKind::Sqlite, &dns, &sink, &[]).await;
    let domain = verified_domain(&app, &dns, "acme.test", "rsa").await;
    let id = domain["id"].as_str().unwrap().to_string();
    let (status, rotated) = app
        .call(
            Method::POST,
            &format!("/v1/domains/{id}/dkim/rotate"),
            &[],
            &json!({"dkim_algorithm": "ed25519"}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let dkim: Vec<&Value> = rotated["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["record"] == "DKIM")
        .collect();
    assert_eq!(dkim.len(), 2, "{rotated}");
    assert_eq!(dkim[1]["name"], "mq2._domainkey");
    assert!(dkim[1]["value"]
        .as_str()
        .unwrap()
        .starts_with("v=DKIM1; k=ed25519; p="));
    // Not yet published: still verified, still the old key.
    let still = verify_then(&app, &id, "the new key checked", |d| {
        d["dkim"][1]["status"] == "failed"
    })
    .await;
    assert_eq!(still["status"], "verified");
    assert_eq!(still["dkim"][0]["selector"], "mq1");
    assert_eq!(still["dkim"][0]["signing"], true);
    dns.publish("acme.test", &[dkim[1].clone()]);
    let switched = verify_then(&app, &id, "the switch", |d| {
        d["dkim"].as_array().is_some_and(|k| k.len() == 1)
    })
    .await;
    assert_eq!(switched["status"], "verified");
    assert_eq!(switched["dkim"].as_array().unwrap().len(), 1, "{switched}");
    assert_eq!(switched["dkim"][0]["selector"], "mq2");
    assert_eq!(switched["dkim"][0]["signing"], true);
}

#[tokio::test]
async fn a_verified_return_path_carries_the_bounces_and_tls_enforced_keeps_mail_off_plain_relays() {
    let dns = LocalDns::start().await;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    // The bounce domain is also the MX host every return path points at.
    let app = app_with_dns(
        StoreKind::Sqlite,
        &dns,
        &sink,
        &[
            ("MAILQUEUE_BOUNCE_DOMAIN", "bounces.mailqueue.test"),
            ("MAILQUEUE_BOUNCE_SECRET", "a bounce secret of some length"),
            ("MAILQUEUE_BOUNCE_MX_HOST", "bounces.mailqueue.test"),
        ],
    )
    .await;
    verified_domain(&app, &dns, "acme.test", "ed25519").await;
    // Workers read the domains every 10 s: the strict one below exists
    // before the first send reads them.
    let (_, strict) = app
        .call(
            Method::POST,
            "/v1/domains",
            &[],
            &json!({"name": "strict.test", "tls": "enforced"}),
        )
        .await;
    assert_eq!(strict["tls"], "enforced", "{strict}");
    let email = |from: &str, subject: &str| json!({"from": from, "to": "user@example.com", "subject": subject, "text": "t"});
    for (from, subject) in [
        ("a@acme.test", "aligned"),
        ("a@elsewhere.test", "bounce domain"),
    ] {
        let id = app.send(&email(from, subject)).await;
        app.wait_for_status(&id, "sent", Duration::from_secs(30))
            .await;
    }
    let envelope_of = |subject: &str| {
        sink.messages()
            .into_iter()
            .find(|m| String::from_utf8_lossy(&m.raw()).contains(subject))
            .unwrap()
            .mail_from
    };
    let aligned = envelope_of("Subject: aligned");
    assert!(
        aligned.starts_with("b-") && aligned.ends_with("@send.acme.test"),
        "{aligned}"
    );
    let other = envelope_of("Subject: bounce domain");
    assert!(other.ends_with("@bounces.mailqueue.test"), "{other}");

    // tls: enforced, and the relay (the sink) offers no TLS: the attempt
    // fails before anything is sent, and is retried.
    let id = app.send(&email("a@strict.test", "never in clear")).await;
    let failed = wait_until(
        "the attempt to fail for want of TLS",
        Duration::from_secs(30),
        || async {
            let e = app.email(&id).await;
            e["last_error"]
                .as_str()
                .is_some_and(|err| err.contains("requires TLS"))
                .then_some(e)
        },
    )
    .await;
    assert_ne!(failed["status"], "sent", "{failed}");
    assert!(
        !sink
            .messages()
            .iter()
            .any(|m| String::from_utf8_lossy(&m.raw()).contains("never in clear")),
        "nothing went to the relay in clear"
    );
}

#[tokio::test]
async fn bad_domain_requests_are_refused_and_change_nothing() {
    let dns = LocalDns::start().await;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = app_with_dns(StoreKind::Sqlite, &dns, &sink, &[]).await;
    let (status, good) = app
        .call(
            Method::POST,
            "/v1/domains",
            &[],
            &json!({"name": "good.test"}),
        )
        .await;
    assert_eq!(status, 201, "{good}");
    let id = good["id"].as_str().unwrap();
    let (_, before) = app.get(&format!("/v1/domains/{id}")).await;
    for (bad, field) in [
        (json!({"name": "not a domain"}), "name"),
        (json!({"name": "nodot"}), "name"),
        (json!({"name": "x.test", "tls": "sometimes"}), "tls"),
        (
            json!({"name": "x.test", "dkim_algorithm": "dsa"}),
            "dkim_algorithm",
        ),
        (
            json!({"name": "x.test", "custom_return_path": "a.b"}),
            "custom_return_path",
        ),
        (
            json!({"name": "x.test", "capabilities": {"receiving": "enabled"}}),
            "capabilities",
        ),
        (json!({"name": "x.test", "region": "mars-1"}), "region"),
    ] {
        let (status, v) = app.call(Method::POST, "/v1/domains", &[], &bad).await;
        assert_eq!(status, 422, "{bad}: {v}");
        assert_eq!(v["name"], "validation_error", "{bad}: {v}");
        assert_eq!(v["field"], field, "{bad}: {v}");
    }
    let (status, v) = app
        .call(
            Method::POST,
            "/v1/domains",
            &[],
            &json!({"name": "x.test", "colour": "red"}),
        )
        .await;
    assert_eq!(status, 422, "an unknown field: {v}");
    let path = format!("/v1/domains/{id}");
    for bad in [
        json!({"tls": "sometimes"}),
        json!({"id": uuid_like()}),
        json!({"tracking_subdomain": "a.b"}),
        json!({"colour": "red"}),
    ] {
        let (status, v) = app.call(Method::PATCH, &path, &[], &bad).await;
        assert_eq!(status, 422, "{bad}: {v}");
    }
    let (status, v) = app
        .call(
            Method::PATCH,
            &path,
            &[],
            &json!({"id": id, "tls": "enforced"}),
        )
        .await;
    assert_eq!(status, 200, "the path's own id in the body: {v}");
    let unknown = format!("/v1/domains/{}", uuid_like());
    for (method, path) in [
        (Method::GET, unknown.clone()),
        (Method::PATCH, unknown.clone()),
        (Method::DELETE, unknown.clone()),
        (Method::POST, format!("{unknown}/verify")),
        (Method::GET, "/v1/domains/not-an-id".to_string()),
    ] {
        let (status, v) = app.call(method.clone(), &path, &[], &json!({})).await;
        assert_eq!(status, 404, "{method} {path}: {v}");
    }
    let (_, after) = app.get(&format!("/v1/domains/{id}")).await;
    assert_eq!(after["tls"], "enforced");
    assert_eq!(after["records"], before["records"], "its records are kept");
    let (_, list) = app.get("/v1/domains").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
}
