//! A relay that refuses our credentials or stalls: emails are retried, never
//! failed, and the errors are counted under their own class.

use crate::helpers::*;
use mailqueue_testkit::{wait_until, RelayOptions, SinkOptions, SmtpSink, StoreKind, TestRelay};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The value of `mailqueue_smtp_errors_total{class="…"}`, 0 when absent.
async fn smtp_errors(app: &TestApp, class: &str) -> u64 {
    let metrics = app.metrics().await;
    let prefix = format!("mailqueue_smtp_errors_total{{class=\"{class}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

fn credentials(password: &str) -> Option<(String, String)> {
    Some(("relay-user".into(), password.into()))
}

#[tokio::test]
async fn refused_credentials_keep_emails_queued_until_the_relay_accepts_them() {
    // The relay's password was rotated; ours is the old one.
    let sink = SmtpSink::start(SinkOptions {
        auth: credentials("rotated-secret"),
        ..Default::default()
    })
    .await;
    let url = format!(
        "smtp+plain://relay-user:relay-secret@127.0.0.1:{}",
        sink.port
    );
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_SMTP_URL", &url)]).await;
    let ids = [
        app.send(&minimal_email()).await,
        app.send(&minimal_email()).await,
    ];
    wait_until("several refused attempts", WAIT, || async {
        (smtp_errors(&app, "auth").await >= 4).then_some(())
    })
    .await;
    for id in &ids {
        let email = app.email(id).await;
        assert_eq!(email["status"], "queued", "{email}");
        assert_eq!(email["last_event"], "delivery_delayed", "{email}");
        let error = email["last_error"].as_str().unwrap();
        assert!(error.contains("refuses the credentials (535"), "{email}");
    }
    assert!(sink.messages().is_empty());
    let (ready, body) = app.get("/readyz").await;
    assert_eq!(ready, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("refuses the credentials"),
        "{body}"
    );
    assert!(
        !body.to_string().contains("relay-secret"),
        "the password never shows: {body}"
    );

    // The operator fixes the relay: the same password is accepted again.
    let sink = sink
        .restart(SinkOptions {
            auth: credentials("relay-secret"),
            ..Default::default()
        })
        .await;
    for id in &ids {
        let email = app.wait_for_status(id, "sent", WAIT).await;
        assert!(email["attempts"].as_u64().unwrap() >= 2, "{email}");
    }
    let (ready, body) = app.get("/readyz").await;
    assert_eq!(ready, 200, "ready again once the relay accepts us: {body}");
    let received = sink.wait_for_messages(2, WAIT).await;
    assert!(received
        .iter()
        .all(|m| m.login.as_deref() == Some("relay-user")));
}

#[tokio::test]
async fn a_relay_that_stalls_longer_than_the_timeout_is_retried_as_a_timeout() {
    let stalling = TestRelay::start(RelayOptions {
        data_reply_delay: Duration::from_secs(4),
        ..Default::default()
    })
    .await;
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[
            ("MAILQUEUE_SMTP_URL", &stalling.url()),
            ("MAILQUEUE_SMTP_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    let id = app.send(&minimal_email()).await;
    let email = wait_until("a timed-out attempt", WAIT, || async {
        let e = app.email(&id).await;
        (e["last_event"] == "delivery_delayed").then_some(e)
    })
    .await;
    assert_eq!(email["status"], "queued", "{email}");
    let error = email["last_error"].as_str().unwrap();
    assert!(
        error.contains("the end of the message data: the relay made no progress for 1s"),
        "the per-command timeout, not the whole-send cap: {email}"
    );
    assert!(smtp_errors(&app, "timeout").await >= 1);
}
