//! Refused credentials: retried, counted as `auth`, and visible in the
//! relay's health until an AUTH succeeds again.

use crate::{email, relay, send, WAIT};
use mailqueue_core::delivery::FailureClass;
use mailqueue_core::transport::{Transport, TransportHealth};
use mailqueue_core::DeliveryError;
use mailqueue_testkit::{RelayOptions, SinkOptions, SmtpSink, TestRelay};
use std::time::Duration;

fn credentials() -> Option<(String, String)> {
    Some(("relay-user".into(), "relay-secret".into()))
}

fn reason(health: TransportHealth) -> String {
    match health {
        TransportHealth::Failing { reason } => reason,
        TransportHealth::Ok => panic!("the relay should be failing"),
    }
}

#[tokio::test]
async fn refused_credentials_are_retried_and_fail_the_health_until_auth_succeeds() {
    let server = TestRelay::start(RelayOptions {
        auth: credentials(),
        ..Default::default()
    })
    .await;
    let client = relay(
        &server.url_with_credentials("relay-user", "relay-secret"),
        Duration::from_secs(5),
    );
    assert_eq!(client.health(), TransportHealth::Ok);
    server.set_auth_accepts(false);
    for _ in 0..2 {
        let e = send(&client, &email(&["a@example.com"], "x"))
            .await
            .unwrap_err();
        assert!(matches!(e, DeliveryError::Transient(_)), "{e}");
        assert_eq!(e.failure().class, FailureClass::Auth);
        assert_eq!(e.failure().smtp_code, Some(535));
    }
    let why = reason(client.health());
    assert!(
        why.starts_with("the relay refuses the credentials (535"),
        "{why}"
    );
    assert!(!why.contains("relay-secret"));

    server.set_auth_accepts(true);
    send(&client, &email(&["a@example.com"], "x"))
        .await
        .unwrap();
    assert_eq!(client.health(), TransportHealth::Ok);
    let messages = server.wait_for_messages(1, WAIT).await;
    assert_eq!(messages[0].login.as_deref(), Some("relay-user"));
}

#[tokio::test]
async fn auth_login_is_used_when_plain_is_not_offered() {
    let server = TestRelay::start(RelayOptions {
        auth: credentials(),
        auth_mechanisms: Some("LOGIN".into()),
        ..Default::default()
    })
    .await;
    let client = relay(
        &server.url_with_credentials("relay-user", "relay-secret"),
        Duration::from_secs(5),
    );
    send(&client, &email(&["a@example.com"], "x"))
        .await
        .unwrap();
    assert!(server.commands().iter().any(|c| c.line == "AUTH LOGIN"));
    assert_eq!(
        server.wait_for_messages(1, WAIT).await[0].login.as_deref(),
        Some("relay-user")
    );
}

#[tokio::test]
async fn a_relay_that_requires_auth_we_do_not_have_is_an_auth_failure() {
    let server = TestRelay::start(RelayOptions {
        auth: credentials(),
        ..Default::default()
    })
    .await;
    let client = relay(&server.url(), Duration::from_secs(5));
    let e = send(&client, &email(&["a@example.com"], "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, DeliveryError::Transient(_)));
    assert_eq!(e.failure().class, FailureClass::Auth);
    assert_eq!(e.failure().smtp_code, Some(530));
    assert!(reason(client.health()).contains("requires authentication"));
}

#[tokio::test]
async fn aiosmtpd_refuses_a_wrong_password_with_535() {
    let sink = SmtpSink::start(SinkOptions {
        auth: credentials(),
        ..Default::default()
    })
    .await;
    let url =
        |password: &str| format!("smtp+plain://relay-user:{password}@127.0.0.1:{}", sink.port);
    let wrong = relay(&url("not-the-secret"), Duration::from_secs(5));
    let e = send(&wrong, &email(&["a@example.com"], "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, DeliveryError::Transient(_)), "{e}");
    assert_eq!(e.failure().class, FailureClass::Auth, "{e}");
    assert_eq!(e.failure().smtp_code, Some(535));
    assert!(reason(wrong.health()).contains("535"));
    let right = relay(&url("relay-secret"), Duration::from_secs(5));
    send(&right, &email(&["a@example.com"], "x")).await.unwrap();
    assert_eq!(right.health(), TransportHealth::Ok);
    assert_eq!(
        sink.wait_for_messages(1, WAIT).await[0].login.as_deref(),
        Some("relay-user")
    );
}
