//! `DELETE /v1/domains/{domain_id}`: answers Resend's `{"object":
//! "domain", "id", "deleted": true}`. Its mail is no longer signed, and
//! keys limited to it can no longer send.

use crate::error::ApiError;
use crate::named::Named;
use axum::Json;
use mailqueue_core::DomainId;
use serde_json::{json, Value};

pub async fn handle(domain: Named<DomainId>) -> Result<Json<Value>, ApiError> {
    let domains = domain.state.service.domains()?;
    domains.delete(domain.id).await?;
    Ok(Json(
        json!({"object": "domain", "id": domain.id.to_string(), "deleted": true}),
    ))
}
