//! `POST /v1/suppressions/batch/remove` with `{"emails": [...]}` or
//! `{"ids": [...]}` (1 to 100, not both): removes them in one transaction;
//! answers `{"data": [{"object": "suppression", "id", "deleted": true}]}`
//! for what was on the list; misses are left out, as in Resend.

use crate::auth::FullAccess;
use crate::body::{parse_json, RawBody};
use crate::error::ApiError;
use crate::suppression_view::{address, batch_size};
use crate::ApiState;
use axum::extract::State;
use axum::Json;
use mailqueue_core::suppression::{suppression_key, SuppressionRef};
use mailqueue_core::{FieldError, SuppressionId};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchRemoveRequest {
    emails: Option<Vec<String>>,
    ids: Option<Vec<String>>,
}

fn refs(request: BatchRemoveRequest) -> Result<Vec<SuppressionRef>, ApiError> {
    let item = |index, error| ApiError::BatchItem { index, error };
    match (request.emails, request.ids) {
        (Some(emails), None) => {
            batch_size("emails", emails.len())?;
            emails
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    address("emails", a)
                        .map(|a| SuppressionRef::Email(suppression_key(&a)))
                        .map_err(|e| item(i, e))
                })
                .collect()
        }
        (None, Some(ids)) => {
            batch_size("ids", ids.len())?;
            ids.iter()
                .enumerate()
                .map(|(i, raw)| {
                    raw.parse::<SuppressionId>()
                        .map(SuppressionRef::Id)
                        .map_err(|_| {
                            item(
                                i,
                                FieldError::invalid(
                                    "ids",
                                    format!("`{raw}` is not a suppression id."),
                                ),
                            )
                        })
                })
                .collect()
        }
        (Some(_), Some(_)) => Err(ApiError::Validation(FieldError::invalid(
            "ids",
            "Provide either `emails` or `ids`, not both.",
        ))),
        (None, None) => Err(ApiError::Validation(FieldError::missing(
            "emails",
            "Provide `emails` or `ids`.",
        ))),
    }
}

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let asked = refs(parse_json(&body)?)?;
    let removed = state.service.remove_suppressions(&asked).await?;
    let data: Vec<Value> = removed
        .into_iter()
        .flatten()
        .map(|s| json!({"object": "suppression", "id": s.id.to_string(), "deleted": true}))
        .collect();
    Ok(Json(json!({ "data": data })))
}
