//! `DELETE /v1/webhooks/{webhook_id}`: removes the webhook with its
//! pending deliveries and their history.

use crate::error::ApiError;
use crate::named::Named;
use crate::webhook_view::no_webhook;
use axum::Json;
use mailqueue_core::WebhookId;
use serde_json::{json, Value};

pub async fn handle(webhook: Named<WebhookId>) -> Result<Json<Value>, ApiError> {
    if !webhook.state.service.delete_webhook(webhook.id).await? {
        return Err(no_webhook(&webhook.raw));
    }
    let id = webhook.id.to_string();
    Ok(Json(
        json!({"object": "webhook", "id": id, "deleted": true}),
    ))
}
