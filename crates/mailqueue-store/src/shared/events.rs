//! Events as rows, and which events each change writes. The stores write
//! them with `write_events` (`postgres/events.rs`, `sqlite/events.rs`) in
//! the transaction of the change, which also queues a webhook delivery
//! for every enabled webhook subscribed to the event's type.

use chrono::{DateTime, Utc};
use mailqueue_core::events::{outcome_events, EventData, EventType, NewEvent};
use mailqueue_core::store::{AttemptOutcome, EmailToInsert};
use mailqueue_core::{EmailId, EmailStatus, EventId};

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

/// Accepted emails: `email.sent`, or `email.scheduled` for a later time.
pub fn accepted(emails: &[&EmailToInsert]) -> Vec<EventRow> {
    emails
        .iter()
        .map(|e| {
            let t = match e.initial_status() {
                EmailStatus::Scheduled => EventType::Scheduled,
                _ => EventType::Sent,
            };
            EventRow::plain(e.id, e.created_at, t)
        })
        .collect()
}

/// The events of the outcomes that changed their email (`applied`).
pub fn outcomes(outcomes: &[AttemptOutcome], applied: &[EmailId]) -> Vec<EventRow> {
    outcomes
        .iter()
        .filter(|o| applied.contains(&o.email_id))
        .flat_map(|o| {
            outcome_events(o)
                .into_iter()
                .map(|e| EventRow::new(o.email_id, o.finished_at, e))
        })
        .collect()
}

/// What a single-row change writes, given the status it left the email in.
pub fn change(
    email_id: EmailId,
    now: DateTime<Utc>,
    kind: ChangeKind,
    status: EmailStatus,
) -> Option<EventRow> {
    let t = match (kind, status) {
        (ChangeKind::Reschedule, EmailStatus::Scheduled) => EventType::Scheduled,
        (ChangeKind::Reschedule, _) => return None,
        (ChangeKind::Cancel, _) => EventType::Canceled,
        (ChangeKind::Retry, _) => EventType::Sent,
    };
    Some(EventRow::plain(email_id, now, t))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Reschedule,
    Cancel,
    Retry,
}

/// An interrupted attempt: `email.delivery_delayed` when the email goes
/// back to the queue, `email.failed` when it was given up.
pub fn interrupted(
    email_id: EmailId,
    now: DateTime<Utc>,
    status: EmailStatus,
    detail: &str,
) -> EventRow {
    match status {
        EmailStatus::Failed => EventRow::new(
            email_id,
            now,
            NewEvent::new(
                now,
                EventType::Failed,
                EventData {
                    failed: Some(mailqueue_core::events::Failed {
                        reason: detail.to_string(),
                    }),
                    ..Default::default()
                },
            ),
        ),
        _ => EventRow::plain(email_id, now, EventType::DeliveryDelayed),
    }
}
