//! `POST /v1/api-keys` with `{"name", "permission"?}`: makes a key and
//! answers 201 `{"id", "token"}`. The token is shown here only.

use crate::auth::FullAccess;
use crate::body::{parse_json, RawBody};
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mailqueue_core::api_key::{ApiKeyName, ApiKeyPermission};
use mailqueue_core::FieldError;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiKeyRequest {
    name: Option<String>,
    /// `full_access` when absent, as in Resend.
    permission: Option<String>,
    /// Resend can restrict a sending key to one of its domains. mailqueue
    /// has no domains, so the field is refused rather than ignored: the
    /// caller would otherwise hold a broader key than it asked for.
    domain_id: Option<serde_json::Value>,
}

/// The request, parsed: what the use case needs and nothing unchecked.
struct NewApiKey {
    name: ApiKeyName,
    permission: ApiKeyPermission,
}

impl TryFrom<CreateApiKeyRequest> for NewApiKey {
    type Error = FieldError;

    fn try_from(request: CreateApiKeyRequest) -> Result<Self, Self::Error> {
        if request.domain_id.is_some() {
            return Err(FieldError::invalid(
                "domain_id",
                "mailqueue has no domains, so a key cannot be restricted to one; leave out `domain_id`.",
            ));
        }
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
        Ok(NewApiKey { name, permission })
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
        .create_api_key(&new.name, new.permission)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": record.id.to_string(), "token": token.expose()})),
    ))
}
