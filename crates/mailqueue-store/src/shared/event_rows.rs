//! Events as rows. What each change writes is the core's decision
//! (`mailqueue_core::transition`); the stores write the rows with
//! `write_events` (`postgres/event_writes.rs`, `sqlite/event_writes.rs`) in the
//! transaction of the change, which also queues a webhook delivery for
//! every enabled webhook subscribed to the event's type.

use chrono::{DateTime, Utc};
use mailqueue_core::events::{EventData, EventType, NewEvent};
use mailqueue_core::store::EmailToInsert;
use mailqueue_core::transition::{self, WrittenEvents};
use mailqueue_core::{EmailId, EventId};

/// An event ready to insert.
#[derive(Clone, Debug)]
pub struct EventRow {
    pub id: EventId,
    pub email_id: EmailId,
    pub event_type: EventType,
    pub created_at: DateTime<Utc>,
    /// `EventData` as JSON.
    pub data: String,
}

impl EventRow {
    pub fn new(email_id: EmailId, at: DateTime<Utc>, event: NewEvent) -> Self {
        Self {
            id: event.id,
            email_id,
            event_type: event.event_type,
            created_at: at,
            data: serde_json::to_string(&event.data)
                .unwrap_or_else(|e| unreachable!("event data always serializes: {e}")),
        }
    }

    /// An event without details.
    pub fn plain(email_id: EmailId, at: DateTime<Utc>, event_type: EventType) -> Self {
        Self::new(
            email_id,
            at,
            NewEvent::new(at, event_type, EventData::default()),
        )
    }
}

/// The types of `rows`, counted.
pub fn written(rows: &[EventRow]) -> WrittenEvents {
    rows.iter().map(|e| e.event_type).collect()
}

/// Accepted emails: `email.sent`, or `email.scheduled` for a later time.
pub fn accepted(emails: &[&EmailToInsert]) -> Vec<EventRow> {
    emails
        .iter()
        .map(|e| EventRow::plain(e.id, e.created_at, transition::accepted(e)))
        .collect()
}

/// What a client's change writes, given the status it left the email in.
pub fn changed(
    email_id: EmailId,
    now: DateTime<Utc>,
    kind: transition::ChangeKind,
    status: mailqueue_core::EmailStatus,
) -> Vec<EventRow> {
    kind.event(status)
        .map(|t| EventRow::plain(email_id, now, t))
        .into_iter()
        .collect()
}
