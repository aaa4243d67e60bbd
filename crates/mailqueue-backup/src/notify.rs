//! Slack notifications (`-n`). A notification that fails is logged and
//! never fails the backup.

use std::time::Duration;

/// Posts `text` to the incoming webhook; returns whether it was delivered.
pub async fn notify_slack(webhook: &str, text: &str) -> bool {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build the HTTP client for Slack");
            return false;
        }
    };
    match client
        .post(webhook)
        .json(&serde_json::json!({ "text": text }))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            tracing::warn!(status = %r.status(), "Slack refused the notification; the backup result stands");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "the Slack notification failed; the backup result stands");
            false
        }
    }
}
