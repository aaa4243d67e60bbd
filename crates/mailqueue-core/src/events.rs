//! What happened to an email, in Resend's vocabulary. Every status change
//! writes its event in the same transaction (see `mailqueue-store`), the
//! email's history (`GET /v1/emails/{id}/events`) and `last_event` read
//! them, and webhooks deliver them.

use crate::delivery::SmtpReply;
use crate::ids::{EmailId, EventId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An event's type, as Resend names it (`email.delivered`, …), plus
/// `email.canceled` for a cancelled email (Resend's `last_event` knows
/// `canceled`; its webhooks have no such event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// Accepted, and delivery will be attempted (for a scheduled email:
    /// its time came).
    Sent,
    Scheduled,
    /// The relay (or the recipient's server) answered 2xx.
    Delivered,
    /// A transient failure; a retry is planned.
    DeliveryDelayed,
    /// A permanent rejection of one or more recipients.
    Bounced,
    /// Given up: out of retries, unbuildable, or failed for a reason of
    /// our own.
    Failed,
    /// A recipient was on the suppression list and was not sent to.
    Suppressed,
    Canceled,
    /// A recipient reported the email as spam (an ARF report).
    Complained,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::Sent,
        EventType::Scheduled,
        EventType::Delivered,
        EventType::DeliveryDelayed,
        EventType::Bounced,
        EventType::Failed,
        EventType::Suppressed,
        EventType::Canceled,
        EventType::Complained,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Sent => "email.sent",
            EventType::Scheduled => "email.scheduled",
            EventType::Delivered => "email.delivered",
            EventType::DeliveryDelayed => "email.delivery_delayed",
            EventType::Bounced => "email.bounced",
            EventType::Failed => "email.failed",
            EventType::Suppressed => "email.suppressed",
            EventType::Canceled => "email.canceled",
            EventType::Complained => "email.complained",
        }
    }

    /// The email object's `last_event` after this event.
    pub fn last_event(self) -> &'static str {
        &self.as_str()["email.".len()..]
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an event type"))
    }
}

/// Events by type: what a store wrote with a change.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct WrittenEvents([u64; EventType::ALL.len()]);

impl std::fmt::Debug for WrittenEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(t, n)| (t.as_str(), n)))
            .finish()
    }
}

impl WrittenEvents {
    pub fn add(&mut self, t: EventType) {
        self.0[t as usize] += 1;
    }

    pub fn count(&self, t: EventType) -> u64 {
        self.0[t as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The types written, with how many of each.
    pub fn iter(&self) -> impl Iterator<Item = (EventType, u64)> + '_ {
        EventType::ALL
            .into_iter()
            .map(|t| (t, self.count(t)))
            .filter(|(_, n)| *n > 0)
    }
}

impl std::ops::AddAssign for WrittenEvents {
    fn add_assign(&mut self, other: Self) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

impl FromIterator<EventType> for WrittenEvents {
    fn from_iter<I: IntoIterator<Item = EventType>>(types: I) -> Self {
        let mut written = Self::default();
        types.into_iter().for_each(|t| written.add(t));
        written
    }
}

/// Resend's bounce details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bounce {
    /// `Permanent`, `Transient` or `Undetermined`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "subType")]
    pub sub_type: String,
    pub message: String,
    /// The SMTP replies, one per recipient (`smtp; 550 5.1.1 …`).
    #[serde(rename = "diagnosticCode")]
    pub diagnostic_code: Vec<String>,
}

/// Resend's suppression details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppressed {
    /// `Suppressed` (a previous bounce or complaint) or
    /// `OnAccountSuppressionList` (added by hand).
    #[serde(rename = "type")]
    pub kind: String,
    /// `previous_bounce`, `previous_complaint` or `manual`.
    pub reason: String,
    pub message: String,
    #[serde(rename = "diagnosticCode")]
    pub diagnostic_code: Vec<String>,
}

/// Resend's failure details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub reason: String,
}

/// What an event adds to the email it concerns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    /// The recipients the event concerns, when not all of them (a bounce
    /// or a suppression of one recipient).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce: Option<Bounce>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Failed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<Suppressed>,
}

