//! One attempt of one delivery: the payload POSTed with Svix's headers
//! (`svix-id` is the event id, the same on every attempt; `svix-timestamp`
//! the time of this attempt; `svix-signature` one `v1,` signature per
//! signing secret), then its report. A 2xx answer delivers; anything else
//! (another status, a redirect, no answer within the timeout, an endpoint
//! that cannot be reached) fails the attempt, retried on the schedule.

use crate::resolver::PublicOnly;
use crate::WebhookSettings;
use chrono::{DateTime, Utc};
use mailqueue_core::webhooks::{
    is_forbidden_address, payload, signature_header, ClaimedDelivery, DeliveryOutcome,
    DeliveryReport, RetrySchedule,
};
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

/// The HTTP client of every delivery: the timeout, no redirects followed
/// (a redirect could lead anywhere), and public addresses only unless
/// private ones are allowed. Proxy variables (`HTTP_PROXY`, `HTTPS_PROXY`,
/// `ALL_PROXY`) are ignored: a proxy resolves the endpoint's name itself,
/// where the rule on addresses cannot see it, so deliveries always connect
/// directly.
pub fn client(settings: &WebhookSettings) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mailqueue-webhooks/", env!("CARGO_PKG_VERSION")));
    if !settings.allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder
        .build()
        .map_err(|e| format!("building the webhook HTTP client: {e}"))
}

/// Sends one delivery; `now` is the attempt's start.
pub async fn send(
    client: &reqwest::Client,
    c: &ClaimedDelivery,
    now: DateTime<Utc>,
    settings: &WebhookSettings,
) -> DeliveryReport {
    let started = Instant::now();
    let result = post(client, c, now, settings.allow_private).await;
    let duration_ms = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
    let (status_code, error) = match result {
        Ok(code) if (200..300).contains(&code) => (Some(code), None),
        Ok(code) => (Some(code), Some(format!("the endpoint answered {code}"))),
        Err(e) => (None, Some(e)),
    };
    DeliveryReport {
        webhook_id: c.webhook_id,
        event_id: c.event_id,
        attempt: c.attempt,
        attempted_at: now,
        duration_ms,
        status_code,
        outcome: match error {
            None => DeliveryOutcome::Delivered,
            Some(_) => after_failure(&settings.schedule, c.attempt, now),
        },
        error,
    }
}

fn after_failure(schedule: &RetrySchedule, attempt: u32, now: DateTime<Utc>) -> DeliveryOutcome {
    match schedule.delay_after(attempt) {
        Some(delay) => DeliveryOutcome::RetryAt(now + delay),
        None => DeliveryOutcome::Failed,
    }
}

/// The status code the endpoint answered, or why there was none.
async fn post(
    client: &reqwest::Client,
    c: &ClaimedDelivery,
    now: DateTime<Utc>,
    allow_private: bool,
) -> Result<u16, String> {
    if let Some(address) = c.endpoint.literal_address() {
        if !allow_private && is_forbidden_address(address) {
            return Err(format!(
                "{address} is a private or otherwise internal address; not connected to"
            ));
        }
    }
    let body = serde_json::to_vec(&payload(&c.event, &c.email))
        .map_err(|e| format!("the payload could not be written: {e}"))?;
    let id = c.event_id.to_string();
    let timestamp = now.timestamp();
    let signature = signature_header(&c.secrets, &id, timestamp, &body);
    let response = client
        .post(c.endpoint.url().clone())
        .header("content-type", "application/json")
        .header("svix-id", &id)
        .header("svix-timestamp", timestamp.to_string())
        .header("svix-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    Ok(response.status().as_u16())
}

/// A failed request in a sentence, with its causes.
fn describe(e: reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "the endpoint did not answer in time"
    } else if e.is_connect() {
        "the endpoint could not be reached"
    } else {
        "the request failed"
    };
    let mut causes = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    match causes.last() {
        Some(cause) => format!("{what}: {cause}"),
        None => format!("{what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn failures_follow_the_schedule_then_fail() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let s = RetrySchedule::default();
        assert_eq!(
            after_failure(&s, 1, now),
            DeliveryOutcome::RetryAt(now + Duration::seconds(5))
        );
        assert_eq!(after_failure(&s, 8, now), DeliveryOutcome::Failed);
    }
}
