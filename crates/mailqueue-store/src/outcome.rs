//! Attempt outcomes laid out as columns, ready for a batched update: each
//! outcome's transition is the core's ([`OutcomeTransition`]); the stores
//! apply those whose attempt still holds its email.

use crate::shared::event_rows::EventRow;
use chrono::{DateTime, Utc};
use mailqueue_core::store::AttemptOutcome;
use mailqueue_core::suppression::suppression_key;
use mailqueue_core::transition::OutcomeTransition;
use mailqueue_core::{EmailId, SuppressionId};

/// One vector per column; index `i` of each describes `outcomes[i]`.
#[derive(Default)]
pub struct OutcomeRows {
    pub ids: Vec<EmailId>,
    pub attempts: Vec<i32>,
    /// The claim each outcome was made under: its fence.
    pub claims: Vec<i32>,
    pub statuses: Vec<&'static str>,
    pub next_at: Vec<Option<DateTime<Utc>>>,
    pub sent_at: Vec<Option<DateTime<Utc>>>,
    pub errors: Vec<Option<String>>,
    pub replies: Vec<Option<String>>,
    pub started: Vec<DateTime<Utc>>,
    pub finished: Vec<DateTime<Utc>>,
    pub kinds: Vec<&'static str>,
    pub codes: Vec<Option<i32>>,
    pub details: Vec<String>,
    /// The events of every outcome, written for those that apply.
    pub events: Vec<EventRow>,
    /// The addresses bounces suppress, added for outcomes that apply.
    pub suppressions: Vec<BounceSuppression>,
}

/// A suppression-list entry (origin `bounce`) an outcome adds.
pub struct BounceSuppression {
    pub id: SuppressionId,
    /// The suppression key of the address.
    pub email: String,
    pub reason: String,
    pub email_id: EmailId,
    pub created_at: DateTime<Utc>,
}

impl From<&[AttemptOutcome]> for OutcomeRows {
    fn from(outcomes: &[AttemptOutcome]) -> Self {
        let mut rows = OutcomeRows::default();
        for o in outcomes {
            let t = OutcomeTransition::of(o);
            rows.ids.push(o.email_id);
            rows.attempts.push(o.attempt as i32);
            rows.claims.push(o.claim as i32);
            rows.statuses.push(t.status.as_str());
            rows.next_at.push(t.next_attempt_at);
            rows.sent_at.push(t.sent_at);
            rows.errors.push(t.last_error);
            rows.replies.push(t.reply);
            rows.started.push(o.started_at);
            rows.finished.push(o.finished_at);
            rows.kinds.push(t.attempt.as_str());
            rows.codes.push(t.smtp_code.map(i32::from));
            rows.details.push(t.detail);
            rows.events.extend(
                t.events
                    .into_iter()
                    .map(|e| EventRow::new(o.email_id, o.finished_at, e)),
            );
            rows.suppressions
                .extend(t.suppressions.into_iter().map(|s| BounceSuppression {
                    id: SuppressionId::generate(o.finished_at),
                    email: suppression_key(&s.address),
                    reason: s.reply,
                    email_id: o.email_id,
                    created_at: o.finished_at,
                }));
        }
        rows
    }
}
