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
    is_forbidden_address, signature_header, ClaimedDelivery, DeliveryOutcome, DeliveryReport,
    RetrySchedule,
};
use std::error::Error;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Why an attempt failed; its text is what the attempt's history keeps.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttemptError {
    /// The endpoint answered, with a status other than 2xx.
    #[error("the endpoint answered {0}")]
    Status(u16),
    #[error("{0} is a private or otherwise internal address; not connected to")]
    RefusedAddress(IpAddr),
    /// No answer within the timeout; the cause, as the client put it.
    #[error("the endpoint did not answer in time: {0}")]
    Timeout(String),
    #[error("the endpoint could not be reached: {0}")]
    Connect(String),
    #[error("the request failed: {0}")]
    Request(String),
    #[error("the payload could not be written: {0}")]
    Payload(String),
}

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
        Ok(code) => (Some(code), Some(AttemptError::Status(code))),
        Err(e) => (None, Some(e)),
    };
    DeliveryReport {
        webhook_id: c.webhook_id,
        event_id: c.event.id(),
        attempt: c.attempt,
        attempted_at: now,
        duration_ms,
        status_code,
        outcome: match error {
            None => DeliveryOutcome::Delivered,
            Some(_) => after_failure(&settings.schedule, c.attempt, now),
        },
        error: error.map(|e| e.to_string()),
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
) -> Result<u16, AttemptError> {
    if let Some(address) = c.endpoint.literal_address() {
        if !allow_private && is_forbidden_address(address) {
            return Err(AttemptError::RefusedAddress(address));
        }
    }
    let body =
        serde_json::to_vec(&c.event.payload()).map_err(|e| AttemptError::Payload(e.to_string()))?;
    let id = c.event.id().to_string();
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

/// A failed request by its kind, with its deepest cause.
fn describe(e: reqwest::Error) -> AttemptError {
    let mut cause = None;
    let mut source = e.source();
    while let Some(s) = source {
        cause = Some(s.to_string());
        source = s.source();
    }
    let cause = cause.unwrap_or_else(|| e.to_string());
    if e.is_timeout() {
        AttemptError::Timeout(cause)
    } else if e.is_connect() {
        AttemptError::Connect(cause)
    } else {
        AttemptError::Request(cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn each_failure_reads_as_the_history_keeps_it() {
        let internal: IpAddr = "10.0.0.1".parse().unwrap();
        for (error, text) in [
            (AttemptError::Status(503), "the endpoint answered 503"),
            (
                AttemptError::RefusedAddress(internal),
                "10.0.0.1 is a private or otherwise internal address; not connected to",
            ),
            (
                AttemptError::Timeout("operation timed out".into()),
                "the endpoint did not answer in time: operation timed out",
            ),
        ] {
            assert_eq!(error.to_string(), text);
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = listener.local_addr().unwrap();
        drop(listener);
        let e = reqwest::Client::new()
            .get(format!("http://{closed}/"))
            .send()
            .await
            .unwrap_err();
        assert!(matches!(describe(e), AttemptError::Connect(_)));
    }

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