/// One event of an email's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailEvent {
    pub id: EventId,
    pub email_id: EmailId,
    pub event_type: EventType,
    pub created_at: DateTime<Utc>,
    pub data: EventData,
}

/// An event to write with a status change: its type and what it adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub id: EventId,
    pub event_type: EventType,
    pub data: EventData,
}

impl NewEvent {
    pub fn new(at: DateTime<Utc>, event_type: EventType, data: EventData) -> Self {
        Self {
            id: EventId::generate(at),
            event_type,
            data,
        }
    }
}

/// What a refusal says of the address, read from its enhanced status code
/// (RFC 3463) where there is one; named as Resend names bounce sub-types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BounceClass {
    /// No such mailbox or domain (`x.1.x`).
    NoEmail,
    MailboxFull,
    MessageTooLarge,
    /// A policy refusal of the message (`5.7.x`).
    ContentRejected,
    /// Nothing more specific.
    General,
}

impl BounceClass {
    pub fn of(reply: &SmtpReply) -> Self {
        let enhanced = reply
            .message
            .split_whitespace()
            .find(|w| is_enhanced_status(w))
            .unwrap_or("");
        match enhanced {
            e if e.starts_with("5.1.") || e.starts_with("4.1.") => BounceClass::NoEmail,
            "5.2.2" | "4.2.2" => BounceClass::MailboxFull,
            "5.3.4" | "5.2.3" => BounceClass::MessageTooLarge,
            e if e.starts_with("5.7.") => BounceClass::ContentRejected,
            _ => BounceClass::General,
        }
    }

    /// Resend's `subType`.
    pub fn as_str(self) -> &'static str {
        match self {
            BounceClass::NoEmail => "NoEmail",
            BounceClass::MailboxFull => "MailboxFull",
            BounceClass::MessageTooLarge => "MessageTooLarge",
            BounceClass::ContentRejected => "ContentRejected",
            BounceClass::General => "General",
        }
    }

    /// Whether a permanent refusal of this class at `RCPT TO` puts the
    /// address on the suppression list: a refusal of the address itself
    /// (no such mailbox, or a plain 5xx), not a full mailbox or a policy
    /// refusal.
    pub fn suppresses(self) -> bool {
        matches!(self, BounceClass::NoEmail | BounceClass::General)
    }
}

/// An enhanced status code (RFC 3463): `class.subject.detail`, class 2, 4 or 5.
pub fn is_enhanced_status(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a recipient refused at `RCPT TO` with this reply goes on the
/// suppression list: a permanent refusal whose class suppresses.
pub fn suppresses(reply: &SmtpReply) -> bool {
    reply.code >= 500 && BounceClass::of(reply).suppresses()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_resend() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert_eq!(EventType::DeliveryDelayed.last_event(), "delivery_delayed");
        assert!("email.opened".parse::<EventType>().is_err());
    }

    #[test]
    fn bounce_sub_types_come_from_the_enhanced_status_code() {
        let reply = |message: &str| SmtpReply {
            code: 550,
            message: message.into(),
        };
        let class = |m: &str| BounceClass::of(&reply(m));
        assert_eq!(class("5.1.1 no such user"), BounceClass::NoEmail);
        assert_eq!(
            class("550 5.2.2 full (in reply to RCPT TO)"),
            BounceClass::MailboxFull
        );
        assert_eq!(class("5.7.1 spam").as_str(), "ContentRejected");
        assert_eq!(class("version 1.2.3 said no"), BounceClass::General);
        assert!(suppresses(&reply("5.1.1 no such user")));
        assert!(!suppresses(&reply("5.2.2 mailbox full")));
    }

    #[test]
    fn details_use_resend_field_names() {
        let data = EventData {
            to: vec!["a@x.io".into()],
            bounce: Some(Bounce {
                kind: "Permanent".into(),
                sub_type: "General".into(),
                message: "the mailbox does not exist".into(),
                diagnostic_code: vec!["smtp; 550 5.1.1 no such user".into()],
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&data).unwrap();
        assert_eq!(json["bounce"]["subType"], "General");
        assert_eq!(
            json["bounce"]["diagnosticCode"][0],
            "smtp; 550 5.1.1 no such user"
        );
        assert!(json.get("failed").is_none());
    }
}
