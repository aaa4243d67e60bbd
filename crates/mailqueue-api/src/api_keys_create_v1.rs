//! `POST /v1/api-keys` with `{"name", "permission"?, "domain_id"?}`: makes
//! a key and answers 201 `{"id", "token"}`. The token is shown here only.
//! A `sending_access` key with a `domain_id` may send only from that
//! domain (and its subdomains).

use crate::auth::FullAccess;
use crate::body::{parse_json, RawBody};
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mailqueue_core::api_key::{ApiKeyName, ApiKeyPermission};
use mailqueue_core::{DomainId, FieldError};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiKeyRequest {
    name: Option<String>,
    /// `full_access` when absent, as in Resend.
    permission: Option<String>,
    /// Limits a `sending_access` key to one domain's senders.
    domain_id: Option<String>,
}

/// The request, parsed: what the use case needs and nothing unchecked.
struct NewApiKey {
    name: ApiKeyName,
    permission: ApiKeyPermission,
    domain_id: Option<DomainId>,
}

impl TryFrom<CreateApiKeyRequest> for NewApiKey {
    type Error = FieldError;

    fn try_from(request: CreateApiKeyRequest) -> Result<Self, Self::Error> {
        let raw_name = request
            .name
            .ok_or_else(|| FieldError::missing("name", "The `name` field is missing."))?;
        let name = ApiKeyName::parse(&raw_name).map_err(|m| FieldError::invalid("name", m))?;
        let permission = match request.permission {
            None => ApiKeyPermission::default(),
            Some(raw) => raw
                .parse()
                .map_err(|m| FieldError::invalid("permission", m))?,
        };
        let domain_id = request
            .domain_id
            .map(|raw| {
                raw.parse::<DomainId>().map_err(|_| {
                    FieldError::invalid("domain_id", "`domain_id` must be a domain id.")
                })
            })
            .transpose()?;
        if domain_id.is_some() && permission != ApiKeyPermission::SendingAccess {
            return Err(FieldError::invalid(
                "domain_id",
                "`domain_id` limits a `sending_access` key; a `full_access` key cannot be limited to a domain.",
            ));
        }
        Ok(NewApiKey {
            name,
            permission,
            domain_id,
        })
    }
}

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let request: CreateApiKeyRequest = parse_json(&body)?;
    let new = NewApiKey::try_from(request).map_err(ApiError::Validation)?;
    let (record, token) = state
        .service
        .create_api_key(&new.name, new.permission, new.domain_id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": record.id.to_string(), "token": token.expose()})),
    ))
}
