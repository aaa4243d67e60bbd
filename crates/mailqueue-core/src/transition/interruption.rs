//! An attempt cut short: its worker's lease expired (the rescuer finds
//! it), or its worker stopped and gave its leases back.

use crate::events::{EventData, EventType, Failed, NewEvent};
use crate::status::EmailStatus;
use chrono::{DateTime, Utc};

/// Why an attempt did not finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// The lease of `holder` expired: found by the rescuer, which gives the
    /// email up when its first attempt is older than `give_up_before`.
    LeaseExpired {
        holder: Option<String>,
        give_up_before: DateTime<Utc>,
    },
    /// The worker gave its leases back as it stopped.
    WorkerStopped,
}

/// What an interruption does to its email (it also records a
/// `lease_expired` attempt with `detail`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupted {
    pub status: EmailStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The attempt's detail and the email's `last_error`.
    pub detail: String,
    pub event: NewEvent,
}

impl Interruption {
    /// The transition of an email interrupted at `now`, whose first
    /// attempt started at `first_attempt_at`.
    pub fn of(&self, first_attempt_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Interrupted {
        let (gives_up, detail) = match self {
            Interruption::LeaseExpired {
                holder,
                give_up_before,
            } => (
                first_attempt_at.is_some_and(|f| f < *give_up_before),
                format!(
                    "the worker {} stopped before finishing the attempt (lease expired)",
                    holder.as_deref().unwrap_or("?")
                ),
            ),
            Interruption::WorkerStopped => (
                false,
                "the attempt was interrupted when its worker stopped".to_string(),
            ),
        };
        if gives_up {
            let failed = EventData {
                failed: Some(Failed {
                    reason: detail.clone(),
                }),
                ..Default::default()
            };
            Interrupted {
                status: EmailStatus::Failed,
                next_attempt_at: None,
                event: NewEvent::new(now, EventType::Failed, failed),
                detail,
            }
        } else {
            Interrupted {
                status: EmailStatus::Queued,
                next_attempt_at: Some(now),
                event: NewEvent::new(now, EventType::DeliveryDelayed, EventData::default()),
                detail,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_lease_gives_up_only_past_the_retry_window() {
        let now = DateTime::from_timestamp(100_000, 0).unwrap();
        let expired = Interruption::LeaseExpired {
            holder: Some("w1".into()),
            give_up_before: now - chrono::Duration::hours(1),
        };
        let young = expired.of(Some(now - chrono::Duration::minutes(5)), now);
        assert_eq!(young.status, EmailStatus::Queued);
        assert_eq!(young.next_attempt_at, Some(now));
        assert_eq!(young.event.event_type, EventType::DeliveryDelayed);
        assert!(young.detail.contains("w1"), "{}", young.detail);
        let old = expired.of(Some(now - chrono::Duration::hours(2)), now);
        assert_eq!(old.status, EmailStatus::Failed);
        assert_eq!(old.event.event_type, EventType::Failed);
        assert_eq!(old.event.data.failed.unwrap().reason, old.detail);
        let stopped = Interruption::WorkerStopped.of(Some(now - chrono::Duration::days(9)), now);
        assert_eq!(stopped.status, EmailStatus::Queued, "a stop never gives up");
    }
}
