//! SMTP submission in Resend's dialect, driven by the clients applications
//! use: Python's smtplib (STARTTLS on one listener, implicit TLS on the
//! other), `swaks`, with self-signed certificates made per test. Each
//! `250` must be a committed email, delivered to the relay as submitted.

use crate::helpers::*;
use mailqueue_testkit::{SinkOptions, SmtpSink, StoreKind, TempDir, TestCertificate};
use serde_json::{json, Value};
use std::time::Duration;

struct Submission {
    app: TestApp,
    sink: SmtpSink,
    cert: TestCertificate,
    dir: TempDir,
}

/// The app with both submission listeners (STARTTLS first, then implicit
/// TLS) and a relay sink.
async fn submission_app(kind: StoreKind, extra: &[(&str, &str)]) -> Submission {
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let cert = TestCertificate::generate();
    let (cert_path, key_path) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
    let sink_url = sink.url();
    let mut env = vec![
        ("MAILQUEUE_SMTP_URL", sink_url.as_str()),
        ("MAILQUEUE_SUBMISSION_LISTEN", "127.0.0.1:0"),
        ("MAILQUEUE_SUBMISSION_TLS_LISTEN", "127.0.0.1:0"),
        ("MAILQUEUE_SUBMISSION_TLS_CERT", cert_path),
        ("MAILQUEUE_SUBMISSION_TLS_KEY", key_path),
    ];
    env.extend_from_slice(extra);
    let app = spawn_app_with(kind, &env).await;
    assert_eq!(app.submission_ports.len(), 2, "both listeners are bound");
    Submission {
        app,
        sink,
        cert,
        dir: TempDir::new("submission"),
    }
}

impl Submission {
    fn starttls_port(&self) -> u16 {
        self.app.submission_ports[0]
    }

    fn tls_port(&self) -> u16 {
        self.app.submission_ports[1]
    }

    /// Writes a message file for the client to send.
    fn message_file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    }

    /// One smtplib conversation (see `tests/compat/smtp_conversation.py`).
    async fn converse(&self, spec: Value) -> Value {
        let mut spec = spec;
        spec["ca"] = json!(self.cert.ca.to_str().unwrap());
        run_compat("smtp_conversation.py", &spec).await
    }

    /// A conversation over STARTTLS with the app's key: MAIL, RCPT each, DATA.
    async fn send(&self, from: &str, to: &[&str], file: &str) -> Value {
        let mut steps = vec![json!(["mail", from])];
        steps.extend(to.iter().map(|t| json!(["rcpt", t])));
        steps.push(json!(["data", file]));
        self.converse(json!({
            "port": self.starttls_port(), "mode": "starttls",
            "auth": {"mechanism": "PLAIN", "user": "resend", "password": self.app.api_key},
            "steps": steps,
        }))
        .await
    }
}

/// `[code, text]` as a pair.
fn reply(v: &Value) -> (i64, String) {
    (v[0].as_i64().unwrap(), v[1].as_str().unwrap().to_string())
}

/// The email id of a `250 2.0.0 queued as <id>` reply.
fn queued_id(v: &Value) -> String {
    let (code, text) = reply(v);
    assert_eq!(code, 250, "{text}");
    text.strip_prefix("2.0.0 queued as ")
        .unwrap_or_else(|| panic!("not a queued reply: {text}"))
        .to_string()
}

/// A message with a text and an HTML part and a PDF attachment, and a Bcc
/// header that must not leave.
fn mime_with_attachment() -> Vec<u8> {
    let pdf = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg==";
    format!(
        "From: Acme Billing <billing@acme.test>\r\n\
         To: Ann <ann@example.com>\r\n\
         Bcc: audit@example.com\r\n\
         Subject: Your invoice\r\n\
         Message-ID: <invoice-42@acme.test>\r\n\
         Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
         \r\n\
         --outer\r\n\
         Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
         \r\n\
         --inner\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Thank you for your order.\r\n\
         .a line that starts with a dot\r\n\
         --inner\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         \r\n\
         <p>Thank you for your order.</p>\r\n\
         --inner--\r\n\
         --outer\r\n\
         Content-Type: application/pdf; name=\"invoice.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         {pdf}\r\n\
         --outer--\r\n"
    )
    .into_bytes()
}

