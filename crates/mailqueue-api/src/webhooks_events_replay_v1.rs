//! `POST /v1/webhooks/{webhook_id}/events/{event_id}/replay`: sends the
//! event to the webhook again, now, with the same `svix-id` and the whole
//! retry schedule ahead (a delivered or failed event as well as a pending
//! one).

use crate::auth::FullAccess;
use crate::body::{expect_empty_object, RawBody};
use crate::error::ApiError;
use crate::webhook_view::{event_id, no_event, webhook_id};
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path((raw_webhook, raw_event)): Path<(String, String)>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let (id, event) = (webhook_id(&raw_webhook)?, event_id(&raw_event)?);
    expect_empty_object(&body)?;
    if state.service.replay_webhook_delivery(id, event).await? {
        Ok(Json(json!({
            "object": "webhook_event",
            "id": event.to_string(),
            "webhook_id": id.to_string(),
        })))
    } else {
        Err(no_event(&raw_event))
    }
}
