use crate::helpers::*;
use mailqueue_testkit::StoreKind;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn health_readiness_and_metrics_answer_without_a_key() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = app.send(&minimal_email()).await;
    app.wait_for_status(&id, "sent", Duration::from_secs(10))
        .await;
    let text = app.metrics().await;
    for needle in [
        "mailqueue_emails_accepted_total 1",
        "mailqueue_emails_sent_total 1",
        "mailqueue_emails_failed_total 0",
        "mailqueue_delivery_attempts_total{outcome=\"sent\"} 1",
        "mailqueue_queue_depth{status=\"queued\"} 0",
        "mailqueue_oldest_due_email_age_seconds",
        "mailqueue_delivery_latency_seconds_count 1",
        "mailqueue_smtp_send_duration_seconds_count 1",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
}

#[tokio::test]
async fn readiness_fails_when_the_store_is_gone() {
    let app = spawn_app(StoreKind::Postgres).await;
    // Terminate every connection of the app's database and forbid new ones.
    let admin = std::env::var("MAILQUEUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    let name = app.db.as_ref().unwrap().name.clone();
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    let r = app.post_email(&minimal_email()).await;
    assert_eq!(
        r.status(),
        503,
        "an email that cannot be committed is not accepted"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["name"], "service_unavailable");
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn requeue_all_rebuilds_the_queue_from_the_store() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let mut e = minimal_email();
    e["scheduled_at"] = serde_json::json!("in 1 hour");
    app.send(&e).await;
    app.send(&e).await;
    let r = app
        .post("/v1/scheduled-jobs/requeue-all", &serde_json::json!({}))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["requeued"], 2);
    let r = app
        .client
        .post(app.url("/v1/scheduled-jobs/requeue-all"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "it needs an API key like every /v1 route");
}

#[tokio::test]
async fn stopping_lets_sends_in_flight_finish() {
    let sink = mailqueue_testkit::SmtpSink::start(mailqueue_testkit::SinkOptions {
        delay: Duration::from_millis(800),
        ..Default::default()
    })
    .await;
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_SMTP_URL", &sink.url())]).await;
    let id = app.send(&minimal_email()).await;
    app.wait_for_status(&id, "sending", Duration::from_secs(10))
        .await;
    let store = app.store.clone();
    app.stop().await.expect("a clean stop");
    let email = store.get_email(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(
        email.status,
        mailqueue_core::EmailStatus::Sent,
        "the send in flight finished before exit: {:?}",
        email.last_error
    );
    let attempts = store.list_attempts(id.parse().unwrap()).await.unwrap();
    assert_eq!(
        sink.messages().len(),
        1,
        "DATA commands the sink saw: {:?}; attempts: {attempts:?}",
        sink.data_attempts()
    );
}