async fn delivers_what_smtplib_submits(kind: StoreKind) {
    let s = submission_app(kind, &[]).await;
    let message = mime_with_attachment();
    let file = s.message_file("invoice.eml", &message);
    let out = s
        .send(
            "billing@acme.test",
            &["ann@example.com", "audit@example.com"],
            &file,
        )
        .await;
    let features: Vec<&str> = out["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for wanted in [
        "starttls",
        "pipelining",
        "8bitmime",
        "smtputf8",
        "enhancedstatuscodes",
        "size",
    ] {
        assert!(features.contains(&wanted), "{wanted} in {features:?}");
    }
    assert!(
        !features.contains(&"auth"),
        "no AUTH before TLS: {features:?}"
    );
    assert!(out["features_after_tls"]
        .as_array()
        .unwrap()
        .contains(&json!("auth")));
    assert_eq!(reply(&out["auth"]).0, 235);
    let id = queued_id(&out["steps"][3]);

    let (status, email) = s.app.get(&format!("/v1/emails/{id}")).await;
    assert_eq!(status, 200, "{email}");
    assert_eq!(email["from"], "Acme Billing <billing@acme.test>");
    assert_eq!(email["to"], json!(["Ann <ann@example.com>"]));
    assert_eq!(email["subject"], "Your invoice");
    assert!(email["text"]
        .as_str()
        .unwrap()
        .contains("Thank you for your order."));
    assert_eq!(
        email["html"].as_str().map(str::trim_end),
        Some("<p>Thank you for your order.</p>")
    );
    assert_eq!(email["bcc"], Value::Null, "{email}");

    s.app
        .wait_for_status(&id, "sent", Duration::from_secs(30))
        .await;
    let delivered = s.sink.wait_for_messages(1, Duration::from_secs(10)).await;
    let expected: Vec<u8> = String::from_utf8(message)
        .unwrap()
        .replace("Bcc: audit@example.com\r\n", "")
        .into_bytes();
    assert_eq!(
        String::from_utf8_lossy(&delivered[0].raw()),
        String::from_utf8_lossy(&expected),
        "the relay gets the message as submitted, without its Bcc header"
    );
    assert_eq!(delivered[0].mail_from, "billing@acme.test");
    assert_eq!(
        delivered[0].rcpt_tos,
        ["ann@example.com", "audit@example.com"]
    );
    let (_, events) = s.app.get(&format!("/v1/emails/{id}/events")).await;
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"email.sent"), "{types:?}");
}

