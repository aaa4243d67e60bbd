//! Writing events (with their webhook deliveries), and the suppressions
//! that bounces add, in SQLite.

use super::to_ms;
use crate::errors::store_error;
use crate::outcome::BounceSuppression;
use crate::shared::event_rows::EventRow;
use crate::shared::with_names;
use chrono::{DateTime, Utc};
use mailqueue_core::events::EventType;
use mailqueue_core::store::{ClaimedEmail, StoreError};
use mailqueue_core::transition::comes_due;
use mailqueue_core::EmailId;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::HashSet;

/// Events per multi-row insert (5 parameters each).
const CHUNK: usize = 400;

/// Inserts `events`, and a pending delivery for each enabled webhook
/// subscribed to an event's type.
pub async fn write_events(
    conn: &mut SqliteConnection,
    events: &[EventRow],
) -> Result<(), StoreError> {
    for chunk in events.chunks(CHUNK) {
        let mut insert: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO email_events (id, email_id, type, created_at, data) ");
        insert.push_values(chunk, |mut b, e| {
            b.push_bind(e.id.to_string())
                .push_bind(e.email_id.to_string())
                .push_bind(e.event_type.as_str())
                .push_bind(to_ms(e.created_at))
                .push_bind(e.data.as_str());
        });
        insert
            .build()
            .execute(&mut *conn)
            .await
            .map_err(|e| store_error("recording events", e))?;
        let mut fan_out: QueryBuilder<Sqlite> = QueryBuilder::new(with_names(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, status, next_attempt_at, created_at) \
             SELECT w.id, ev.id, {delivery_pending}, ev.created_at, ev.created_at \
             FROM email_events AS ev JOIN webhooks AS w ON w.status = {webhook_enabled} \
                 AND EXISTS (SELECT 1 FROM json_each(w.events) WHERE json_each.value = ev.type) \
             WHERE ev.id IN (",
        ));
        let mut ids = fan_out.separated(", ");
        for e in chunk {
            ids.push_bind(e.id.to_string());
        }
        fan_out.push(")");
        fan_out
            .build()
            .execute(&mut *conn)
            .await
            .map_err(|e| store_error("queueing webhook deliveries", e))?;
    }
    Ok(())
}

/// `email.sent` for each claimed email whose scheduled time came
/// (`transition::comes_due`), marking those claims `came_due`.
pub async fn came_due(
    conn: &mut SqliteConnection,
    claimed: &mut [ClaimedEmail],
    now: DateTime<Utc>,
) -> Result<Vec<EventRow>, StoreError> {
    let maybe = |c: &ClaimedEmail| comes_due(c.attempt, c.email.scheduled_at, c.created_at, false);
    let candidates: Vec<String> = claimed
        .iter()
        .filter(|c| maybe(c))
        .map(|c| c.id.to_string())
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
        "SELECT email_id FROM email_events WHERE type = '{}' AND email_id IN (",
        EventType::Sent
    ));
    let mut list = q.separated(", ");
    for id in &candidates {
        list.push_bind(id.clone());
    }
    q.push(")");
    let already: HashSet<String> = q
        .build_query_scalar()
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| store_error("reading events", e))?
        .into_iter()
        .collect();
    let mut events = Vec::new();
    for c in claimed.iter_mut() {
        let has_sent = already.contains(&c.id.to_string());
        c.came_due = comes_due(c.attempt, c.email.scheduled_at, c.created_at, has_sent);
        if c.came_due {
            events.push(EventRow::plain(c.id, now, EventType::Sent));
        }
    }
    Ok(events)
}

/// Puts the recipients that bounced for good on the suppression list, for
/// the outcomes that applied.
pub async fn suppress_bounced(
    conn: &mut SqliteConnection,
    suppressions: &[BounceSuppression],
    applied: &HashSet<EmailId>,
) -> Result<(), StoreError> {
    for b in suppressions
        .iter()
        .filter(|b| applied.contains(&b.email_id))
    {
        sqlx::query(&with_names(
            "INSERT INTO suppressions (id, email, origin, reason, email_id, created_at) \
             VALUES ($1, $2, {origin_bounce}, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
        ))
        .bind(b.id.to_string())
        .bind(&b.email)
        .bind(&b.reason)
        .bind(b.email_id.to_string())
        .bind(to_ms(b.created_at))
        .execute(&mut *conn)
        .await
        .map_err(|e| store_error("suppressing bounced addresses", e))?;
    }
    Ok(())
}
