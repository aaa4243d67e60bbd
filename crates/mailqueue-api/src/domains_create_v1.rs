//! `POST /v1/domains` with Resend's `{name, region?, custom_return_path?,
//! open_tracking?, click_tracking?, tls?, capabilities?,
//! tracking_subdomain?}` (and our `dkim_algorithm?`): makes the domain
//! and its first DKIM key, and answers 201 with the records to publish.

use crate::auth::FullAccess;
use crate::body::{parse_json, RawBody};
use crate::domain_view::{algorithm, check_capabilities, domain_json, tls, tracking_subdomain};
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mailqueue_core::domains::{check_label, DomainName, Region, TlsPolicy};
use mailqueue_core::FieldError;
use mailqueue_service::domains::NewDomain;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateDomainRequest {
    name: Option<String>,
    region: Option<String>,
    custom_return_path: Option<String>,
    open_tracking: Option<bool>,
    click_tracking: Option<bool>,
    tls: Option<String>,
    capabilities: Option<serde_json::Map<String, Value>>,
    tracking_subdomain: Option<String>,
    dkim_algorithm: Option<String>,
}

impl TryFrom<CreateDomainRequest> for NewDomain {
    type Error = FieldError;

    fn try_from(r: CreateDomainRequest) -> Result<Self, FieldError> {
        let raw_name = r
            .name
            .ok_or_else(|| FieldError::missing("name", "Missing `name` field."))?;
        let name = DomainName::parse(&raw_name).map_err(|m| FieldError::invalid("name", m))?;
        let region = match r.region {
            None => Region::UsEast1,
            Some(raw) => Region::parse(&raw).ok_or_else(|| {
                FieldError::invalid(
                    "region",
                    "Region must be \"us-east-1\" | \"eu-west-1\" | \"sa-east-1\" | \"ap-northeast-1\".",
                )
            })?,
        };
        let custom_return_path = r
            .custom_return_path
            .map(|p| p.trim().to_ascii_lowercase())
            .unwrap_or_else(|| "send".into());
        check_label(&custom_return_path).map_err(|e| {
            FieldError::invalid("custom_return_path", format!("`custom_return_path`: {e}"))
        })?;
        check_capabilities(&r.capabilities)?;
        Ok(NewDomain {
            name,
            region,
            custom_return_path,
            open_tracking: r.open_tracking.unwrap_or(false),
            click_tracking: r.click_tracking.unwrap_or(false),
            tls: r
                .tls
                .as_deref()
                .map(tls)
                .transpose()?
                .unwrap_or(TlsPolicy::Opportunistic),
            tracking_subdomain: tracking_subdomain(r.tracking_subdomain)?,
            algorithm: r
                .dkim_algorithm
                .as_deref()
                .map(algorithm)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request: CreateDomainRequest = parse_json(&body)?;
    let new = NewDomain::try_from(request).map_err(ApiError::Validation)?;
    let domains = state.service.domains()?;
    let domain = domains.create(new).await?;
    Ok((
        StatusCode::CREATED,
        Json(domain_json(&domain, domains.records_config(), false)),
    ))
}
