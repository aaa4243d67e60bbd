//! `POST /v1/webhooks` with `{"endpoint", "events"}`: answers 201
//! `{"object": "webhook", "id", "signing_secret"}`; the secret signs
//! every delivery (see `docs/webhooks.md`).

use crate::auth::FullAccess;
use crate::body::{parse_json, RawBody};
use crate::error::ApiError;
use crate::webhook_view::{endpoint, event_types};
use crate::ApiState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mailqueue_core::FieldError;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWebhookRequest {
    endpoint: Option<String>,
    events: Option<Vec<String>>,
}

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let request: CreateWebhookRequest = parse_json(&body)?;
    let missing = |field: &str| {
        ApiError::Validation(FieldError::missing(
            field,
            format!("The `{field}` field is missing."),
        ))
    };
    let raw_endpoint = request.endpoint.ok_or_else(|| missing("endpoint"))?;
    let events = event_types(&request.events.ok_or_else(|| missing("events"))?)?;
    let endpoint = endpoint(&raw_endpoint, state.settings.webhooks.allow_private).await?;
    let webhook = state.service.create_webhook(endpoint, events).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "object": "webhook",
            "id": webhook.id.to_string(),
            "signing_secret": webhook.signing_secret.expose(),
        })),
    ))
}
