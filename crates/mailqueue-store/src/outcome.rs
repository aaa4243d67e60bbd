//! Attempt outcomes laid out as columns, ready for a batched update.

use chrono::{DateTime, Utc};
use mailqueue_core::store::{AttemptKind, AttemptOutcome, AttemptResult};
use mailqueue_core::{EmailId, EmailStatus};

/// One vector per column; index `i` of each describes `outcomes[i]`.
#[derive(Default)]
pub struct OutcomeRows {
    pub ids: Vec<EmailId>,
    pub attempts: Vec<i32>,
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
}

impl From<&[AttemptOutcome]> for OutcomeRows {
    fn from(outcomes: &[AttemptOutcome]) -> Self {
        let mut rows = OutcomeRows::default();
        for o in outcomes {
            let (status, next_at, sent_at, kind, code, detail, reply) = match &o.result {
                AttemptResult::Sent(reply) => (
                    EmailStatus::Sent,
                    None,
                    Some(o.finished_at),
                    AttemptKind::Sent,
                    Some(reply.code),
                    reply.to_string(),
                    Some(reply.to_string()),
                ),
                AttemptResult::RetryAt(err, at) => (
                    EmailStatus::Queued,
                    Some(*at),
                    None,
                    AttemptKind::TransientFailure,
                    err.failure().smtp_code,
                    err.to_string(),
                    err.failure().smtp_code.map(|_| err.to_string()),
                ),
                AttemptResult::Failed(err) => (
                    EmailStatus::Failed,
                    None,
                    None,
                    AttemptKind::PermanentFailure,
                    err.failure().smtp_code,
                    err.to_string(),
                    err.failure().smtp_code.map(|_| err.to_string()),
                ),
                AttemptResult::Suppressed => (
                    EmailStatus::Failed,
                    None,
                    None,
                    AttemptKind::PermanentFailure,
                    None,
                    "every recipient is on the suppression list; nothing was sent".to_string(),
                    None,
                ),
            };
            rows.ids.push(o.email_id);
            rows.attempts.push(o.attempt as i32);
            rows.statuses.push(status.as_str());
            rows.next_at.push(next_at);
            rows.sent_at.push(sent_at);
            rows.errors
                .push((kind != AttemptKind::Sent).then(|| detail.clone()));
            rows.replies.push(reply);
            rows.started.push(o.started_at);
            rows.finished.push(o.finished_at);
            rows.kinds.push(kind.as_str());
            rows.codes.push(code.map(i32::from));
            rows.details.push(detail);
        }
        rows
    }
}
