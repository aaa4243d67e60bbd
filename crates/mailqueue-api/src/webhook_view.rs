//! What the webhook endpoints share: a webhook, a delivery and an attempt
//! as the API shows them, the ids of a route, new signing secrets, and
//! the endpoint rule, whose address check resolves the host here (the
//! sender checks the addresses again when it connects).

use crate::email_view::timestamp;
use crate::error::ApiError;
use chrono::{DateTime, Utc};
use mailqueue_core::webhooks::{
    is_forbidden_address, parse_event_types, DeliveryStatus, Endpoint, Webhook, WebhookAttempt,
    WebhookDelivery, WebhookEventType,
};
use mailqueue_core::{EventId, FieldError, WebhookId};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;

/// How long the resolution of an endpoint's host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map(timestamp).map(Value::String).unwrap_or(Value::Null)
}

/// The webhook as `GET /v1/webhooks/{id}` shows it (with its secret).
pub fn webhook_json(w: &Webhook) -> Value {
    let mut v = webhook_list_item(w);
    v["object"] = json!("webhook");
    v["signing_secret"] = json!(w.signing_secret.expose());
    v
}

/// The webhook as a list shows it: no secret.
pub fn webhook_list_item(w: &Webhook) -> Value {
    json!({
        "id": w.id.to_string(),
        "endpoint": w.endpoint.as_str(),
        "created_at": timestamp(w.created_at),
        "status": w.status.as_str(),
        "events": w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        "disabled_reason": w.disabled_reason,
    })
}

/// Resend's status of a delivery: `pending` (not tried yet),
/// `attempting` (tried, a retry is due), `success` or `failed`.
fn delivery_status(d: &WebhookDelivery) -> &'static str {
    match d.status {
        DeliveryStatus::Pending if d.attempts == 0 => "pending",
        DeliveryStatus::Pending => "attempting",
        DeliveryStatus::Delivered => "success",
        DeliveryStatus::Failed => "failed",
    }
}

/// One event's delivery to the webhook.
pub fn delivery_json(d: &WebhookDelivery) -> Value {
    json!({
        "object": "webhook_event",
        "id": d.event.id().to_string(),
        "webhook_id": d.webhook_id.to_string(),
        "type": d.event.type_name(),
        "email_id": d.event.email_id().map(|id| id.to_string()),
        "created_at": timestamp(d.event.created_at()),
        "status": delivery_status(d),
        "attempts": d.attempts,
        "next_attempt_at": opt_time(d.next_attempt_at),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
    })
}

/// The `n`th try (from 1) of a delivery: Resend's `id`,
/// `http_status_code`, `response` (what went wrong; the body of an answer
/// is not kept) and `sent_at`, plus `duration_ms`.
pub fn attempt_json(n: usize, a: &WebhookAttempt) -> Value {
    json!({
        "object": "webhook_attempt",
        "id": n.to_string(),
        "http_status_code": a.status_code,
        "response": a.error.clone().unwrap_or_default(),
        "sent_at": timestamp(a.attempted_at),
        "duration_ms": a.duration_ms,
        "error": a.error,
    })
}

fn shown(raw: &str) -> String {
    raw.chars().take(64).collect()
}

pub fn no_webhook(raw: &str) -> ApiError {
    ApiError::NotFound(format!("No webhook with id `{}` exists.", shown(raw)))
}

pub fn no_event(raw: &str) -> ApiError {
    ApiError::NotFound(format!(
        "No event with id `{}` was sent to this webhook.",
        shown(raw)
    ))
}

/// The `{webhook_id}` of a route: a malformed id names no webhook.
pub fn webhook_id(raw: &str) -> Result<WebhookId, ApiError> {
    raw.parse().map_err(|_| no_webhook(raw))
}

pub fn event_id(raw: &str) -> Result<EventId, ApiError> {
    raw.parse().map_err(|_| no_event(raw))
}

pub fn event_types(raw: &[String]) -> Result<Vec<WebhookEventType>, ApiError> {
    parse_event_types(raw).map_err(|m| ApiError::Validation(FieldError::invalid("events", m)))
}

/// An endpoint that follows the rule; unless private endpoints are
/// allowed, none of its host's addresses may be private.
pub async fn endpoint(raw: &str, allow_private: bool) -> Result<Endpoint, ApiError> {
    let invalid = |m: String| ApiError::Validation(FieldError::invalid("endpoint", m));
    let endpoint = Endpoint::parse(raw).map_err(invalid)?;
    if allow_private {
        return Ok(endpoint);
    }
    let addresses: Vec<IpAddr> = match endpoint.literal_address() {
        Some(a) => vec![a],
        None => {
            let lookup = tokio::net::lookup_host((endpoint.host(), endpoint.port()));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found.map(|s| s.ip()).collect(),
                // A host that does not resolve yet is checked when a
                // delivery connects.
                _ => Vec::new(),
            }
        }
    };
    // The address found is not named: it would tell a client what an
    // internal name resolves to.
    if addresses.into_iter().any(is_forbidden_address) {
        return Err(invalid(
            "`endpoint` reaches a private, loopback or otherwise internal address; \
             webhooks go to public endpoints."
                .into(),
        ));
    }
    Ok(endpoint)
}
