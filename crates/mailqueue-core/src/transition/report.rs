//! Reports that arrive after the relay took an email: a delivery status
//! notification (RFC 3464) for one of its recipients, or a complaint (an
//! ARF report, RFC 5965). They write events and suppress addresses; the
//! email's status stays `sent` (its `last_event` follows its newest
//! event).

use crate::address::EmailAddress;
use crate::delivery::SmtpReply;
use crate::events::{Bounce, BounceClass, EventData, EventType, NewEvent};
use crate::ids::EmailId;
use crate::suppression::SuppressionOrigin;
use chrono::{DateTime, Utc};

/// What a report says of one recipient of an email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LateReport {
    /// `Action: failed`: a bounce, permanent for a 5.x.x status and
    /// transient for a 4.x.x one.
    Bounced {
        recipient: EmailAddress,
        /// The enhanced status code, e.g. `5.1.1`.
        status: String,
        /// `Diagnostic-Code`, its type removed (`550 5.1.1 …`).
        diagnostic_code: Option<String>,
    },
    /// `Action: delayed`: the next hop keeps trying.
    Delayed {
        recipient: EmailAddress,
        status: String,
        diagnostic_code: Option<String>,
    },
    /// The recipient reported the email as spam (`Feedback-Type: abuse`).
    Complained {
        recipient: EmailAddress,
        feedback_type: String,
    },
}

impl LateReport {
    pub fn recipient(&self) -> &EmailAddress {
        match self {
            LateReport::Bounced { recipient, .. }
            | LateReport::Delayed { recipient, .. }
            | LateReport::Complained { recipient, .. } => recipient,
        }
    }
}

/// An address a report puts on the suppression list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedSuppression {
    pub address: EmailAddress,
    pub origin: SuppressionOrigin,
    pub reason: String,
}

/// What reports on one email write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportTransition {
    pub email_id: EmailId,
    pub at: DateTime<Utc>,
    pub events: Vec<NewEvent>,
    pub suppressions: Vec<ReportedSuppression>,
}

impl ReportTransition {
    pub fn of(email_id: EmailId, at: DateTime<Utc>, reports: &[LateReport]) -> Self {
        let mut events = Vec::new();
        let mut suppressions: Vec<ReportedSuppression> = Vec::new();
        let mut suppress = |address: &EmailAddress, origin, reason: String| {
            if !suppressions.iter().any(|s| s.address == *address) {
                suppressions.push(ReportedSuppression {
                    address: address.clone(),
                    origin,
                    reason,
                });
            }
        };
        for report in reports {
            let to = vec![report.recipient().to_string()];
            match report {
                LateReport::Bounced {
                    recipient,
                    status,
                    diagnostic_code,
                } => {
                    let permanent = status.starts_with('5');
                    let reply = SmtpReply {
                        code: if permanent { 550 } else { 450 },
                        message: status.clone(),
                    };
                    let detail = diagnostic_code.clone().unwrap_or_else(|| status.clone());
                    let kind = if permanent { "Permanent" } else { "Transient" };
                    events.push(NewEvent::new(
                        at,
                        EventType::Bounced,
                        EventData {
                            to,
                            bounce: Some(Bounce {
                                kind: kind.into(),
                                sub_type: BounceClass::of(&reply).as_str().into(),
                                message: format!(
                                    "The recipient's mail server reported the email undeliverable ({status})."
                                ),
                                diagnostic_code: vec![format!("smtp; {detail}")],
                            }),
                            ..Default::default()
                        },
                    ));
                    if permanent {
                        suppress(recipient, SuppressionOrigin::Bounce, detail);
                    }
                }
                LateReport::Delayed { .. } => {
                    events.push(NewEvent::new(
                        at,
                        EventType::DeliveryDelayed,
                        EventData {
                            to,
                            ..Default::default()
                        },
                    ));
                }
                LateReport::Complained {
                    recipient,
                    feedback_type,
                } => {
                    events.push(NewEvent::new(
                        at,
                        EventType::Complained,
                        EventData {
                            to,
                            ..Default::default()
                        },
                    ));
                    suppress(
                        recipient,
                        SuppressionOrigin::Complaint,
                        format!("a complaint ({feedback_type} report)"),
                    );
                }
            }
        }
        Self {
            email_id,
            at,
            events,
            suppressions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(a: &str) -> EmailAddress {
        EmailAddress::parse(a).unwrap()
    }

    #[test]
    fn a_permanent_bounce_suppresses_and_a_transient_one_does_not() {
        let at = DateTime::from_timestamp(1_000, 0).unwrap();
        let id = EmailId::generate(at);
        let t = ReportTransition::of(
            id,
            at,
            &[
                LateReport::Bounced {
                    recipient: address("gone@example.com"),
                    status: "5.1.1".into(),
                    diagnostic_code: Some("550 5.1.1 <gone@example.com>: User unknown".into()),
                },
                LateReport::Bounced {
                    recipient: address("full@example.com"),
                    status: "4.2.2".into(),
                    diagnostic_code: None,
                },
                LateReport::Delayed {
                    recipient: address("slow@example.com"),
                    status: "4.4.1".into(),
                    diagnostic_code: None,
                },
            ],
        );
        let bounce = |i: usize| t.events[i].data.bounce.clone().unwrap();
        assert_eq!(t.events[0].event_type, EventType::Bounced);
        assert_eq!(
            (bounce(0).kind.as_str(), bounce(0).sub_type.as_str()),
            ("Permanent", "NoEmail")
        );
        assert_eq!(
            bounce(0).diagnostic_code,
            ["smtp; 550 5.1.1 <gone@example.com>: User unknown"]
        );
        assert_eq!(
            (bounce(1).kind.as_str(), bounce(1).sub_type.as_str()),
            ("Transient", "MailboxFull")
        );
        assert_eq!(t.events[2].event_type, EventType::DeliveryDelayed);
        assert_eq!(t.events[2].data.to, ["slow@example.com"]);
        assert_eq!(t.suppressions.len(), 1, "{:?}", t.suppressions);
        assert_eq!(t.suppressions[0].address, address("gone@example.com"));
        assert_eq!(t.suppressions[0].origin, SuppressionOrigin::Bounce);
    }

    #[test]
    fn a_complaint_writes_complained_and_suppresses() {
        let at = DateTime::from_timestamp(1_000, 0).unwrap();
        let t = ReportTransition::of(
            EmailId::generate(at),
            at,
            &[LateReport::Complained {
                recipient: address("ann@example.com"),
                feedback_type: "abuse".into(),
            }],
        );
        assert_eq!(t.events[0].event_type, EventType::Complained);
        assert_eq!(t.events[0].event_type.last_event(), "complained");
        assert_eq!(t.suppressions[0].origin, SuppressionOrigin::Complaint);
    }
}
