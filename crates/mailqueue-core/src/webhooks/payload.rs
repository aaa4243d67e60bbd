//! The body POSTed for an event, in Resend's shape (its webhook event
//! schemas): `{"type", "created_at", "data": {"email_id", "from", "to",
//! "subject", "created_at", "message_id", "tags", "headers"?, and
//! "bounce", "failed" or "suppressed" where they apply}}`.

use crate::email::{CustomHeader, NewEmail, Tag};
use crate::events::EmailEvent;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// What the payload tells of the email an event concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventEmail {
    pub message_id: String,
    /// `Name <address>` as given.
    pub from: String,
    /// Every `to` recipient; an event about some of them names those.
    pub to: Vec<String>,
    pub subject: String,
    pub created_at: DateTime<Utc>,
    pub tags: Vec<Tag>,
    pub headers: Vec<CustomHeader>,
}

impl EventEmail {
    /// What the payload tells of a stored email.
    pub fn new(email: &NewEmail, message_id: &str, created_at: DateTime<Utc>) -> Self {
        Self {
            message_id: message_id.to_string(),
            from: email.from.to_string(),
            to: email.to.iter().map(|m| m.to_string()).collect(),
            subject: email.subject.clone(),
            created_at,
            tags: email.tags.clone(),
            headers: email.headers.clone(),
        }
    }
}

/// A payload's time: RFC 3339 in UTC, to the millisecond, as Resend writes it.
pub(super) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The payload of `event`, concerning `email`.
pub fn payload(event: &EmailEvent, email: &EventEmail) -> Value {
    let to = if event.data.to.is_empty() {
        &email.to
    } else {
        &event.data.to
    };
    let tags: Map<String, Value> = email
        .tags
        .iter()
        .map(|t| (t.name.clone(), json!(t.value.clone().unwrap_or_default())))
        .collect();
    let mut data = json!({
        "email_id": event.email_id.to_string(),
        "created_at": time(email.created_at),
        "from": email.from,
        "to": to,
        "subject": email.subject,
        "message_id": email.message_id,
        "tags": tags,
    });
    if !email.headers.is_empty() {
        data["headers"] = json!(email
            .headers
            .iter()
            .map(|h| json!({"name": h.name, "value": h.value}))
            .collect::<Vec<_>>());
    }
    if let Some(b) = &event.data.bounce {
        data["bounce"] = json!(b);
    }
    if let Some(f) = &event.data.failed {
        data["failed"] = json!(f);
    }
    if let Some(s) = &event.data.suppressed {
        data["suppressed"] = json!(s);
    }
    json!({
        "type": event.event_type.as_str(),
        "created_at": time(event.created_at),
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Bounce, EventData, EventType};
    use crate::ids::{EmailId, EventId};

    fn email(at: DateTime<Utc>) -> EventEmail {
        EventEmail {
            message_id: "<m@acme.test>".into(),
            from: "Acme <noreply@acme.test>".into(),
            to: vec!["a@example.com".into(), "b@example.com".into()],
            subject: "Hello".into(),
            created_at: at,
            tags: vec![Tag {
                name: "kind".into(),
                value: Some("welcome".into()),
            }],
            headers: vec![],
        }
    }

    #[test]
    fn a_delivery_names_every_recipient() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap();
        let event = EmailEvent {
            id: EventId::generate(at),
            email_id: EmailId::generate(at),
            event_type: EventType::Delivered,
            created_at: at,
            data: EventData::default(),
        };
        let p = payload(&event, &email(at));
        assert_eq!(p["type"], "email.delivered");
        assert_eq!(p["created_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(p["data"]["email_id"], event.email_id.to_string());
        assert_eq!(p["data"]["to"], json!(["a@example.com", "b@example.com"]));
        assert_eq!(p["data"]["tags"], json!({"kind": "welcome"}));
        assert!(p["data"].get("bounce").is_none());
        assert!(p["data"].get("headers").is_none());
    }

    #[test]
    fn a_bounce_names_its_recipient_and_carries_its_details() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let event = EmailEvent {
            id: EventId::generate(at),
            email_id: EmailId::generate(at),
            event_type: EventType::Bounced,
            created_at: at,
            data: EventData {
                to: vec!["b@example.com".into()],
                bounce: Some(Bounce {
                    kind: "Permanent".into(),
                    sub_type: "NoEmail".into(),
                    message: "no such user".into(),
                    diagnostic_code: vec!["smtp; 550 5.1.1 no such user".into()],
                }),
                ..Default::default()
            },
        };
        let p = payload(&event, &email(at));
        assert_eq!(p["data"]["to"], json!(["b@example.com"]));
        assert_eq!(p["data"]["bounce"]["type"], "Permanent");
        assert_eq!(p["data"]["bounce"]["subType"], "NoEmail");
    }
}
