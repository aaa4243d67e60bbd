//! What a use case can fail with; each front end maps it to its own answer
//! (the HTTP API in `mailqueue-api/src/error.rs`).

use mailqueue_core::store::StoreError;
use mailqueue_core::{EmailId, EmailStatus};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no email with id `{0}` exists")]
    NoEmail(EmailId),
    /// The email's status does not allow the change.
    #[error("the email is {0}")]
    TooLate(EmailStatus),
    #[error("the idempotency key was used with a different request")]
    IdempotencyMismatch,
    #[error("the first request with this idempotency key is still in progress")]
    IdempotencyInProgress,
    #[error("the dispatch queue is unavailable: {0}")]
    QueueUnavailable(String),
    #[error("no secure random source: {0}")]
    NoRandomness(String),
    /// Requests changing the same thing at once kept overtaking this one.
    #[error("{0}")]
    Overtaken(&'static str),
    #[error("no domain with id `{0}` exists")]
    NoDomain(mailqueue_core::DomainId),
    #[error("The {0} domain is registered already.")]
    DomainExists(String),
    /// Sending domains cannot be used as asked (not set up, keys that
    /// cannot be made or stored safely).
    #[error("{0}")]
    Domains(String),
    #[error(transparent)]
    SenderRefused(#[from] mailqueue_core::domains::SenderRefusal),
}
