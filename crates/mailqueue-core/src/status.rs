//! The delivery state machine (see `docs/delivery-state-machine.md`).
//!
//! ```text
//! scheduled ──due──▶ queued ──claim──▶ sending ──250──▶ sent
//!     │                ▲                  │ ├──5xx──▶ failed ──retry──▶ queued
//!     │                └──4xx / timeout───┘ └──lease expired──▶ queued
//!     └──────cancel──────┴──▶ cancelled
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailStatus {
    /// Waiting to be sent: due now, or waiting for its next retry.
    Queued,
    /// Waiting for its `scheduled_at`; never attempted yet.
    Scheduled,
    /// Claimed by a worker, whose lease expires at `lease_expires_at`.
    Sending,
    /// Accepted by the relay (terminal).
    Sent,
    /// Rejected permanently or out of retries (terminal until retried).
    Failed,
    /// Cancelled before it was sent (terminal).
    Cancelled,
}

impl EmailStatus {
    pub const ALL: [EmailStatus; 6] = [
        EmailStatus::Queued,
        EmailStatus::Scheduled,
        EmailStatus::Sending,
        EmailStatus::Sent,
        EmailStatus::Failed,
        EmailStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Queued => "queued",
            EmailStatus::Scheduled => "scheduled",
            EmailStatus::Sending => "sending",
            EmailStatus::Sent => "sent",
            EmailStatus::Failed => "failed",
            EmailStatus::Cancelled => "cancelled",
        }
    }

    /// Not yet handed to a worker: may be claimed, rescheduled or cancelled.
    pub const PENDING: [EmailStatus; 2] = [EmailStatus::Queued, EmailStatus::Scheduled];

    /// Not yet handed to a worker: may still be rescheduled or cancelled.
    pub fn is_pending(self) -> bool {
        Self::PENDING.contains(&self)
    }

    /// Finished for good: what retention deletes once old enough.
    pub const TERMINAL: [EmailStatus; 3] = [
        EmailStatus::Sent,
        EmailStatus::Failed,
        EmailStatus::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EmailStatus::Sent | EmailStatus::Failed | EmailStatus::Cancelled
        )
    }
}

impl fmt::Display for EmailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EmailStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status `{s}`"))
    }
}

/// Resend's `last_event` vocabulary, derived from our status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LastEvent {
    Queued,
    Scheduled,
    Sent,
    DeliveryDelayed,
    Failed,
    Canceled,
}

impl LastEvent {
    /// An email waiting after a failed attempt reads as `delivery_delayed`.
    pub fn of(status: EmailStatus, attempts: u32) -> Self {
        match status {
            EmailStatus::Queued | EmailStatus::Sending if attempts > 1 => {
                LastEvent::DeliveryDelayed
            }
            EmailStatus::Queued if attempts > 0 => LastEvent::DeliveryDelayed,
            EmailStatus::Queued | EmailStatus::Sending => LastEvent::Queued,
            EmailStatus::Scheduled => LastEvent::Scheduled,
            EmailStatus::Sent => LastEvent::Sent,
            EmailStatus::Failed => LastEvent::Failed,
            EmailStatus::Cancelled => LastEvent::Canceled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text() {
        for s in EmailStatus::ALL {
            assert_eq!(s.as_str().parse::<EmailStatus>().unwrap(), s);
        }
        assert!("canceled".parse::<EmailStatus>().is_err());
    }

    #[test]
    fn last_event_follows_resend() {
        assert_eq!(LastEvent::of(EmailStatus::Queued, 0), LastEvent::Queued);
        assert_eq!(
            LastEvent::of(EmailStatus::Queued, 1),
            LastEvent::DeliveryDelayed
        );
        assert_eq!(LastEvent::of(EmailStatus::Sending, 1), LastEvent::Queued);
        assert_eq!(
            LastEvent::of(EmailStatus::Cancelled, 0),
            LastEvent::Canceled
        );
    }
}
