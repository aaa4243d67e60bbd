//! `POST /v1/domains/{domain_id}/dkim/rotate` (mailqueue's own) with
//! `{dkim_algorithm?}`: adds a DKIM key under the next selector and
//! answers 200 with the domain and its records. The current key goes on
//! signing until the new key's record is seen in DNS; then the new one
//! signs and the old one is dropped.

use crate::body::{parse_json, RawBody};
use crate::domain_view::{algorithm, domain_json};
use crate::error::ApiError;
use crate::named::Named;
use axum::Json;
use mailqueue_core::DomainId;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    dkim_algorithm: Option<String>,
}

pub async fn handle(
    domain: Named<DomainId>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        parse_json(&body)?
    };
    let algorithm = request
        .dkim_algorithm
        .as_deref()
        .map(algorithm)
        .transpose()
        .map_err(ApiError::Validation)?;
    let domains = domain.state.service.domains()?;
    let rotated = domains.rotate_key(domain.id, algorithm).await?;
    Ok(Json(domain_json(&rotated, domains.records_config(), true)))
}
