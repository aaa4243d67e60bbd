//! `GET /v1/emails?limit=&after=&before=&status=`: newest first, keyset
//! pagination on the id (`after` pages to older emails, `before` to newer).

use crate::auth::FullAccess;
use crate::email_view::email_json;
use crate::error::ApiError;
use crate::pagination::Page;
use crate::ApiState;
use axum::extract::{Query, State};
use axum::Json;
use mailqueue_core::store::ListQuery;
use mailqueue_core::{EmailId, EmailStatus};
use serde_json::json;
use std::collections::HashMap;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let page = Page::<EmailId>::parse(&params, &["status"], "an email id")?;
    let status = params
        .get("status")
        .map(|s| {
            s.parse::<EmailStatus>()
                .map_err(|m| ApiError::InvalidParameter(m, "status"))
        })
        .transpose()?;
    let query = ListQuery {
        after: page.after,
        before: page.before,
        status,
        limit: page.read_limit(),
    };
    let mut records = state.reads.list_emails(&query).await?;
    let has_more = page.trim(&mut records);
    let data: Vec<_> = records.iter().map(|r| email_json(r, false)).collect();
    Ok(Json(
        json!({"object": "list", "has_more": has_more, "data": data}),
    ))
}
