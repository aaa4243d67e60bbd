//! `PATCH /v1/webhooks/{webhook_id}` with any of `endpoint`, `events` and
//! `status` (`enabled` or `disabled`): answers `{"object": "webhook",
//! "id"}`. Enabling a webhook the disable policy stopped clears its
//! reason; its pending deliveries go out again. Resend's Python SDK also
//! sends the path's `webhook_id` in the body; it must match.

use crate::body::{parse_json, RawBody};
use crate::error::ApiError;
use crate::named::Named;
use crate::webhook_view::{endpoint, event_types, no_webhook};
use axum::Json;
use mailqueue_core::webhooks::{WebhookChange, WebhookStatus};
use mailqueue_core::{FieldError, WebhookId};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateWebhookRequest {
    webhook_id: Option<String>,
    endpoint: Option<String>,
    events: Option<Vec<String>>,
    status: Option<String>,
}

pub async fn handle(
    webhook: Named<WebhookId>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let request: UpdateWebhookRequest = parse_json(&body)?;
    webhook.same_as_body("webhook_id", request.webhook_id.as_deref())?;
    let allow_private = webhook.state.settings.webhooks.allow_private;
    let change = WebhookChange {
        endpoint: match &request.endpoint {
            Some(raw) => Some(endpoint(raw, allow_private).await?),
            None => None,
        },
        events: request.events.as_deref().map(event_types).transpose()?,
        status: request
            .status
            .as_deref()
            .map(str::parse::<WebhookStatus>)
            .transpose()
            .map_err(|m| ApiError::Validation(FieldError::invalid("status", format!("{m}."))))?,
    };
    let service = &webhook.state.service;
    let updated = service.update_webhook(webhook.id, &change).await?;
    let updated = updated.ok_or_else(|| no_webhook(&webhook.raw))?;
    Ok(Json(
        json!({"object": "webhook", "id": updated.id.to_string()}),
    ))
}
