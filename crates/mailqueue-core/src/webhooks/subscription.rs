//! What a webhook subscribes to: every event type of Resend's webhooks, so
//! a subscription written for Resend is accepted as it is. mailqueue emits
//! the `email.*` events of [`EventType`](crate::events::EventType) (not
//! opens, clicks or receipts); the others are kept and never sent.

use std::fmt;
use std::str::FromStr;

/// One event type a webhook can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WebhookEventType {
    EmailSent,
    EmailScheduled,
    EmailDelivered,
    EmailDeliveryDelayed,
    EmailComplained,
    EmailBounced,
    EmailOpened,
    EmailClicked,
    EmailReceived,
    EmailFailed,
    EmailSuppressed,
    ContactCreated,
    ContactUpdated,
    ContactDeleted,
    DomainCreated,
    DomainUpdated,
    DomainDeleted,
    SuppressionAdded,
    SuppressionRemoved,
}

use WebhookEventType as W;

/// Each type with its name, in Resend's order.
const NAMES: [(WebhookEventType, &str); 19] = [
    (W::EmailSent, "email.sent"),
    (W::EmailScheduled, "email.scheduled"),
    (W::EmailDelivered, "email.delivered"),
    (W::EmailDeliveryDelayed, "email.delivery_delayed"),
    (W::EmailComplained, "email.complained"),
    (W::EmailBounced, "email.bounced"),
    (W::EmailOpened, "email.opened"),
    (W::EmailClicked, "email.clicked"),
    (W::EmailReceived, "email.received"),
    (W::EmailFailed, "email.failed"),
    (W::EmailSuppressed, "email.suppressed"),
    (W::ContactCreated, "contact.created"),
    (W::ContactUpdated, "contact.updated"),
    (W::ContactDeleted, "contact.deleted"),
    (W::DomainCreated, "domain.created"),
    (W::DomainUpdated, "domain.updated"),
    (W::DomainDeleted, "domain.deleted"),
    (W::SuppressionAdded, "suppression.added"),
    (W::SuppressionRemoved, "suppression.removed"),
];

impl WebhookEventType {
    pub fn as_str(self) -> &'static str {
        NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, name)| *name)
            .unwrap_or_else(|| unreachable!("every type has a name"))
    }

    /// Every name, for an error that lists them.
    pub fn names() -> String {
        NAMES.map(|(_, name)| name).join(", ")
    }
}

impl fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookEventType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NAMES
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(t, _)| *t)
            .ok_or_else(|| {
                let shown: String = s.chars().take(64).collect();
                format!(
                    "`{shown}` is not an event type; use one of {}.",
                    Self::names()
                )
            })
    }
}

/// The event types named in a request, each once, in the order given; at
/// least one.
pub fn parse_event_types(raw: &[String]) -> Result<Vec<WebhookEventType>, String> {
    if raw.is_empty() {
        return Err("`events` must name at least one event type.".into());
    }
    let mut types: Vec<WebhookEventType> = Vec::with_capacity(raw.len());
    for name in raw {
        let t: WebhookEventType = name.parse()?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;

    #[test]
    fn every_event_mailqueue_sends_can_be_subscribed_to() {
        for t in EventType::ALL
            .into_iter()
            .filter(|t| *t != EventType::Canceled)
        {
            let sub: WebhookEventType = t.as_str().parse().unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(sub.as_str(), t.as_str());
        }
        let canceled = EventType::Canceled.as_str().parse::<WebhookEventType>();
        assert!(canceled.is_err(), "a cancellation is written, never sent");
    }

    #[test]
    fn names_read_back_as_their_types() {
        for (t, name) in NAMES {
            assert_eq!(t.as_str(), name);
            assert_eq!(name.parse::<WebhookEventType>(), Ok(t));
        }
    }

    #[test]
    fn subscriptions_are_known_names_without_duplicates() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_event_types(&list(&["email.sent", "email.opened", "email.sent"])).unwrap(),
            [WebhookEventType::EmailSent, WebhookEventType::EmailOpened]
        );
        assert!(parse_event_types(&[]).is_err());
        assert!(parse_event_types(&list(&["email.canceled"])).is_err());
        assert!(parse_event_types(&list(&["email.sent", "Email.Sent"])).is_err());
    }
}
