//! `GET /v1/suppressions?origin=&limit=&after=&before=`: the list, newest
//! first, optionally of one origin (`bounce`, `complaint`, `manual`).

use crate::auth::FullAccess;
use crate::error::ApiError;
use crate::pagination::Page;
use crate::suppression_view::suppression_json;
use crate::ApiState;
use axum::extract::{Query, State};
use axum::Json;
use mailqueue_core::suppression::{SuppressionOrigin, SuppressionQuery};
use mailqueue_core::SuppressionId;
use serde_json::{json, Value};
use std::collections::HashMap;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let page = Page::<SuppressionId>::parse(&params, &["origin"], "a suppression id")?;
    let origin = params
        .get("origin")
        .map(|raw| raw.parse::<SuppressionOrigin>())
        .transpose()
        .map_err(|m| ApiError::InvalidParameter(m, "origin"))?;
    let mut entries = state
        .reads
        .list_suppressions(&SuppressionQuery {
            origin,
            limit: page.read_limit(),
            after: page.after,
            before: page.before,
        })
        .await?;
    if page.before.is_some() {
        entries.reverse();
    }
    let has_more = page.trim(&mut entries);
    let data: Vec<Value> = entries
        .iter()
        .map(|s| {
            let mut v = suppression_json(s);
            if let Some(o) = v.as_object_mut() {
                o.remove("object");
            }
            v
        })
        .collect();
    Ok(Json(
        json!({"object": "list", "has_more": has_more, "data": data}),
    ))
}
