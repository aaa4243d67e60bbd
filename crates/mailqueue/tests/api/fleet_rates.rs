//! Rate limits shared by a fleet: two worker processes together keep to
//! the global limit, and a limited domain waits while others flow.

use crate::fleet::Fleet;
use mailqueue_testkit::wait_until;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Accepts `n` emails to `to` in batches of 100; subjects `label-i`.
async fn post_batches(fleet: &Fleet, n: usize, label: &str, to: &str) {
    let client = reqwest::Client::new();
    for start in (0..n).step_by(100) {
        let batch: Vec<Value> = (start..(start + 100).min(n))
            .map(|i| json!({"from": "app@acme.test", "to": to, "subject": format!("{label}-{i}"), "text": "rate"}))
            .collect();
        let r = client
            .post(format!("{}/v1/emails/batch", fleet.apis[0].base))
            .bearer_auth(&fleet.key)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
}

/// Messages whose recipient ends with `domain` received in `[from, to)`.
fn received_between(fleet: &Fleet, domain: &str, from: Instant, to: Instant) -> usize {
    fleet
        .relay
        .messages()
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r.ends_with(domain)))
        .filter(|m| m.received_at >= from && m.received_at < to)
        .count()
}

#[tokio::test]
async fn two_workers_keep_together_to_the_global_limit() {
    let fleet = Fleet::start(
        1,
        2,
        Duration::from_millis(20),
        &[("MAILQUEUE_RATE_LIMIT", "50/s")],
    )
    .await;
    post_batches(&fleet, 1_200, "global", "user@example.com").await;
    wait_until("the first deliveries", Duration::from_secs(10), || async {
        (!fleet.relay.messages().is_empty()).then_some(())
    })
    .await;
    let start = Instant::now() + Duration::from_secs(1);
    let end = start + Duration::from_secs(20);
    tokio::time::sleep_until(end.into()).await;
    let sent = received_between(&fleet, "example.com", start, end);
    let rate = sent as f64 / 20.0;
    assert!(
        (45.0..=55.0).contains(&rate),
        "{rate:.1}/s over 20 s against a limit of 50/s ({sent} messages)"
    );
    let sessions = fleet.relay.sessions();
    assert!(sessions >= 2, "both workers sent ({sessions} connections)");
}

#[tokio::test]
async fn a_limited_domain_waits_while_other_domains_flow() {
    let fleet = Fleet::start(
        1,
        2,
        Duration::from_millis(20),
        &[("MAILQUEUE_DOMAIN_RATE_LIMITS", "slow.test=20/s")],
    )
    .await;
    post_batches(&fleet, 600, "slow", "someone@slow.test").await;
    let posted = Instant::now();
    post_batches(&fleet, 400, "fast", "someone@fast.test").await;
    wait_until("every fast.test email", Duration::from_secs(20), || async {
        (received_between(
            &fleet,
            "fast.test",
            posted,
            Instant::now() + Duration::from_secs(1),
        ) >= 400)
            .then_some(())
    })
    .await;
    let fast_done = posted.elapsed();
    assert!(
        fast_done < Duration::from_secs(6),
        "fast.test flowed at full speed: 400 in {fast_done:?}"
    );
    // 20 s, as for the global limit: a send granted just before the
    // window but delayed into it counts against a shorter window more.
    let start = posted + Duration::from_secs(2);
    let end = start + Duration::from_secs(20);
    tokio::time::sleep_until(end.into()).await;
    let slow = received_between(&fleet, "slow.test", start, end);
    let rate = slow as f64 / 20.0;
    assert!(
        (18.0..=22.0).contains(&rate),
        "slow.test at {rate:.1}/s against its limit of 20/s"
    );
    let metrics = reqwest::get(format!("{}/metrics", fleet.workers[0].base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("mailqueue_deferrals_total{reason=\"domain_rate_limit\"}"),
        "deferrals are counted by reason: {metrics}"
    );
}

#[tokio::test]
async fn the_embedded_mode_keeps_the_same_limits_in_process() {
    use crate::helpers::*;
    let relay = mailqueue_testkit::TestRelay::start(Default::default()).await;
    let app = spawn_app_with(
        mailqueue_testkit::StoreKind::Sqlite,
        &[
            ("MAILQUEUE_SMTP_URL", &relay.url()),
            ("MAILQUEUE_RATE_LIMIT", "25/s"),
        ],
    )
    .await;
    let batch: Vec<Value> = (0..100)
        .map(|i| json!({"from": "app@acme.test", "to": "u@example.com", "subject": format!("e-{i}"), "text": "x"}))
        .collect();
    let (status, _) = app
        .call(
            reqwest::Method::POST,
            "/v1/emails/batch",
            &[],
            &Value::Array(batch),
        )
        .await;
    assert_eq!(status, 202);
    let first = relay.wait_for_messages(1, Duration::from_secs(10)).await[0].received_at;
    let start = first + Duration::from_millis(500);
    let end = start + Duration::from_secs(3);
    tokio::time::sleep_until(end.into()).await;
    let sent = relay
        .messages()
        .iter()
        .filter(|m| m.received_at >= start && m.received_at < end)
        .count();
    assert!(
        (68..=82).contains(&sent),
        "{sent} sends in 3 s against a limit of 25/s"
    );
}

#[tokio::test]
async fn the_fleet_never_opens_more_relay_connections_than_allowed() {
    let fleet = Fleet::start(
        1,
        2,
        Duration::from_millis(30),
        &[("MAILQUEUE_SMTP_FLEET_CONNECTIONS", "3")],
    )
    .await;
    post_batches(&fleet, 300, "capped", "user@example.com").await;
    fleet
        .relay
        .wait_for_messages(300, Duration::from_secs(60))
        .await;
    let most = fleet.relay.most_open_sessions();
    assert!(
        most <= 3,
        "{most} connections open at once against a fleet cap of 3 (2 workers of 4 sends)"
    );
    // Waiting for a connection is not an attempt.
    let mut conn = fleet.db.connect().await;
    let most_attempts: i32 = sqlx::query_scalar("SELECT max(attempts) FROM emails")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(most_attempts, 1);
}
