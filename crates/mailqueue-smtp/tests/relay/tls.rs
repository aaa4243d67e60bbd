//! `smtp://` requires STARTTLS: a relay that does not offer it (or whose
//! `250-STARTTLS` an attacker on the path stripped) gets neither the
//! credentials nor a message, and the relay's health says why.

use crate::{email, relay, send, WAIT};
use mailqueue_core::delivery::FailureClass;
use mailqueue_core::transport::{Transport, TransportHealth};
use mailqueue_core::DeliveryError;
use mailqueue_smtp::{SmtpConfigError, SmtpRelay, SmtpSettings};
use mailqueue_testkit::{RelayOptions, TestRelay};
use std::time::Duration;

/// A relay that offers AUTH but not STARTTLS.
async fn relay_without_starttls() -> TestRelay {
    TestRelay::start(RelayOptions {
        auth: Some(("relay-user".into(), "relay-secret".into())),
        ..Default::default()
    })
    .await
}

/// Every command the relay received, in order.
fn lines(server: &TestRelay) -> Vec<String> {
    server.commands().into_iter().map(|c| c.line).collect()
}

#[tokio::test]
async fn credentials_never_go_out_in_clear_when_starttls_is_missing() {
    let server = relay_without_starttls().await;
    let url = format!("smtp://relay-user:relay-secret@127.0.0.1:{}", server.port);
    let client = relay(&url, Duration::from_secs(5));
    for _ in 0..2 {
        let e = send(&client, &email(&["a@example.com"], "secret text"))
            .await
            .unwrap_err();
        assert!(matches!(e, DeliveryError::Transient(_)), "{e}");
        assert_eq!(e.failure().class, FailureClass::Tls, "{e}");
        assert!(e.to_string().contains("STARTTLS"), "{e}");
    }
    let said = lines(&server);
    assert!(
        said.iter().all(|l| l.starts_with("EHLO") || l == "QUIT"),
        "only EHLO and QUIT may cross in clear: {said:?}"
    );
    assert!(server.messages().is_empty());
    match client.health() {
        TransportHealth::Failing { reason } => {
            assert!(reason.contains("STARTTLS"), "{reason}");
            assert!(!reason.contains("relay-secret"), "{reason}");
        }
        TransportHealth::Ok => panic!("the relay's health must report the missing STARTTLS"),
    }
}

#[tokio::test]
async fn without_credentials_starttls_is_still_required_by_default() {
    let server = relay_without_starttls().await;
    let client = relay(
        &format!("smtp://127.0.0.1:{}", server.port),
        Duration::from_secs(5),
    );
    let e = send(&client, &email(&["a@example.com"], "x"))
        .await
        .unwrap_err();
    assert_eq!(e.failure().class, FailureClass::Tls, "{e}");
    assert!(!lines(&server).iter().any(|l| l.starts_with("MAIL")));
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn opportunistic_tls_sends_in_clear_to_a_relay_without_starttls() {
    let server = TestRelay::start(RelayOptions::default()).await;
    let client = relay(
        &format!("smtp://127.0.0.1:{}?tls=opportunistic", server.port),
        Duration::from_secs(5),
    );
    send(&client, &email(&["a@example.com"], "x"))
        .await
        .unwrap();
    assert_eq!(server.wait_for_messages(1, WAIT).await.len(), 1);
    assert_eq!(client.health(), TransportHealth::Ok);
}

#[test]
fn credentials_with_opportunistic_tls_are_refused_at_start() {
    let e = SmtpRelay::new(&SmtpSettings {
        url: "smtp://u:p@relay.test:587?tls=opportunistic".into(),
        pool_size: 1,
        timeout: Duration::from_secs(5),
        hello_name: None,
    })
    .err()
    .expect("refused");
    assert!(matches!(e, SmtpConfigError::Option(_)), "{e}");
    assert!(e.to_string().contains("smtp+plain://"), "{e}");
    assert!(!e.to_string().contains(":p@"), "{e}");
}
