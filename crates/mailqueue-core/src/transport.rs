//! Handing a message to the outside world: an SMTP relay, or the outbox
//! directory when no relay is configured.

use crate::address::EmailAddress;
use crate::delivery::{Delivered, DeliveryError};
use crate::email::NewEmail;
use crate::ids::EmailId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Everything a transport needs to build and send one message.
#[derive(Clone)]
pub struct OutgoingEmail<'a> {
    pub id: EmailId,
    pub message_id: &'a str,
    /// The `Date` header: when the email was accepted.
    pub date: DateTime<Utc>,
    pub email: &'a NewEmail,
    /// The envelope sender when reports come back to mailqueue (a return
    /// address of the bounce domain, see `return_path`); the email's own
    /// sender otherwise.
    pub return_path: Option<EmailAddress>,
    /// Signs the message before it leaves: DKIM, for a sender that a
    /// verified sending domain covers.
    pub signer: Option<std::sync::Arc<dyn crate::domains::MessageSigner>>,
    /// Never over a relay connection without TLS (the sending domain's
    /// `tls: "enforced"`).
    pub require_tls: bool,
}

/// Whether a transport can deliver at all, as far as it last saw. Meant for
/// readiness checks: a failing transport keeps its emails queued, and an
/// operator has to fix something (credentials, say) before they can leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportHealth {
    Ok,
    /// `reason` is one line without secrets, e.g. "the relay refuses the
    /// credentials (535 5.7.8 Authentication credentials invalid)".
    Failing {
        reason: String,
    },
}

/// Why a message did not reach the relay.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// An attempt was made and failed; the error says whether to retry.
    #[error(transparent)]
    Failed(#[from] DeliveryError),
    /// No attempt was made: every relay connection the fleet may open is
    /// in use. The email goes back to wait (a deferral), its attempts
    /// uncounted.
    #[error("every relay connection the fleet may open is in use")]
    NoConnectionSlot,
}

#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends one message to every envelope recipient of `message.email`.
    /// It is delivered when the relay takes it for at least one recipient
    /// (the others it refused for good are listed); the error says whether
    /// an attempt was made, and whether to try again.
    async fn send(&self, message: &OutgoingEmail<'_>) -> Result<Delivered, SendError>;
    /// A short description for logs (no secrets).
    fn describe(&self) -> String;
    /// The transport's health as of its last attempt; cheap, no I/O. The
    /// default is always [`TransportHealth::Ok`].
    fn health(&self) -> TransportHealth {
        TransportHealth::Ok
    }
}

/// The relay connections a whole fleet may hold open at once, as relays
/// limit concurrent connections per account. Each open connection holds a
/// slot under its own name for `ttl`, renewed while it lives, so the slots
/// of a process that died come back by themselves.
#[async_trait]
pub trait ConnectionSlots: Send + Sync + 'static {
    /// Takes a slot for `holder` unless all are taken; returns whether it did.
    async fn try_take(
        &self,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool, crate::queue::QueueError>;
    /// Keeps the slots of these holders for another `ttl`.
    async fn renew(
        &self,
        holders: &[String],
        ttl: std::time::Duration,
    ) -> Result<(), crate::queue::QueueError>;
    async fn give_back(&self, holder: &str) -> Result<(), crate::queue::QueueError>;
}
