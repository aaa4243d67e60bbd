//! The timeout bounds each step on its own (connect, TLS, each reply, each
//! write), never a whole transaction.

use crate::{attach, email, relay, send, WAIT};
use mailqueue_core::delivery::FailureClass;
use mailqueue_core::DeliveryError;
use mailqueue_testkit::{RelayOptions, TestRelay};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_slow_relay_within_the_timeout_at_every_step_is_not_cut_off() {
    // Six replies (greeting, EHLO, MAIL, RCPT, DATA, end of data), each
    // 0.4 s late: 2.4 s in all, more than twice the timeout.
    let slow = TestRelay::start(RelayOptions {
        reply_delay: Duration::from_millis(400),
        ..Default::default()
    })
    .await;
    let client = relay(&slow.url(), TIMEOUT);
    let started = Instant::now();
    send(&client, &email(&["a@example.com"], "x"))
        .await
        .unwrap();
    assert!(started.elapsed() > TIMEOUT * 2, "{:?}", started.elapsed());
    slow.wait_for_messages(1, WAIT).await;
}

#[tokio::test]
async fn a_reply_later_than_the_timeout_is_a_transient_timeout() {
    let stalling = TestRelay::start(RelayOptions {
        data_reply_delay: Duration::from_secs(5),
        ..Default::default()
    })
    .await;
    let client = relay(&stalling.url(), TIMEOUT);
    let started = Instant::now();
    let e = send(&client, &email(&["a@example.com"], "x"))
        .await
        .unwrap_err();
    assert!(matches!(e, DeliveryError::Transient(_)), "{e}");
    assert_eq!(e.failure().class, FailureClass::Timeout);
    assert!(e.to_string().contains("the end of the message data"), "{e}");
    assert!(started.elapsed() < TIMEOUT * 3, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_relay_that_stops_reading_the_data_is_a_transient_timeout() {
    let stalling = TestRelay::start(RelayOptions {
        stall_in_data: true,
        ..Default::default()
    })
    .await;
    let client = relay(&stalling.url(), TIMEOUT);
    let mut e = email(&["a@example.com"], "x");
    // More than the socket buffers on both ends can hold.
    let big: Vec<u8> = (0..16 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    attach(&mut e, "big.bin", "application/octet-stream", &big);
    let e = send(&client, &e).await.unwrap_err();
    assert!(matches!(e, DeliveryError::Transient(_)), "{e}");
    assert_eq!(e.failure().class, FailureClass::Timeout);
    assert!(e.to_string().contains("made no progress"), "{e}");
}

#[tokio::test]
async fn a_relay_that_never_greets_is_a_transient_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let client = relay(&format!("smtp+plain://127.0.0.1:{port}"), TIMEOUT);
    let e = send(&client, &email(&["a@example.com"], "x"))
        .await
        .unwrap_err();
    assert_eq!(e.failure().class, FailureClass::Timeout, "{e}");
    assert!(e.to_string().contains("the greeting"), "{e}");
    drop(silent);
}
