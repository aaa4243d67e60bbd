//! An attempt's outcome: the status it leaves, the attempt row, the events
//! and the addresses its bounces put on the suppression list.

use crate::address::EmailAddress;
use crate::attempt::{AttemptKind, AttemptOutcome, AttemptResult};
use crate::delivery::{FailureClass, RejectedRecipient, SmtpReply};
use crate::events::{
    suppresses, Bounce, BounceClass, EventData, EventType, Failed, NewEvent, Suppressed,
};
use crate::status::EmailStatus;
use crate::suppression::SuppressionOrigin;
use chrono::{DateTime, Utc};

/// What an outcome does to its email, if it still holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutcomeTransition {
    pub status: EmailStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The attempt row: how it ended, the SMTP code, and its detail.
    pub attempt: AttemptKind,
    pub smtp_code: Option<u16>,
    pub detail: String,
    /// The email's `last_error`: the detail, unless it was sent.
    pub last_error: Option<String>,
    /// The relay's reply, kept as the email's `last_smtp_reply` when there
    /// is one.
    pub reply: Option<String>,
    pub events: Vec<NewEvent>,
    pub suppressions: Vec<SuppressedByBounce>,
}

/// An address a bounce puts on the suppression list (origin `bounce`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuppressedByBounce {
    pub address: EmailAddress,
    /// The refusal, as the suppression's reason.
    pub reply: String,
}

impl OutcomeTransition {
    pub fn of(o: &AttemptOutcome) -> Self {
        let (status, next_attempt_at, sent_at, attempt, smtp_code, detail, reply) = match &o.result
        {
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
        Self {
            status,
            next_attempt_at,
            sent_at,
            attempt,
            smtp_code,
            last_error: (attempt != AttemptKind::Sent).then(|| detail.clone()),
            detail,
            reply,
            events: outcome_events(o),
            suppressions: rejected(o)
                .iter()
                .filter(|r| suppresses(&r.reply))
                .map(|r| SuppressedByBounce {
                    address: r.address.clone(),
                    reply: r.reply.to_string(),
                })
                .collect(),
        }
    }
}

/// The recipients refused for good: those of a failure that names them,
/// else those refused while the others were sent to.
fn rejected(o: &AttemptOutcome) -> &[RejectedRecipient] {
    match &o.result {
        AttemptResult::Failed(e) if !e.failure().rejected.is_empty() => &e.failure().rejected,
        _ => &o.rejected,
    }
}

fn bounce(kind: &str, sub_type: &str, message: &str, replies: &[String]) -> Bounce {
    Bounce {
        kind: kind.into(),
        sub_type: sub_type.into(),
        message: message.into(),
        diagnostic_code: replies.iter().map(|r| format!("smtp; {r}")).collect(),
    }
}

/// The events an attempt's outcome writes with its status change.
fn outcome_events(outcome: &AttemptOutcome) -> Vec<NewEvent> {
    let at = outcome.finished_at;
    let mut events = Vec::new();
    match &outcome.result {
        // When some recipients were refused or suppressed, their own
        // events below say so; `delivered` concerns the others.
        AttemptResult::Sent(_) => events.push(NewEvent::new(
            at,
            EventType::Delivered,
            EventData::default(),
        )),
        AttemptResult::RetryAt(..) => events.push(NewEvent::new(
            at,
            EventType::DeliveryDelayed,
            EventData::default(),
        )),
        AttemptResult::Failed(e) => {
            let f = e.failure();
            if f.class == FailureClass::Reply5xx && f.rejected.is_empty() {
                // The message itself was refused: a bounce of every recipient.
                let reply = SmtpReply {
                    code: f.smtp_code.unwrap_or(550),
                    message: f.detail.clone(),
                };
                // The detail usually starts with the reply it quotes.
                let diagnostic = if f.detail.starts_with(&reply.code.to_string()) {
                    f.detail.clone()
                } else {
                    reply.to_string()
                };
                events.push(NewEvent::new(
                    at,
                    EventType::Bounced,
                    EventData {
                        bounce: Some(bounce(
                            "Permanent",
                            BounceClass::of(&reply).as_str(),
                            &f.detail,
                            &[diagnostic],
                        )),
                        ..Default::default()
                    },
                ));
            } else if f.rejected.is_empty() {
                events.push(NewEvent::new(
                    at,
                    EventType::Failed,
                    EventData {
                        failed: Some(Failed {
                            reason: f.detail.clone(),
                        }),
                        ..Default::default()
                    },
                ));
            }
        }
        AttemptResult::Suppressed => {}
    }
    for r in rejected(outcome) {
        events.push(NewEvent::new(
            at,
            EventType::Bounced,
            EventData {
                to: vec![r.address.to_string()],
                bounce: Some(bounce(
                    "Permanent",
                    BounceClass::of(&r.reply).as_str(),
                    &r.reply.message,
                    &[r.reply.to_string()],
                )),
                ..Default::default()
            },
        ));
    }
    for s in &outcome.suppressed {
        events.push(NewEvent::new(
            at,
            EventType::Suppressed,
            EventData {
                to: vec![s.address.to_string()],
                suppressed: Some(Suppressed {
                    kind: match s.origin {
                        SuppressionOrigin::Manual => "OnAccountSuppressionList",
                        _ => "Suppressed",
                    }
                    .into(),
                    reason: s.origin.event_reason().into(),
                    message: format!("{} is on the suppression list ({})", s.address, s.origin),
                    diagnostic_code: Vec::new(),
                }),
                ..Default::default()
            },
        ));
    }
    events
}
