//! `GET /v1/api-keys?limit=&after=&before=`: the keys that can still be
//! used, newest first, as `{"object": "list", "has_more", "data"}`. Each
//! key has Resend's `id`, `name`, `created_at` and `last_used_at` (always
//! `null`: mailqueue does not record use), plus its `permission`. Revoked
//! keys are gone, as deleted keys are in Resend.

use crate::auth::FullAccess;
use crate::email_view::timestamp;
use crate::error::ApiError;
use crate::pagination::Page;
use crate::ApiState;
use axum::extract::{Query, State};
use axum::Json;
use mailqueue_core::store::ApiKeyRecord;
use mailqueue_core::ApiKeyId;
use serde_json::{json, Value};
use std::collections::HashMap;

fn api_key_json(key: &ApiKeyRecord) -> Value {
    json!({
        "id": key.id.to_string(),
        "name": key.name,
        "created_at": timestamp(key.created_at),
        "last_used_at": Value::Null,
        "permission": key.permission.as_str(),
    })
}

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let page = Page::<ApiKeyId>::parse(&params, &[], "an API key id")?;
    let mut active: Vec<ApiKeyRecord> = state
        .reads
        .list_api_keys()
        .await?
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .collect();
    active.sort_by_key(|k| std::cmp::Reverse(k.id));
    // Keys are few, so the page is cut here rather than in SQL.
    let read = page.read_limit() as usize;
    let mut keys: Vec<ApiKeyRecord> = match (page.after, page.before) {
        (Some(after), _) => active
            .into_iter()
            .filter(|k| k.id < after)
            .take(read)
            .collect(),
        (None, Some(before)) => {
            let newer: Vec<_> = active.into_iter().filter(|k| k.id > before).collect();
            let skip = newer.len().saturating_sub(read);
            newer.into_iter().skip(skip).collect()
        }
        (None, None) => active.into_iter().take(read).collect(),
    };
    let has_more = page.trim(&mut keys);
    let data: Vec<Value> = keys.iter().map(api_key_json).collect();
    Ok(Json(
        json!({"object": "list", "has_more": has_more, "data": data}),
    ))
}
