//! `GET /v1/domains/{domain_id}`: the domain with its records and their
//! statuses.

use crate::domain_view::domain_json;
use crate::error::ApiError;
use crate::named::Named;
use axum::Json;
use mailqueue_core::DomainId;
use serde_json::Value;

pub async fn handle(domain: Named<DomainId>) -> Result<Json<Value>, ApiError> {
    let domains = domain.state.service.domains()?;
    let found = domains.get(domain.id).await?;
    Ok(Json(domain_json(&found, domains.records_config(), true)))
}
