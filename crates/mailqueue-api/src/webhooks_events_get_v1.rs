//! `GET /v1/webhooks/{webhook_id}/events/{event_id}`: one delivery, with
//! the `payload` it carries (as POSTed, but for `created_at` precision).

use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::webhook_view::{delivery_json, event_id, no_event, webhook_id};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use mailqueue_core::webhooks::{payload, EventEmail, OutboxEvent};
use serde_json::Value;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path((raw_webhook, raw_event)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (id, event) = (webhook_id(&raw_webhook)?, event_id(&raw_event)?);
    let Some(d) = state.reads.get_webhook_delivery(id, event).await? else {
        return Err(no_event(&raw_event));
    };
    let mut v = delivery_json(&d);
    match d.event {
        OutboxEvent::Account(a) => v["payload"] = a.payload,
        OutboxEvent::Email { event, .. } => {
            if let Some(email) = state.reads.get_email(event.email_id).await? {
                let about = EventEmail::new(&email.email, &email.message_id, email.created_at);
                v["payload"] = payload(&event, &about);
            }
        }
    }
    Ok(Json(v))
}
