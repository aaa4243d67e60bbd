//! `GET /v1/webhooks/{webhook_id}/events?limit=&after=&before=`: the
//! webhook's delivery log, newest event first, each with its status
//! (`pending`, `delivered`, `failed`), attempts and last answer.

use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::pagination::Page;
use crate::webhook_view::{delivery_json, no_webhook, webhook_id};
use crate::ApiState;
use axum::extract::{Path, Query, State};
use axum::Json;
use mailqueue_core::webhooks::WebhookPage;
use mailqueue_core::EventId;
use serde_json::{json, Value};
use std::collections::HashMap;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = webhook_id(&raw)?;
    let page = Page::<EventId>::parse(&params, &[], "an event id")?;
    if state.reads.get_webhook(id).await?.is_none() {
        return Err(no_webhook(&raw));
    }
    let mut deliveries = state
        .reads
        .list_webhook_deliveries(
            id,
            &WebhookPage {
                limit: page.read_limit(),
                after: page.after,
                before: page.before,
            },
        )
        .await?;
    if page.before.is_some() {
        deliveries.reverse();
    }
    let has_more = page.trim(&mut deliveries);
    let data: Vec<Value> = deliveries.iter().map(delivery_json).collect();
    Ok(Json(
        json!({"object": "list", "has_more": has_more, "data": data}),
    ))
}
