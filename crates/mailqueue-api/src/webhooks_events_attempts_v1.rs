//! `GET /v1/webhooks/{webhook_id}/events/{event_id}/attempts?limit=&after=`:
//! every try of one delivery, oldest first, with the status code it got
//! (none when the endpoint could not be reached or did not answer in
//! time), how long it took and what went wrong. Attempt ids are their
//! numbers, from 1; `after` pages on.

use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::pagination::Page;
use crate::webhook_view::{attempt_json, event_id, no_event, webhook_id};
use crate::ApiState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path((raw_webhook, raw_event)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (id, event) = (webhook_id(&raw_webhook)?, event_id(&raw_event)?);
    let page = Page::<usize>::parse(&params, &[], "an attempt id")?;
    if state.reads.get_webhook_delivery(id, event).await?.is_none() {
        return Err(no_event(&raw_event));
    }
    let attempts = state.reads.list_webhook_attempts(id, event).await?;
    let mut data: Vec<Value> = attempts
        .iter()
        .enumerate()
        .map(|(i, a)| (i + 1, a))
        .filter(|(n, _)| page.after.is_none_or(|after| *n > after))
        .filter(|(n, _)| page.before.is_none_or(|before| *n < before))
        .map(|(n, a)| attempt_json(n, a))
        .collect();
    let has_more = data.len() > page.limit as usize;
    data.truncate(page.limit as usize);
    Ok(Json(
        json!({"object": "list", "has_more": has_more, "data": data}),
    ))
}
