//! Writing events (with their webhook deliveries) and reading an email's
//! history, in PostgreSQL.

use crate::errors::store_error;
use crate::shared::event_rows::EventRow;
use crate::shared::with_names;
use mailqueue_core::store::StoreError;
use sqlx::PgConnection;
use uuid::Uuid;

/// Inserts `events`, and a pending delivery for each enabled webhook
/// subscribed to an event's type, in one statement.
pub async fn write_events(conn: &mut PgConnection, events: &[EventRow]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(&with_names(
        "WITH ev AS ( \
             INSERT INTO email_events (id, email_id, type, created_at, data) \
             SELECT u.id, u.email_id, u.type, u.created_at, u.data::jsonb \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[]) \
                  AS u(id, email_id, type, created_at, data) \
             RETURNING id, type, created_at) \
         INSERT INTO webhook_deliveries (webhook_id, event_id, status, next_attempt_at, created_at) \
         SELECT w.id, ev.id, {delivery_pending}, ev.created_at, ev.created_at \
         FROM ev JOIN webhooks AS w ON w.status = {webhook_enabled} AND ev.type = ANY (w.events)",
    ))
    .bind(events.iter().map(|e| e.id.0).collect::<Vec<Uuid>>())
    .bind(events.iter().map(|e| e.email_id.0).collect::<Vec<Uuid>>())
    .bind(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<&str>>())
    .bind(events.iter().map(|e| e.created_at).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.data.as_str()).collect::<Vec<&str>>())
    .execute(conn)
    .await
    .map_err(|e| store_error("recording events", e))?;
    Ok(())
}
