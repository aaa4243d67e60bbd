//! Late bounces and complaints: every email leaves from a return address
//! of the bounce domain, whose MX is mailqueue. A real Postfix, as the
//! relay, takes a message, has it refused by its next hop and sends its
//! own DSN back; delays and ARF complaints come as providers send them;
//! forged reports are refused at RCPT.

use crate::helpers::*;
use crate::webhooks_delivery::subscribe;
use mailqueue_core::return_path::ReturnPaths;
use mailqueue_core::EmailId;
use mailqueue_testkit::{
    PostfixOptions, PrivatePostfix, ReceiverAnswers, RelayOptions, StoreKind, TempDir, TestRelay,
    WebhookReceiver,
};
use serde_json::{json, Value};
use std::time::Duration;

pub const DOMAIN: &str = "bounces.acme.test";
pub const SECRET: &str = "a-secret-of-the-bounce-domain";

pub fn paths() -> ReturnPaths {
    ReturnPaths::new(DOMAIN, SECRET.as_bytes()).unwrap()
}

/// The app with a bounce domain, its MX on `mx` (`127.0.0.1:0` for any
/// port), and fast webhooks.
async fn app_with_bounces(kind: StoreKind, smtp_url: &str, mx: &str) -> TestApp {
    spawn_app_with(
        kind,
        &[
            ("MAILQUEUE_SMTP_URL", smtp_url),
            ("MAILQUEUE_BOUNCE_DOMAIN", DOMAIN),
            ("MAILQUEUE_BOUNCE_SECRET", SECRET),
            ("MAILQUEUE_INBOUND_LISTEN", mx),
            ("MAILQUEUE_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("MAILQUEUE_WEBHOOK_POLL_SECONDS", "0.05"),
        ],
    )
    .await
}

/// Event types of an email's history, oldest first.
async fn event_types(app: &TestApp, id: &str) -> Vec<String> {
    let (_, events) = app.get(&format!("/v1/emails/{id}/events")).await;
    events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

async fn wait_for_event(app: &TestApp, id: &str, wanted: &str) -> Value {
    mailqueue_testkit::wait_until(
        &format!("{wanted} for {id}"),
        Duration::from_secs(60),
        || async {
            let (_, events) = app.get(&format!("/v1/emails/{id}/events")).await;
            events["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["type"] == wanted)
                .cloned()
        },
    )
    .await
}

/// Sends `message` to the app's MX with smtplib, from the null sender to
/// `rcpt`; returns the replies to RCPT and DATA.
pub async fn report_to_mx(app: &TestApp, rcpt: &str, message: &str, dir: &TempDir) -> (i64, i64) {
    let file = dir.path().join("report.eml");
    std::fs::write(
        &file,
        message.replace('\n', "\r\n").replace("\r\r\n", "\r\n"),
    )
    .unwrap();
    let out = run_compat(
        "smtp_conversation.py",
        &json!({
            "port": app.inbound_port.expect("the MX listens"), "mode": "plain",
            "steps": [["mail", ""], ["rcpt", rcpt], ["data", file.to_str().unwrap()]],
        }),
    )
    .await;
    let code = |i: usize| out["steps"][i][0].as_i64().unwrap_or(0);
    (code(1), code(2))
}

/// Sends one email through the API and waits until it is sent; returns
/// its id.
async fn sent_email(app: &TestApp, to: &str) -> String {
    let id = app
        .send(&json!({"from": "Acme <billing@acme.test>", "to": [to], "subject": "Your invoice", "text": "Thanks."}))
        .await;
    app.wait_for_status(&id, "sent", Duration::from_secs(30))
        .await;
    id
}

#[tokio::test]
async fn a_real_postfix_dsn_bounces_suppresses_and_notifies() {
    assert!(
        PrivatePostfix::available(),
        "postfix is not installed (scripts/test.sh installs it)"
    );
    // Postfix, mailqueue's relay, takes the message; its next hop then
    // refuses one recipient, and Postfix sends its DSN to the return
    // address, which its transport routes to mailqueue's MX.
    let next_hop = TestRelay::start(RelayOptions {
        rcpt_replies: vec![("nobody@example.com".into(), 550)],
        ..Default::default()
    })
    .await;
    let mx_port = mailqueue_testkit::free_port();
    let postfix = PrivatePostfix::start(PostfixOptions {
        transports: vec![
            ("example.com".into(), next_hop.port),
            (DOMAIN.into(), mx_port),
        ],
        ..Default::default()
    });
    let app = app_with_bounces(
        StoreKind::Postgres,
        &format!("smtp+plain://127.0.0.1:{}", postfix.port),
        &format!("127.0.0.1:{mx_port}"),
    )
    .await;
    let receiver = WebhookReceiver::start(ReceiverAnswers::Statuses(vec![]));
    subscribe(&app, &receiver.url(), &["email.bounced"]).await;

    let id = sent_email(&app, "nobody@example.com").await;
    let bounced = wait_for_event(&app, &id, "email.bounced").await;
    let email = app.email(&id).await;
    assert_eq!(email["last_event"], "bounced", "{email}");
    assert_eq!(
        email["status"], "sent",
        "a late bounce leaves the status alone"
    );
    let bounce = &bounced["bounce"];
    assert_eq!(bounce["type"], "Permanent", "{bounced}");
    assert_eq!(bounce["subType"], "NoEmail", "{bounced}");
    let diagnostic = bounce["diagnosticCode"][0].as_str().unwrap();
    assert!(
        diagnostic.contains("550 5.1.1"),
        "Postfix's Diagnostic-Code: {diagnostic}"
    );
    let types = event_types(&app, &id).await;
    let delivered = types.iter().position(|t| t == "email.delivered").unwrap();
    let bounced_at = types.iter().position(|t| t == "email.bounced").unwrap();
    assert!(delivered < bounced_at, "{types:?}");

    let (status, entry) = app.get("/v1/suppressions/nobody@example.com").await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["origin"], "bounce", "{entry}");
    let hooks = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(hooks[0].json()["type"], "email.bounced");
    assert_eq!(hooks[0].json()["data"]["email_id"], id);

    let again = app
        .send(&json!({"from": "billing@acme.test", "to": ["nobody@example.com"], "subject": "again", "text": "x"}))
        .await;
    let email = app
        .wait_for_status(&again, "failed", Duration::from_secs(30))
        .await;
    assert_eq!(email["last_event"], "suppressed", "{email}");
    let log = postfix.log();
    assert!(
        log.contains("sender non-delivery notification"),
        "Postfix sent a DSN:\n{log}"
    );
}

/// A DSN of the kind Postfix sends when it keeps trying.
fn delayed_dsn(recipient: &str) -> String {
    format!(
        "From: MAILER-DAEMON@relay.test (Mail Delivery System)
Subject: Delayed Mail (still being retried)
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"

--B1
Content-Type: text/plain

Your message could not be delivered for 4 hours. It will be retried.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.test

Final-Recipient: rfc822; {recipient}
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mx.example.com: Connection timed out

--B1--
"
    )
}

/// An ARF abuse report about the email sent from `return_path` to `recipient`.
pub fn arf(return_path: &str, recipient: &str) -> String {
    format!(
        "From: <fbl@mailbox.example>
Subject: complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary=\"F1\"

--F1
Content-Type: text/plain

This is an email abuse report.

--F1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1
Original-Mail-From: <{return_path}>
Original-Rcpt-To: <{recipient}>

--F1
Content-Type: message/rfc822

Return-Path: <{return_path}>
From: billing@acme.test
To: {recipient}
Subject: Your invoice

Thanks.

--F1--
"
    )
}

#[tokio::test]
async fn delays_complaints_forgeries_and_the_unreadable() {
    let relay = TestRelay::start(RelayOptions::default()).await;
    let app = app_with_bounces(StoreKind::Sqlite, &relay.url(), "127.0.0.1:0").await;
    let receiver = WebhookReceiver::start(ReceiverAnswers::Statuses(vec![]));
    subscribe(&app, &receiver.url(), &["email.complained"]).await;
    let dir = TempDir::new("reports");
    let id = sent_email(&app, "ann@example.com").await;
    let return_path = paths()
        .address_for(id.parse::<EmailId>().unwrap())
        .to_string();
    let relayed = relay.messages();
    assert_eq!(
        relayed[0].mail_from, return_path,
        "the email left from its return address"
    );

    assert_eq!(
        report_to_mx(&app, &return_path, &delayed_dsn("ann@example.com"), &dir).await,
        (250, 250)
    );
    let delayed = wait_for_event(&app, &id, "email.delivery_delayed").await;
    assert_eq!(delayed["to"], json!(["ann@example.com"]), "{delayed}");
    let (status, _) = app.get("/v1/suppressions/ann@example.com").await;
    assert_eq!(status, 404, "a delay suppresses nothing");

    assert_eq!(
        report_to_mx(
            &app,
            &return_path,
            &arf(&return_path, "ann@example.com"),
            &dir
        )
        .await,
        (250, 250)
    );
    wait_for_event(&app, &id, "email.complained").await;
    assert_eq!(app.email(&id).await["last_event"], "complained");
    let (status, entry) = app.get("/v1/suppressions/ann@example.com").await;
    assert_eq!(
        (status, entry["origin"].as_str()),
        (200, Some("complaint")),
        "{entry}"
    );
    let hooks = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(hooks[0].json()["type"], "email.complained");

    // A forged return address: the MAC does not hold.
    let other = sent_email(&app, "bob@example.com").await;
    let genuine = paths()
        .address_for(other.parse::<EmailId>().unwrap())
        .to_string();
    let forged = ReturnPaths::new(DOMAIN, b"not the server's secret at all")
        .unwrap()
        .address_for(other.parse::<EmailId>().unwrap())
        .to_string();
    assert_ne!(forged, genuine);
    let (rcpt, _) = report_to_mx(&app, &forged, &arf(&forged, "bob@example.com"), &dir).await;
    assert_eq!(rcpt, 550, "refused at RCPT");
    let (rcpt, _) = report_to_mx(
        &app,
        "postmaster@acme.test",
        &delayed_dsn("bob@example.com"),
        &dir,
    )
    .await;
    assert_eq!(rcpt, 550, "never an open relay");
    // A genuine address, but a report about someone the email never went to.
    assert_eq!(
        report_to_mx(&app, &genuine, &arf(&genuine, "eve@example.com"), &dir).await,
        (250, 250)
    );
    // An out-of-office reply: not a report.
    let ooo = "From: bob@example.com
Subject: Out of office

I am away until Monday.
";
    assert_eq!(report_to_mx(&app, &genuine, ooo, &dir).await, (250, 250));
    let types = event_types(&app, &other).await;
    assert!(
        !types
            .iter()
            .any(|t| t == "email.complained" || t == "email.bounced"),
        "{types:?}"
    );
    let (status, _) = app.get("/v1/suppressions/eve@example.com").await;
    assert_eq!(status, 404);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mailqueue_inbound_reports_total{kind=\"unclassified\"} 2"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("inbound"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(metrics.contains("mailqueue_inbound_reports_total{kind=\"complaint\"} 1"));
    assert!(metrics.contains("mailqueue_inbound_reports_total{kind=\"delay\"} 1"));
}

#[tokio::test]
async fn the_mx_slows_down_a_client_that_sends_too_much() {
    let relay = TestRelay::start(RelayOptions::default()).await;
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[
            ("MAILQUEUE_SMTP_URL", &relay.url()),
            ("MAILQUEUE_BOUNCE_DOMAIN", DOMAIN),
            ("MAILQUEUE_BOUNCE_SECRET", SECRET),
            ("MAILQUEUE_INBOUND_LISTEN", "127.0.0.1:0"),
            ("MAILQUEUE_INBOUND_MESSAGES_PER_MINUTE", "1"),
        ],
    )
    .await;
    let dir = TempDir::new("reports");
    let id = sent_email(&app, "ann@example.com").await;
    let return_path = paths()
        .address_for(id.parse::<EmailId>().unwrap())
        .to_string();
    let dsn = delayed_dsn("ann@example.com");
    assert_eq!(
        report_to_mx(&app, &return_path, &dsn, &dir).await,
        (250, 250)
    );
    assert_eq!(
        report_to_mx(&app, &return_path, &dsn, &dir).await,
        (250, 450),
        "the second message within the minute waits"
    );
    let delays = event_types(&app, &id)
        .await
        .iter()
        .filter(|t| *t == "email.delivery_delayed")
        .count();
    assert_eq!(delays, 1, "the refused one wrote nothing");
}

#[tokio::test]
async fn a_complaint_without_a_return_path_is_matched_by_its_message_id() {
    let relay = TestRelay::start(RelayOptions::default()).await;
    let app = app_with_bounces(StoreKind::Sqlite, &relay.url(), "127.0.0.1:0").await;
    let dir = TempDir::new("reports");
    let complained_of = sent_email(&app, "ann@example.com").await;
    let other = sent_email(&app, "bob@example.com").await;
    let message_id = app.email(&complained_of).await["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    // A feedback loop that returns only the headers, to a return address
    // of another email.
    let report = format!(
        "From: <fbl@mailbox.example>
Subject: complaint
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary=\"F2\"

--F2
Content-Type: message/feedback-report

Feedback-Type: abuse
Version: 1
Original-Rcpt-To: <ann@example.com>

--F2
Content-Type: text/rfc822-headers

From: billing@acme.test
To: ann@example.com
Message-ID: {message_id}

--F2--
"
    );
    let to = paths()
        .address_for(other.parse::<EmailId>().unwrap())
        .to_string();
    assert_eq!(report_to_mx(&app, &to, &report, &dir).await, (250, 250));
    wait_for_event(&app, &complained_of, "email.complained").await;
    let types = event_types(&app, &other).await;
    assert!(!types.iter().any(|t| t == "email.complained"), "{types:?}");
}
