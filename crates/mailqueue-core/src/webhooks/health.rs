//! What a batch of delivery reports does to each webhook's failing streak,
//! folded so a store writes it once per webhook instead of once per report.
//!
//! Applied one by one, a report ends the streak (`failing_since` cleared)
//! when it delivered, and starts it (set, unless already set) when it
//! failed. The fold gives the same end state per webhook.

use super::{DeliveryOutcome, DeliveryReport};
use crate::WebhookId;
use chrono::{DateTime, Utc};

/// The end state of one webhook's streak after a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreakChange {
    /// The last report delivered: no streak.
    Ended,
    /// Only failures: the streak started then, unless it runs already.
    Continued { first_failure: DateTime<Utc> },
    /// A success, then failures: a new streak from the first of those.
    Restarted { first_failure: DateTime<Utc> },
}

/// One webhook's change, and when its latest failure happened (when the
/// disable policy is to be checked; `None` if the batch ends healthy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthChange {
    pub webhook_id: WebhookId,
    pub streak: StreakChange,
    pub check_disable_at: Option<DateTime<Utc>>,
}

/// The streak changes of `reports`, in the order each webhook first appears.
pub fn health_changes(reports: &[DeliveryReport]) -> Vec<HealthChange> {
    let mut changes: Vec<HealthChange> = Vec::new();
    for r in reports {
        let failed = r.outcome != DeliveryOutcome::Delivered;
        let at = r.attempted_at;
        let i = match changes.iter().position(|c| c.webhook_id == r.webhook_id) {
            Some(i) => i,
            None => {
                changes.push(HealthChange {
                    webhook_id: r.webhook_id,
                    streak: if failed {
                        StreakChange::Continued { first_failure: at }
                    } else {
                        StreakChange::Ended
                    },
                    check_disable_at: failed.then_some(at),
                });
                continue;
            }
        };
        let c = &mut changes[i];
        if !failed {
            c.streak = StreakChange::Ended;
            c.check_disable_at = None;
            continue;
        }
        if c.streak == StreakChange::Ended {
            c.streak = StreakChange::Restarted { first_failure: at };
        }
        c.check_disable_at = Some(c.check_disable_at.map_or(at, |t| t.max(at)));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventId;

    fn report(webhook: WebhookId, at: i64, delivered: bool) -> DeliveryReport {
        let at = DateTime::from_timestamp(1_800_000_000 + at, 0).unwrap_or_default();
        DeliveryReport {
            webhook_id: webhook,
            event_id: EventId(uuid::Uuid::nil()),
            attempt: 1,
            attempted_at: at,
            duration_ms: 1,
            status_code: None,
            error: None,
            outcome: if delivered {
                DeliveryOutcome::Delivered
            } else {
                DeliveryOutcome::Failed
            },
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    #[test]
    fn each_webhook_ends_as_its_reports_one_by_one_would_leave_it() {
        let (a, b, c) = (
            WebhookId(uuid::Uuid::from_u128(1)),
            WebhookId(uuid::Uuid::from_u128(2)),
            WebhookId(uuid::Uuid::from_u128(3)),
        );
        let reports = [
            report(a, 1, false),
            report(b, 2, false),
            report(a, 3, true),
            report(c, 4, true),
            report(b, 5, false),
            report(a, 6, false),
            report(a, 7, false),
        ];
        assert_eq!(
            health_changes(&reports),
            vec![
                HealthChange {
                    webhook_id: a,
                    streak: StreakChange::Restarted {
                        first_failure: t(6)
                    },
                    check_disable_at: Some(t(7)),
                },
                HealthChange {
                    webhook_id: b,
                    streak: StreakChange::Continued {
                        first_failure: t(2)
                    },
                    check_disable_at: Some(t(5)),
                },
                HealthChange {
                    webhook_id: c,
                    streak: StreakChange::Ended,
                    check_disable_at: None,
                },
            ]
        );
    }

    #[test]
    fn a_success_last_ends_the_streak() {
        let a = WebhookId(uuid::Uuid::from_u128(1));
        let changes = health_changes(&[report(a, 1, false), report(a, 2, true)]);
        assert_eq!(changes[0].streak, StreakChange::Ended);
        assert_eq!(changes[0].check_disable_at, None);
    }
}
