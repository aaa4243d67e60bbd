//! `GET /v1/emails?limit=&after=&before=&status=`: newest first, keyset
//! pagination on the id (`after` pages to older emails, `before` to newer).

use crate::auth::Authenticated;
use crate::email_view::email_json;
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::{Query, State};
use axum::Json;
use mailqueue_core::store::ListQuery;
use mailqueue_core::{EmailId, EmailStatus};
use serde_json::json;
use std::collections::HashMap;

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

fn cursor(
    params: &HashMap<String, String>,
    name: &'static str,
) -> Result<Option<EmailId>, ApiError> {
    params
        .get(name)
        .map(|raw| {
            raw.parse().map_err(|_| {
                ApiError::InvalidParameter(format!("`{name}` must be an email id."), name)
            })
        })
        .transpose()
}

fn parse_query(params: &HashMap<String, String>) -> Result<ListQuery, ApiError> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !["limit", "after", "before", "status"].contains(&k.as_str()))
    {
        return Err(ApiError::InvalidParameter(
            format!("Unknown query parameter `{unknown}`; use limit, after, before or status."),
            "query",
        ));
    }
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidParameter(format!("`limit` must be 1 to {MAX_LIMIT}."), "limit")
            })?,
    };
    let query = ListQuery {
        after: cursor(params, "after")?,
        before: cursor(params, "before")?,
        status: params
            .get("status")
            .map(|s| {
                s.parse::<EmailStatus>()
                    .map_err(|m| ApiError::InvalidParameter(m, "status"))
            })
            .transpose()?,
        limit,
    };
    if query.after.is_some() && query.before.is_some() {
        return Err(ApiError::InvalidParameter(
            "Use `after` or `before`, not both.".into(),
            "before",
        ));
    }
    Ok(query)
}

pub async fn handle(
    State(state): State<ApiState>,
    _: Authenticated,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut query = parse_query(&params)?;
    let limit = query.limit as usize;
    query.limit += 1;
    let mut records = state.store.list_emails(&query).await?;
    let has_more = records.len() > limit;
    if has_more {
        // One extra row was read to learn whether more exist. Towards older
        // emails it is the last; towards newer ones (`before`) the first.
        if query.before.is_some() {
            records.remove(0);
        } else {
            records.truncate(limit);
        }
    }
    let data: Vec<_> = records.iter().map(|r| email_json(r, false)).collect();
    Ok(Json(
        json!({"object": "list", "has_more": has_more, "data": data}),
    ))
}
