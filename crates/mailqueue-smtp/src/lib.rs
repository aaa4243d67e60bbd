//! Outgoing transports. [`SmtpRelay`] hands messages to a relay over a pool
//! of reused connections; [`OutboxTransport`] writes them as `.eml` files
//! when no relay is configured. Both build messages with [`build_message`].
//!
//! - `mime`, `header_value`: the message, built with lettre, 7-bit and
//!   CRLF-only, every line within 998 octets.
//! - `client`: our own SMTP client (replies, the DATA payload, a session).
//! - `connection`: TCP, TLS and AUTH up to a session ready for mail.
//! - `relay`: the pool, the `Transport`, the relay's health.
//! - `outbox`: the directory transport.

mod client;
mod connection;
mod fleet_slots;
mod header_value;
mod mime;
mod outbox;
mod relay;

pub use mime::{build_message, BuiltMessage};
pub use outbox::OutboxTransport;
pub use relay::{default_hello_name, SmtpConfigError, SmtpRelay, SmtpSettings};
