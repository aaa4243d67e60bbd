//! `POST /v1/domains/{domain_id}/verify`: marks the domain `pending` and
//! checks its records through DNS in the background; answers Resend's
//! `{"object": "domain", "id"}` at once. The maintenance leader goes on
//! checking it (see `docs/domains.md`).

use crate::error::ApiError;
use crate::named::Action;
use axum::Json;
use mailqueue_core::DomainId;
use serde_json::{json, Value};

pub async fn handle(domain: Action<DomainId>) -> Result<Json<Value>, ApiError> {
    let domains = domain.state.service.domains()?;
    domains.request_check(domain.id).await?;
    Ok(Json(
        json!({"object": "domain", "id": domain.id.to_string()}),
    ))
}
