//! mailqueue's SMTP server, with two intakes:
//! - submission in Resend's SMTP dialect ([`submission`]): AUTH PLAIN or
//!   LOGIN as user `resend` with an API key as the password, STARTTLS on
//!   one listener and implicit TLS on another, each message accepted
//!   through the same use case as `POST /v1/emails`;
//! - the bounce domain's MX ([`bounces`]): mail to return addresses only,
//!   read as DSNs and complaints ([`report`]) and applied to the emails
//!   they name.
//!
//! Layout: [`session`] speaks the protocol on one connection and asks its
//! [`intake`] what to take; [`data`] reads a message's DATA within its
//! limits; [`message`] makes a submitted message ready to store (headers
//! taken out and added, fields read for display); [`auth`] decodes
//! credentials and counts failures; [`listener`] accepts connections
//! within their caps, with TLS.

pub mod auth;
pub mod bounces;
pub mod data;
pub mod intake;
pub mod listener;
pub mod message;
pub mod reply;
pub mod report;
pub mod session;
pub mod settings;
pub mod submission;

pub use bounces::BounceMx;
pub use intake::Intake;
pub use listener::{serve, tls_acceptor, Connections, Security, TlsSetupError};
pub use settings::SessionSettings;
pub use submission::Submission;
