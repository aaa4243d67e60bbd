//! Webhooks in Resend's dialect: endpoints subscribed to event types, each
//! event POSTed as Resend's payload and signed as Svix (Standard Webhooks)
//! signs. This module holds the pure parts: the records the store keeps
//! (`records.rs`), the events about the account (`account.rs`), signing (`signature.rs`), the payload (`payload.rs`),
//! the retry schedule and the disable policy (`policy.rs`), the rule an
//! endpoint URL must follow (`endpoint.rs`) and the event types a webhook
//! subscribes to (`subscription.rs`). Delivery itself runs in
//! `mailqueue-webhooks`; storage is `store::WebhookStore`.

mod account;
mod endpoint;
mod health;
mod payload;
mod policy;
mod records;
mod signature;
mod subscription;

pub use account::AccountEvent;
pub use endpoint::{is_forbidden_address, Endpoint};
pub use health::{health_changes, HealthChange, StreakChange};
pub use payload::{payload, EventEmail};
pub use policy::{DisablePolicy, RetrySchedule};
pub use records::*;
pub use signature::{signature_header, SigningSecret};
pub use subscription::{parse_event_types, WebhookEventType};
