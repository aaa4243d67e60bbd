//! `GET /v1/webhooks/{webhook_id}`: the webhook with its signing secret.

use crate::error::ApiError;
use crate::named::Named;
use crate::webhook_view::{no_webhook, webhook_json};
use axum::Json;
use mailqueue_core::WebhookId;
use serde_json::Value;

pub async fn handle(webhook: Named<WebhookId>) -> Result<Json<Value>, ApiError> {
    let found = webhook.state.reads.get_webhook(webhook.id).await?;
    let found = found.ok_or_else(|| no_webhook(&webhook.raw))?;
    Ok(Json(webhook_json(&found)))
}
