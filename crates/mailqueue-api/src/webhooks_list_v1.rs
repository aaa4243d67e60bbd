//! `GET /v1/webhooks?limit=&after=&before=`: the webhooks, newest first,
//! without their secrets.

use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::pagination::Page;
use crate::webhook_view::webhook_list_item;
use crate::ApiState;
use axum::extract::{Query, State};
use axum::Json;
use mailqueue_core::webhooks::WebhookPage;
use mailqueue_core::WebhookId;
use serde_json::{json, Value};
use std::collections::HashMap;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let page = Page::<WebhookId>::parse(&params, &[], "a webhook id")?;
    let mut webhooks = state
        .reads
        .list_webhooks(&WebhookPage {
            limit: page.read_limit(),
            after: page.after,
            before: page.before,
        })
        .await?;
    if page.before.is_some() {
        webhooks.reverse();
    }
    let has_more = page.trim(&mut webhooks);
    let data: Vec<Value> = webhooks.iter().map(webhook_list_item).collect();
    Ok(Json(
        json!({"object": "list", "has_more": has_more, "data": data}),
    ))
}
