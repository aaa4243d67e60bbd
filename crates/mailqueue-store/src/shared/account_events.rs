//! Account events (`domain.*`), written once for both stores: the event
//! with its payload, a pending delivery for each enabled webhook
//! subscribed to its type, and retention. They share the outbox with
//! the email events; the claim tells them apart by the table that holds
//! the event (see `webhooks::claim_and_read`).

use super::{with_names, Dialect, Param, Statement};
use chrono::{DateTime, Utc};
use mailqueue_core::webhooks::AccountEvent;

pub fn insert(e: &AccountEvent) -> Statement {
    Statement::new(
        "INSERT INTO account_events (id, type, created_at, payload) VALUES ($1, $2, $3, $4)",
    )
    .with(Param::Uuid(e.id.0))
    .with(Param::Text(e.event_type.as_str().into()))
    .with(Param::Time(e.created_at))
    .with(Param::Text(e.payload.to_string()))
}

/// A pending delivery of `e` for each enabled webhook subscribed to it.
pub fn fan_out(d: Dialect, e: &AccountEvent) -> Statement {
    let subscribed = match d {
        Dialect::Postgres => "$2 = ANY (w.events)",
        Dialect::Sqlite => "EXISTS (SELECT 1 FROM json_each(w.events) WHERE json_each.value = $2)",
    };
    Statement::new(with_names(&format!(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, status, next_attempt_at, created_at) \
         SELECT w.id, $1, {{delivery_pending}}, $3, $3 FROM webhooks AS w \
         WHERE w.status = {{webhook_enabled}} AND {subscribed}"
    )))
    .with(Param::Uuid(e.id.0))
    .with(Param::Text(e.event_type.as_str().into()))
    .with(Param::Time(e.created_at))
}

/// Deletes a batch of the oldest account events created before `$1`, at
/// most `$2`, with their deliveries: in the same statement on PostgreSQL
/// (the outbox has no foreign keys there), by a trigger on SQLite
/// (migration 0015).
pub fn purge(d: Dialect, before: DateTime<Utc>, limit: u32) -> Statement {
    let delete = "DELETE FROM account_events WHERE id IN (SELECT id FROM account_events \
                  WHERE created_at < $1 ORDER BY created_at LIMIT $2)";
    Statement::new(match d {
        Dialect::Postgres => format!(
            "WITH gone AS ({delete} RETURNING id), \
             outbox AS (DELETE FROM webhook_deliveries \
                 WHERE event_id = ANY (ARRAY(SELECT id FROM gone))) \
             SELECT id FROM gone"
        ),
        Dialect::Sqlite => format!("{delete} RETURNING id"),
    })
    .with(Param::Time(before))
    .with(Param::Int(i64::from(limit)))
}
