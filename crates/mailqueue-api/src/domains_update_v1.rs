//! `PATCH /v1/domains/{domain_id}` with `{open_tracking?, click_tracking?,
//! tls?, capabilities?, tracking_subdomain?}`: answers Resend's
//! `{"object": "domain", "id"}`. `tls: "enforced"` keeps the domain's mail
//! off relay connections without TLS. Resend's Python SDK repeats the
//! path's `id` in the body; it must match.

use crate::body::{parse_json, RawBody};
use crate::domain_view::{check_capabilities, tls, tracking_subdomain};
use crate::error::ApiError;
use crate::named::Named;
use axum::Json;
use mailqueue_core::domains::DomainChange;
use mailqueue_core::DomainId;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateDomainRequest {
    /// The Python SDK repeats the id in the body.
    id: Option<String>,
    open_tracking: Option<bool>,
    click_tracking: Option<bool>,
    tls: Option<String>,
    capabilities: Option<serde_json::Map<String, Value>>,
    tracking_subdomain: Option<String>,
}

pub async fn handle(
    domain: Named<DomainId>,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let r: UpdateDomainRequest = parse_json(&body)?;
    domain.same_as_body("id", r.id.as_deref())?;
    check_capabilities(&r.capabilities).map_err(ApiError::Validation)?;
    let change = DomainChange {
        open_tracking: r.open_tracking,
        click_tracking: r.click_tracking,
        tls: r
            .tls
            .as_deref()
            .map(tls)
            .transpose()
            .map_err(ApiError::Validation)?,
        tracking_subdomain: tracking_subdomain(r.tracking_subdomain)
            .map_err(ApiError::Validation)?,
    };
    let domains = domain.state.service.domains()?;
    let changed = domains.update(domain.id, &change).await?;
    Ok(Json(
        json!({"object": "domain", "id": changed.id.to_string()}),
    ))
}
