//! `GET /v1/emails/{id}/events`: the email's history, oldest first, one
//! event per status change (written in the change's transaction).

use crate::auth::FullAccess;
use crate::email_history::history;
use crate::email_view::event_json;
use crate::error::ApiError;
use crate::ApiState;
use axum::extract::{Path, State};
use axum::Json;

pub async fn handle(
    State(state): State<ApiState>,
    _: FullAccess,
    Path(raw_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.store.clone();
    history(
        &state,
        &raw_id,
        |id| async move { store.list_email_events(id).await },
        event_json,
    )
    .await
}
