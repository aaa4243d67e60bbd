//! Outgoing transports. [`SmtpRelay`] hands messages to a relay over a pool
//! of reused connections; [`OutboxTransport`] writes them as `.eml` files
//! when no relay is configured. Both build messages with [`build_message`].

mod connection;
mod mime;
mod outbox;
mod relay;

pub use mime::build_message;
pub use outbox::OutboxTransport;
pub use relay::{SmtpConfigError, SmtpRelay, SmtpSettings};
