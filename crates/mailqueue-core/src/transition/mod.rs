//! Transitions: what each thing that happens to an email does to it (its
//! new status and next time, the attempt it records, the events it writes,
//! the addresses it suppresses), decided here once for both stores.
//!
//! The stores apply a transition in one statement or transaction, on the
//! condition that it still applies (an outcome of an attempt that no
//! longer holds its email changes nothing), and report what they applied
//! as [`WrittenEvents`]. The metrics count those, never a prediction.

mod interruption;
mod outcome;
mod report;

pub use crate::events::WrittenEvents;
pub use interruption::{Interrupted, Interruption};
pub use outcome::{OutcomeTransition, SuppressedByBounce};
pub use report::{LateReport, ReportTransition, ReportedSuppression};

use crate::events::EventType;
use crate::status::EmailStatus;
use crate::store::EmailToInsert;
use chrono::{DateTime, Utc};

/// An accepted email: `email.scheduled` when it waits for a later time,
/// `email.sent` when delivery starts now. An insert writes these for all
/// its emails or for none.
pub fn accepted(email: &EmailToInsert) -> EventType {
    match email.initial_status() {
        EmailStatus::Scheduled => EventType::Scheduled,
        _ => EventType::Sent,
    }
}

/// Whether a claim is the moment an email scheduled for later came due,
/// which writes `email.sent`: its first attempt, of an email scheduled
/// after its creation, that has no `email.sent` yet (a claim given back
/// comes again without writing a second one). SQLite's claim applies this
/// function; PostgreSQL's claim statement states the same three conditions
/// in SQL so that the claim stays one statement, and the conformance suite
/// holds both to it.
pub fn comes_due(
    attempt: u32,
    scheduled_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    has_sent_event: bool,
) -> bool {
    attempt == 1 && scheduled_at.is_some_and(|s| s > created_at) && !has_sent_event
}

/// A change a client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Reschedule,
    Cancel,
    Retry,
}

impl ChangeKind {
    /// The event a change writes, given the status it left the email in:
    /// a reschedule writes `email.scheduled` only when the email waits for
    /// its new time (not for one waiting for a retry, nor one now due).
    pub fn event(self, status_after: EmailStatus) -> Option<EventType> {
        match (self, status_after) {
            (ChangeKind::Reschedule, EmailStatus::Scheduled) => Some(EventType::Scheduled),
            (ChangeKind::Reschedule, _) => None,
            (ChangeKind::Cancel, _) => Some(EventType::Canceled),
            (ChangeKind::Retry, _) => Some(EventType::Sent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_events_add_up_by_type() {
        let mut written: WrittenEvents = [EventType::Sent, EventType::Sent, EventType::Bounced]
            .into_iter()
            .collect();
        written += [EventType::Bounced].into_iter().collect();
        assert_eq!(written.count(EventType::Sent), 2);
        assert_eq!(written.count(EventType::Bounced), 2);
        assert_eq!(written.total(), 4);
        assert_eq!(
            written.iter().collect::<Vec<_>>(),
            [(EventType::Sent, 2), (EventType::Bounced, 2)]
        );
    }

    #[test]
    fn a_claim_comes_due_once_for_a_scheduled_email() {
        let created = DateTime::from_timestamp(1_000, 0).unwrap();
        let later = Some(created + chrono::Duration::hours(1));
        assert!(comes_due(1, later, created, false));
        assert!(
            !comes_due(1, later, created, true),
            "given back, claimed again"
        );
        assert!(!comes_due(2, later, created, false), "a retry");
        assert!(!comes_due(1, Some(created), created, false), "due at once");
        assert!(!comes_due(1, None, created, false));
    }

    #[test]
    fn a_reschedule_writes_scheduled_only_for_an_email_that_waits_for_it() {
        let r = ChangeKind::Reschedule;
        assert_eq!(r.event(EmailStatus::Scheduled), Some(EventType::Scheduled));
        assert_eq!(r.event(EmailStatus::Queued), None);
        assert_eq!(
            ChangeKind::Cancel.event(EmailStatus::Cancelled),
            Some(EventType::Canceled)
        );
        assert_eq!(
            ChangeKind::Retry.event(EmailStatus::Queued),
            Some(EventType::Sent)
        );
    }
}