#[tokio::test]
async fn delivers_what_smtplib_submits_sqlite() {
    delivers_what_smtplib_submits(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn delivers_what_smtplib_submits_postgres() {
    delivers_what_smtplib_submits(StoreKind::Postgres).await;
}

#[tokio::test]
async fn implicit_tls_with_auth_login_adds_message_id_and_date() {
    let s = submission_app(StoreKind::Sqlite, &[]).await;
    let file = s.message_file("bare.eml", b"Subject: bare\r\n\r\nno From, no Date\r\n");
    let out = s
        .converse(json!({
            "port": s.tls_port(), "mode": "ssl",
            "auth": {"mechanism": "LOGIN", "user": "resend", "password": s.app.api_key},
            "steps": [["mail", "app@acme.test"], ["rcpt", "bob@example.com"], ["data", file]],
        }))
        .await;
    assert_eq!(reply(&out["auth"]).0, 235, "{out}");
    let id = queued_id(&out["steps"][2]);
    s.app
        .wait_for_status(&id, "sent", Duration::from_secs(30))
        .await;
    let delivered = s.sink.wait_for_messages(1, Duration::from_secs(10)).await;
    let parsed = delivered[0].parsed();
    let message_id = parsed.message_id().expect("a Message-ID was added");
    assert!(parsed.date().is_some(), "a Date was added");
    assert_eq!(parsed.subject(), Some("bare"));
    let email = s.app.email(&id).await;
    assert_eq!(
        email["from"], "app@acme.test",
        "the envelope sender stands in for From"
    );
    assert!(message_id.ends_with("@acme.test"), "{message_id}");
}

#[tokio::test]
async fn auth_needs_tls_an_active_key_and_the_resend_user() {
    let s = submission_app(StoreKind::Sqlite, &[]).await;
    let auth = |mode: &str, user: &str, password: &str| {
        json!({
            "port": s.starttls_port(), "mode": mode,
            "auth": {"mechanism": "PLAIN", "user": user, "password": password},
            "steps": [["mail", "app@acme.test"]],
        })
    };
    let plain = s.converse(auth("plain", "resend", &s.app.api_key)).await;
    assert_eq!(reply(&plain["auth"]).0, 530, "{plain}");
    assert_eq!(
        reply(&plain["steps"][0]).0,
        530,
        "no MAIL without AUTH: {plain}"
    );

    let wrong = s.converse(auth("starttls", "resend", "re_not_a_key")).await;
    assert_eq!(
        reply(&wrong["auth"]),
        (535, "5.7.8 Authentication credentials invalid".into())
    );
    let user = s.converse(auth("starttls", "admin", &s.app.api_key)).await;
    assert_eq!(reply(&user["auth"]).0, 535, "{user}");

    let (status, created) = s
        .app
        .call(
            reqwest::Method::POST,
            "/v1/api-keys",
            &[],
            &json!({"name": "smtp", "permission": "sending_access"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let sending = s.converse(auth("starttls", "resend", &token)).await;
    assert_eq!(
        reply(&sending["auth"]).0,
        235,
        "a sending key suffices: {sending}"
    );
    let key_id = created["id"].as_str().unwrap();
    let (status, _) = s
        .app
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/api-keys/{key_id}"),
            &[],
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let revoked = s.converse(auth("starttls", "resend", &token)).await;
    assert_eq!(reply(&revoked["auth"]).0, 535, "a revoked key: {revoked}");
    assert_eq!(s.app.stored_count().await, 0);
}

#[tokio::test]
async fn plaintext_auth_when_allowed_for_loopback() {
    let s = submission_app(
        StoreKind::Sqlite,
        &[("MAILQUEUE_SUBMISSION_ALLOW_PLAINTEXT_AUTH", "true")],
    )
    .await;
    let file = s.message_file(
        "m.eml",
        b"From: app@acme.test\r\nSubject: hi\r\n\r\nbody\r\n",
    );
    let out = s
        .converse(json!({
            "port": s.starttls_port(), "mode": "plain",
            "auth": {"mechanism": "PLAIN", "user": "resend", "password": s.app.api_key},
            "steps": [["mail", "app@acme.test"], ["rcpt", "bob@example.com"], ["data", file]],
        }))
        .await;
    assert_eq!(reply(&out["auth"]).0, 235, "{out}");
    queued_id(&out["steps"][2]);
}

#[tokio::test]
async fn one_idempotency_key_sent_twice_gives_one_email() {
    let s = submission_app(StoreKind::Postgres, &[]).await;
    let file = s.message_file(
        "order.eml",
        b"From: shop@acme.test\r\nTo: ann@example.com\r\nSubject: Order 42\r\n\
          Resend-Idempotency-Key: order-42\r\n\r\nShipped.\r\n",
    );
    let first = s.send("shop@acme.test", &["ann@example.com"], &file).await;
    let again = s.send("shop@acme.test", &["ann@example.com"], &file).await;
    let id = queued_id(&first["steps"][2]);
    assert_eq!(
        queued_id(&again["steps"][2]),
        id,
        "the retry replays the first answer"
    );
    assert_eq!(s.app.stored_count().await, 1);

    let other = s.message_file(
        "other.eml",
        b"From: shop@acme.test\r\nTo: ann@example.com\r\nSubject: Order 43\r\n\
          Resend-Idempotency-Key: order-42\r\n\r\nShipped.\r\n",
    );
    let mismatch = s.send("shop@acme.test", &["ann@example.com"], &other).await;
    assert_eq!(reply(&mismatch["steps"][2]).0, 554, "{mismatch}");
    s.app
        .wait_for_status(&id, "sent", Duration::from_secs(30))
        .await;
    let delivered = s.sink.wait_for_messages(1, Duration::from_secs(10)).await;
    let raw = String::from_utf8_lossy(&delivered[0].raw()).into_owned();
    assert!(!raw.contains("Resend-Idempotency-Key"), "{raw}");
    assert_eq!(s.app.stored_count().await, 1);
}

#[tokio::test]
async fn limits_answer_before_anything_is_stored() {
    let s = submission_app(StoreKind::Sqlite, &[("MAILQUEUE_MAX_BODY_BYTES", "20000")]).await;
    let mut steps = vec![json!(["mail", "app@acme.test"])];
    for i in 0..51 {
        steps.push(json!(["rcpt", format!("r{i}@example.com")]));
    }
    steps.push(json!(["rset"]));
    steps.push(json!(["mail", "app@acme.test", ["SIZE=30000"]]));
    let big = format!(
        "Subject: big\r\n\r\n{}",
        "0123456789abcdef\r\n".repeat(1500)
    );
    let big = s.message_file("big.eml", big.as_bytes());
    steps.push(json!(["mail", "app@acme.test"]));
    steps.push(json!(["rcpt", "bob@example.com"]));
    steps.push(json!(["data", big]));
    let nul = s.message_file("nul.eml", b"Subject: nul\r\n\r\nbad \0 byte\r\n");
    steps.push(json!(["mail", "app@acme.test"]));
    steps.push(json!(["rcpt", "bob@example.com"]));
    steps.push(json!(["data", nul]));
    steps.push(json!(["raw", "FROB"]));
    steps.push(json!(["raw", "MAIL FROM:<not an address>"]));
    let out = s
        .converse(json!({
            "port": s.starttls_port(), "mode": "starttls",
            "auth": {"mechanism": "PLAIN", "user": "resend", "password": s.app.api_key},
            "steps": steps,
        }))
        .await;
    let replies: Vec<(i64, String)> = out["steps"].as_array().unwrap().iter().map(reply).collect();
    assert!(replies[1..51].iter().all(|(c, _)| *c == 250), "{replies:?}");
    assert_eq!(replies[51].0, 452, "the 51st recipient: {:?}", replies[51]);
    assert!(replies[51].1.starts_with("4.5.3"), "{:?}", replies[51]);
    assert_eq!(replies[53].0, 552, "SIZE over the limit: {:?}", replies[53]);
    assert_eq!(
        replies[56].0, 552,
        "a body over the limit: {:?}",
        replies[56]
    );
    assert_eq!(replies[59].0, 554, "a NUL byte: {:?}", replies[59]);
    assert!(replies[59].1.contains("NUL"), "{:?}", replies[59]);
    assert_eq!(replies[60].0, 500, "an unknown command: {:?}", replies[60]);
    assert_eq!(replies[61].0 / 100, 5, "a bad address: {:?}", replies[61]);
    assert_eq!(s.app.stored_count().await, 0);
}

/// Makes every insert of an email fail with `sqlstate` (PostgreSQL).
async fn fail_inserts(app: &TestApp, sqlstate: &str) {
    let mut conn = app.db.as_ref().unwrap().connect().await;
    for statement in [
        format!(
            "CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'the store fails (test)' USING ERRCODE = '{sqlstate}'; END $$"
        ),
        "CREATE TRIGGER fail_insert BEFORE INSERT ON email_contents \
         FOR EACH ROW EXECUTE FUNCTION fail_insert()"
            .to_string(),
    ] {
        sqlx::query(&statement).execute(&mut conn).await.unwrap();
    }
}

async fn heal_inserts(app: &TestApp) {
    let mut conn = app.db.as_ref().unwrap().connect().await;
    sqlx::query("DROP FUNCTION fail_insert() CASCADE")
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failing_store_answers_4xx_and_nothing_is_stored() {
    let s = submission_app(StoreKind::Postgres, &[]).await;
    let file = s.message_file(
        "m.eml",
        b"From: app@acme.test\r\nSubject: retry me\r\n\r\nbody\r\n",
    );
    fail_inserts(&s.app, "58030").await;
    let failed = s.send("app@acme.test", &["bob@example.com"], &file).await;
    let (code, text) = reply(&failed["steps"][2]);
    assert_eq!((code, &text[..5]), (451, "4.3.0"), "{text}");
    heal_inserts(&s.app).await;
    fail_inserts(&s.app, "53100").await;
    let full = s.send("app@acme.test", &["bob@example.com"], &file).await;
    let (code, text) = reply(&full["steps"][2]);
    assert_eq!((code, &text[..5]), (452, "4.3.1"), "{text}");
    assert_eq!(s.app.stored_count().await, 0, "no 250, nothing stored");
    heal_inserts(&s.app).await;
    let retried = s.send("app@acme.test", &["bob@example.com"], &file).await;
    let id = queued_id(&retried["steps"][2]);
    s.app
        .wait_for_status(&id, "sent", Duration::from_secs(30))
        .await;
    assert_eq!(s.app.stored_count().await, 1);
}

#[tokio::test]
async fn swaks_submits_over_starttls() {
    if std::process::Command::new("swaks")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("swaks is not installed (scripts/test.sh installs it)");
    }
    let s = submission_app(StoreKind::Sqlite, &[]).await;
    let port = s.starttls_port().to_string();
    let key = s.app.api_key.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("swaks")
            .args(["--server", "127.0.0.1", "--port", &port, "--tls"])
            .args([
                "--auth",
                "PLAIN",
                "--auth-user",
                "resend",
                "--auth-password",
                &key,
            ])
            .args(["--from", "app@acme.test", "--to", "carol@example.com"])
            .args([
                "--header",
                "Subject: from swaks",
                "--body",
                "Sent by swaks.",
            ])
            .output()
            .expect("swaks runs")
    })
    .await
    .unwrap();
    let transcript = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{transcript}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = transcript
        .lines()
        .find_map(|l| l.split("queued as ").nth(1))
        .unwrap_or_else(|| panic!("no queued reply in:\n{transcript}"))
        .trim()
        .to_string();
    let email = s
        .app
        .wait_for_status(&id, "sent", Duration::from_secs(30))
        .await;
    assert_eq!(email["subject"], "from swaks");
    let delivered = s.sink.wait_for_messages(1, Duration::from_secs(10)).await;
    assert_eq!(delivered[0].rcpt_tos, ["carol@example.com"]);
}

#[tokio::test]
async fn aiosmtplib_submits_over_both_listeners() {
    let s = submission_app(StoreKind::Sqlite, &[]).await;
    let mut ids = Vec::new();
    for (tls, port) in [("starttls", s.starttls_port()), ("implicit", s.tls_port())] {
        let out = run_compat(
            "smtp_aiosmtplib.py",
            &json!({
                "port": port, "tls": tls, "ca": s.cert.ca.to_str().unwrap(), "key": s.app.api_key,
                "from": "app@acme.test", "to": ["dana@example.com"],
                "subject": format!("aiosmtplib over {tls}"), "text": "Hello from asyncio.",
            }),
        )
        .await;
        assert_eq!(out["refused"], json!([]), "{out}");
        let response = out["response"].as_str().unwrap();
        let id = response
            .split("queued as ")
            .nth(1)
            .unwrap_or_else(|| panic!("{response}"));
        ids.push(id.trim().to_string());
    }
    for id in &ids {
        let email = s
            .app
            .wait_for_status(id, "sent", Duration::from_secs(30))
            .await;
        assert!(email["subject"]
            .as_str()
            .unwrap()
            .starts_with("aiosmtplib over"));
    }
    assert_eq!(
        s.sink
            .wait_for_messages(2, Duration::from_secs(10))
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn nodemailer_submits_with_an_attachment() {
    let s = submission_app(StoreKind::Sqlite, &[]).await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/smtp_nodemailer.js");
    let send = |port: u16, secure: bool| {
        let input = json!({
            "port": port, "secure": secure, "ca": s.cert.ca.to_str().unwrap(), "key": s.app.api_key,
            "from": "Reports <reports@acme.test>", "to": "erin@example.com",
            "subject": "Weekly report", "text": "Attached.", "attachment": "week,sent\n49,1200\n",
            "idempotency_key": format!("report-{secure}"),
        })
        .to_string();
        let script = script.to_str().unwrap().to_string();
        async move {
            let out = run_with_input("node", vec![script], input).await;
            serde_json::from_slice::<Value>(&out).unwrap()
        }
    };
    let starttls = send(s.starttls_port(), false).await;
    let implicit = send(s.tls_port(), true).await;
    for out in [&starttls, &implicit] {
        let response = out["response"].as_str().unwrap_or_else(|| panic!("{out}"));
        let id = response
            .split("queued as ")
            .nth(1)
            .unwrap_or_else(|| panic!("{response}"));
        s.app
            .wait_for_status(id.trim(), "sent", Duration::from_secs(30))
            .await;
    }
    let delivered = s.sink.wait_for_messages(2, Duration::from_secs(10)).await;
    let parsed = delivered[0].parsed();
    assert_eq!(parsed.attachment_count(), 1);
    assert_eq!(
        parsed.attachment(0).unwrap().contents(),
        b"week,sent\n49,1200\n",
        "the attachment arrives as nodemailer encoded it"
    );
    let raw = String::from_utf8_lossy(&delivered[0].raw()).into_owned();
    assert!(!raw.contains("Resend-Idempotency-Key"), "{raw}");
}

#[tokio::test]
async fn a_real_postfix_relays_through_the_submission_port_with_sasl() {
    assert!(
        mailqueue_testkit::PrivatePostfix::available(),
        "postfix is not installed (scripts/test.sh installs it)"
    );
    let s = submission_app(StoreKind::Sqlite, &[]).await;
    let postfix = mailqueue_testkit::PrivatePostfix::start(mailqueue_testkit::PostfixOptions {
        relay: Some(mailqueue_testkit::PostfixRelay {
            port: s.starttls_port(),
            user: "resend".into(),
            password: s.app.api_key.clone(),
            ca: None,
        }),
        ..Default::default()
    });
    // An application hands the message to its local Postfix, which relays it.
    let file = s.message_file(
        "via-postfix.eml",
        b"From: Monitoring <alerts@acme.test>\r\nTo: ops@example.com\r\n\
          Subject: disk almost full\r\n\r\n/var is at 91%.\r\n",
    );
    let out = run_compat(
        "smtp_conversation.py",
        &json!({
            "port": postfix.port, "mode": "plain",
            "steps": [["mail", "alerts@acme.test"], ["rcpt", "ops@example.com"], ["data", file]],
        }),
    )
    .await;
    assert_eq!(reply(&out["steps"][2]).0, 250, "postfix took it: {out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while s.sink.messages().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing arrived; postfix's log:\n{}",
            postfix.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered = s.sink.messages();
    assert_eq!(delivered[0].rcpt_tos, ["ops@example.com"]);
    let parsed = delivered[0].parsed();
    assert_eq!(parsed.subject(), Some("disk almost full"));
    let log = postfix.log();
    assert!(
        log.contains("relay=127.0.0.1") && log.contains("status=sent") && log.contains("queued as"),
        "postfix relayed through mailqueue with SASL and TLS:\n{log}"
    );
    assert_eq!(s.app.stored_count().await, 1);
}

#[tokio::test]
async fn connections_beyond_the_cap_of_one_address_are_turned_away() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let s = submission_app(
        StoreKind::Sqlite,
        &[("MAILQUEUE_SUBMISSION_MAX_CONNECTIONS_PER_CLIENT", "2")],
    )
    .await;
    let port = s.starttls_port();
    let greeting = |stream: tokio::net::TcpStream| async move {
        let mut lines = BufReader::new(stream);
        let mut line = String::new();
        lines.read_line(&mut line).await.unwrap();
        (line, lines)
    };
    let (first, _a) = greeting(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap(),
    )
    .await;
    let (second, _b) = greeting(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap(),
    )
    .await;
    let (third, _) = greeting(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap(),
    )
    .await;
    assert!(
        first.starts_with("220 ") && second.starts_with("220 "),
        "{first}{second}"
    );
    assert!(third.starts_with("421 4.7.0"), "{third}");
    // Once one closes, a new connection is welcome again.
    let (line, mut a) = (first, _a);
    assert!(line.starts_with("220"));
    a.get_mut().write_all(b"QUIT\r\n").await.unwrap();
    let mut bye = String::new();
    a.read_line(&mut bye).await.unwrap();
    assert!(bye.starts_with("221"), "{bye}");
    drop(a);
    mailqueue_testkit::wait_until("a freed slot", Duration::from_secs(10), || async {
        let (line, _) = greeting(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        )
        .await;
        line.starts_with("220 ").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_silent_client_is_timed_out() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let s = submission_app(
        StoreKind::Sqlite,
        &[
            ("MAILQUEUE_SUBMISSION_COMMAND_TIMEOUT_SECONDS", "1"),
            ("MAILQUEUE_SUBMISSION_DATA_TIMEOUT_SECONDS", "1"),
            ("MAILQUEUE_SUBMISSION_ALLOW_PLAINTEXT_AUTH", "true"),
        ],
    )
    .await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", s.starttls_port()))
        .await
        .unwrap();
    let mut lines = BufReader::new(stream);
    let mut replies = String::new();
    // Silent after the greeting: 421 within the command timeout.
    let read_all = tokio::time::timeout(Duration::from_secs(10), async {
        let mut line = String::new();
        while lines.read_line(&mut line).await.unwrap() > 0 {}
        line
    })
    .await
    .expect("the server closes a silent connection");
    replies.push_str(&read_all);
    assert!(replies.contains("421 4.4.2"), "{replies}");

    // Silent in the middle of a message: the same, and nothing is stored.
    let key = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("\0resend\0{}", s.app.api_key),
    );
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", s.starttls_port()))
        .await
        .unwrap();
    let mut lines = BufReader::new(stream);
    let commands = format!(
        "EHLO c.test\r\nAUTH PLAIN {key}\r\nMAIL FROM:<a@acme.test>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a mess"
    );
    lines
        .get_mut()
        .write_all(commands.as_bytes())
        .await
        .unwrap();
    let transcript = tokio::time::timeout(Duration::from_secs(10), async {
        let mut all = String::new();
        while lines.read_line(&mut all).await.unwrap() > 0 {}
        all
    })
    .await
    .expect("the server closes a connection silent in DATA");
    assert!(
        transcript.contains("354 ") && transcript.contains("421 4.4.2"),
        "{transcript}"
    );
    assert_eq!(s.app.stored_count().await, 0);
}
