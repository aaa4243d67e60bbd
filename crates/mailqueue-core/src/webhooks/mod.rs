//! Webhooks in Resend's dialect: endpoints subscribed to event types, each
//! event POSTed as Resend's payload and signed as Svix (Standard Webhooks)
//! signs. This module holds the pure parts: the records the store keeps
//! (`records.rs`), signing (`signature.rs`), the payload (`payload.rs`),
//! the retry schedule and the disable policy (`policy.rs`) and the rule an
//! endpoint URL must follow (`endpoint.rs`). Delivery itself runs in
//! `mailqueue-webhooks`; storage is `store::WebhookStore`.

mod endpoint;
mod health;
mod payload;
mod policy;
mod records;
mod signature;

pub use endpoint::{is_forbidden_address, Endpoint};
pub use health::{health_changes, HealthChange, StreakChange};
pub use payload::{payload, EventEmail};
pub use policy::{DisablePolicy, RetrySchedule};
pub use records::*;
pub use signature::{signature_header, SigningSecret};

/// The event types a webhook may subscribe to: every name of Resend's
/// webhooks, so a subscription written for Resend is accepted as it is.
/// mailqueue emits the `email.*` events of [`crate::events::EventType`]
/// (not opens, clicks, complaints or receipts); the others are kept and
/// never sent.
pub const WEBHOOK_EVENT_TYPES: [&str; 19] = [
    "email.sent",
    "email.scheduled",
    "email.delivered",
    "email.delivery_delayed",
    "email.complained",
    "email.bounced",
    "email.opened",
    "email.clicked",
    "email.received",
    "email.failed",
    "email.suppressed",
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "domain.created",
    "domain.updated",
    "domain.deleted",
    "suppression.added",
    "suppression.removed",
];

/// A subscription list: 1 or more known event types, duplicates dropped,
/// in the order given.
pub fn parse_event_types(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.is_empty() {
        return Err("`events` must name at least one event type.".into());
    }
    let mut types: Vec<String> = Vec::with_capacity(raw.len());
    for name in raw {
        if !WEBHOOK_EVENT_TYPES.contains(&name.as_str()) {
            let shown: String = name.chars().take(64).collect();
            return Err(format!(
                "`{shown}` is not an event type; use one of {}.",
                WEBHOOK_EVENT_TYPES.join(", ")
            ));
        }
        if !types.contains(name) {
            types.push(name.clone());
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
            assert!(WEBHOOK_EVENT_TYPES.contains(&t.as_str()), "{t}");
        }
    }

    #[test]
    fn subscriptions_are_known_names_without_duplicates() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_event_types(&list(&["email.sent", "email.opened", "email.sent"])).unwrap(),
            ["email.sent", "email.opened"]
        );
        assert!(parse_event_types(&[]).is_err());
        assert!(parse_event_types(&list(&["email.canceled"])).is_err());
        assert!(parse_event_types(&list(&["email.sent", "Email.Sent"])).is_err());
    }
}
