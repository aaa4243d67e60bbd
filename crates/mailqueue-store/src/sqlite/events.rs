//! Writing events (with their webhook deliveries), and the suppressions
//! that bounces add, in SQLite.

use super::to_ms;
use crate::errors::store_error;
use crate::shared::events::EventRow;
use chrono::{DateTime, Utc};
use mailqueue_core::events::{outcome_suppressions, EventType};
use mailqueue_core::store::{AttemptOutcome, ClaimedEmail, StoreError};
use mailqueue_core::suppression::suppression_key;
use mailqueue_core::{EmailAddress, EmailId, SuppressionId};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

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
        let mut fan_out: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, status, next_attempt_at, created_at) \
             SELECT w.id, ev.id, 'pending', ev.created_at, ev.created_at \
             FROM email_events AS ev JOIN webhooks AS w ON w.status = 'enabled' \
                 AND EXISTS (SELECT 1 FROM json_each(w.events) WHERE json_each.value = ev.type) \
             WHERE ev.id IN (",
        );
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

/// `email.sent` for each claimed email whose scheduled time came (its
/// first claim), unless it already has one (a deferred email comes back).
pub async fn came_due(
    conn: &mut SqliteConnection,
    claimed: &[ClaimedEmail],
    now: DateTime<Utc>,
) -> Result<Vec<EventRow>, StoreError> {
    let candidates: Vec<&ClaimedEmail> = claimed
        .iter()
        .filter(|c| c.attempt == 1 && c.email.scheduled_at.is_some_and(|s| s > c.created_at))
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT email_id FROM email_events WHERE type = 'email.sent' AND email_id IN (",
    );
    let mut list = q.separated(", ");
    for c in &candidates {
        list.push_bind(c.id.to_string());
    }
    q.push(")");
    let already: Vec<String> = q
        .build_query_scalar()
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| store_error("reading events", e))?;
    Ok(candidates
        .into_iter()
        .filter(|c| !already.contains(&c.id.to_string()))
        .map(|c| EventRow::plain(c.id, now, EventType::Sent))
        .collect())
}

/// Puts the recipients that bounced for good on the suppression list.
pub async fn suppress_bounced(
    conn: &mut SqliteConnection,
    outcomes: &[AttemptOutcome],
    applied: &[EmailId],
) -> Result<(), StoreError> {
    for o in outcomes.iter().filter(|o| applied.contains(&o.email_id)) {
        for r in outcome_suppressions(o) {
            let key = EmailAddress::parse(&r.address)
                .map(|a| suppression_key(&a))
                .unwrap_or_else(|_| r.address.clone());
            sqlx::query(
                "INSERT INTO suppressions (id, email, origin, reason, email_id, created_at) \
                 VALUES ($1, $2, 'bounce', $3, $4, $5) ON CONFLICT (email) DO NOTHING",
            )
            .bind(SuppressionId::generate(o.finished_at).to_string())
            .bind(key)
            .bind(r.reply.to_string())
            .bind(o.email_id.to_string())
            .bind(to_ms(o.finished_at))
            .execute(&mut *conn)
            .await
            .map_err(|e| store_error("suppressing bounced addresses", e))?;
        }
    }
    Ok(())
}
