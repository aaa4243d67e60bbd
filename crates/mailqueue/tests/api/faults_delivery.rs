//! "Every email is sent once, at least once, and it ends", behind a relay
//! slower than the leases: claimed emails wait in the ready buffer longer
//! than their lease, and must neither be sent twice nor be lost.

use crate::helpers::*;
use mailqueue_testkit::{SinkOptions, SmtpSink, StoreKind};
use serde_json::json;
use std::time::Duration;

async fn a_relay_slower_than_the_lease_gets_each_email_once(kind: StoreKind) {
    let sink = SmtpSink::start(SinkOptions {
        delay: Duration::from_millis(1000),
        ..Default::default()
    })
    .await;
    // Two send slots claim eight emails ahead; at one second a message the
    // last of them waits four seconds, as long as the whole lease.
    let app = spawn_app_with(
        kind,
        &[
            ("MAILQUEUE_SMTP_URL", &sink.url()),
            ("MAILQUEUE_WORKER_CONCURRENCY", "2"),
            ("MAILQUEUE_LEASE_SECONDS", "4"),
            ("MAILQUEUE_SEND_TIMEOUT_SECONDS", "2"),
        ],
    )
    .await;
    let emails = 24;
    let mut ids = Vec::new();
    for i in 0..emails {
        let mut e = minimal_email();
        e["subject"] = json!(format!("slow relay {i}"));
        ids.push(app.send(&e).await);
    }
    for id in &ids {
        let email = app
            .wait_for_status(id, "sent", Duration::from_secs(60))
            .await;
        assert_eq!(email["attempts"], 1, "one attempt each: {email}");
    }
    let delivered = sink.data_attempts().len();
    assert!(
        delivered <= emails + 2,
        "{delivered} deliveries for {emails} emails; at most the two sends in flight may repeat"
    );
    assert_eq!(delivered, emails, "no worker died, so nothing repeats");
    let metrics = app.metrics().await;
    assert!(
        !metrics.contains("mailqueue_delivery_attempts_total{outcome=\"lease_expired\"}"),
        "no lease expired under a live worker: {metrics}"
    );
}

#[tokio::test]
async fn a_relay_slower_than_the_lease_gets_each_email_once_sqlite() {
    a_relay_slower_than_the_lease_gets_each_email_once(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_relay_slower_than_the_lease_gets_each_email_once_postgres() {
    a_relay_slower_than_the_lease_gets_each_email_once(StoreKind::Postgres).await;
}
