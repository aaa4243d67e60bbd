//! Drives the running server with the official Resend Python SDK.

use crate::helpers::*;
use mailqueue_testkit::{SinkOptions, SmtpSink, StoreKind};
use std::process::Command;

/// Runs `tests/compat/{script}` against `app` with its full-access key, as
/// a user of the SDK would point it at us; returns what it printed.
async fn run_sdk_script(app: &TestApp, script: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(script);
    let address = app.address.clone();
    let key = app.api_key.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("RESEND_API_URL", format!("{address}/v1"))
            .env("RESEND_API_KEY", key)
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK check failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[tokio::test]
async fn the_official_python_sdk_works_against_mailqueue() {
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_SMTP_URL", &sink.url())]).await;
    let stdout = run_sdk_script(&app, "resend_sdk_check.py").await;
    assert!(stdout.contains("all Resend SDK checks passed"), "{stdout}");
    assert!(
        !sink.messages().is_empty(),
        "the SDK's emails were delivered"
    );
}

#[tokio::test]
async fn the_official_python_sdk_manages_api_keys() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let stdout = run_sdk_script(&app, "resend_sdk_api_keys_check.py").await;
    assert!(
        stdout.contains("all Resend SDK api-keys checks passed"),
        "{stdout}"
    );
    let keys = app.store.list_api_keys().await.unwrap();
    assert!(
        keys.iter()
            .any(|k| k.name == "sdk full" && k.revoked_at.is_some()),
        "{keys:?}"
    );
}

#[tokio::test]
async fn the_official_python_sdk_manages_suppressions() {
    let app = spawn_app(StoreKind::Postgres).await;
    let stdout = run_sdk_script(&app, "resend_sdk_suppressions_check.py").await;
    assert!(
        stdout.contains("all Resend SDK suppressions checks passed"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_official_python_sdk_manages_and_verifies_webhooks() {
    let app = spawn_app_with(
        StoreKind::Postgres,
        &[
            ("MAILQUEUE_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("MAILQUEUE_WEBHOOK_POLL_SECONDS", "0.05"),
        ],
    )
    .await;
    let stdout = run_sdk_script(&app, "resend_sdk_webhooks_check.py").await;
    assert!(
        stdout.contains("all Resend SDK webhooks checks passed"),
        "{stdout}"
    );
}

#[tokio::test]
async fn domain_changes_reach_webhooks_as_resend_sends_them() {
    let app = spawn_app_with(
        StoreKind::Postgres,
        &[
            ("MAILQUEUE_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("MAILQUEUE_WEBHOOK_POLL_SECONDS", "0.05"),
            (
                "MAILQUEUE_SECRET_KEY",
                "0123456789abcdef0123456789abcdef-test",
            ),
            ("MAILQUEUE_BOUNCE_MX_HOST", "mx.mailqueue.test"),
        ],
    )
    .await;
    let stdout = run_sdk_script(&app, "resend_sdk_domain_events_check.py").await;
    assert!(
        stdout.contains("all Resend SDK domain events checks passed"),
        "{stdout}"
    );
}
