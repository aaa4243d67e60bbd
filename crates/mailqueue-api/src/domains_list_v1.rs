//! `GET /v1/domains?limit=&after=&before=`: the domains, newest first,
//! without their records (as Resend lists them).

use crate::auth::FullAccess;
use crate::domain_view::domain_list_item;
use crate::error::ApiError;
use crate::pagination::Page;
use crate::ApiState;
use axum::extract::{Query, State};
use axum::Json;
use mailqueue_core::domains::DomainPage;
use mailqueue_core::DomainId;
use serde_json::{json, Value};
use std::collections::HashMap;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let page = Page::<DomainId>::parse(&params, &[], "a domain id")?;
    let mut domains = state
        .service
        .domains()?
        .list(&DomainPage {
            limit: page.read_limit(),
            after: page.after,
            before: page.before,
        })
        .await?;
    if page.before.is_some() {
        domains.reverse();
    }
    let has_more = page.trim(&mut domains);
    let data: Vec<Value> = domains.iter().map(domain_list_item).collect();
    Ok(Json(
        json!({"object": "list", "has_more": has_more, "data": data}),
    ))
}
