//! What a delivery attempt can end in. Retryability is decided by the
//! variant, never by reading an error message.

use crate::address::EmailAddress;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The relay's final reply to a message it accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpReply {
    pub code: u16,
    pub message: String,
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.message)
    }
}

/// Where a failure came from; the label of the SMTP error metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// A 4xx reply.
    Reply4xx,
    /// A 5xx reply.
    Reply5xx,
    /// No answer in time.
    Timeout,
    /// The relay could not be reached or dropped the connection.
    Connection,
    /// TLS could not be negotiated.
    Tls,
    /// The relay refused our credentials or requires them (535, 530, 454
    /// to AUTH). A fault of the relay connection's configuration, not of the
    /// message, so it is retried.
    Auth,
    /// The message could not be built or written (bad content, disk error).
    Message,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Reply4xx => "smtp_4xx",
            FailureClass::Reply5xx => "smtp_5xx",
            FailureClass::Timeout => "timeout",
            FailureClass::Connection => "connection",
            FailureClass::Tls => "tls",
            FailureClass::Auth => "auth",
            FailureClass::Message => "message",
        }
    }
}

/// A recipient the relay refused for good at `RCPT TO` while it took the
/// message for others (or refused every recipient).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedRecipient {
    pub address: EmailAddress,
    pub reply: SmtpReply,
}

/// The relay took the message: its reply, and the recipients it refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub reply: SmtpReply,
    pub rejected: Vec<RejectedRecipient>,
}

/// The details shared by both kinds of failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    pub smtp_code: Option<u16>,
    pub detail: String,
    /// When every recipient was refused at `RCPT TO`: each one's reply.
    pub rejected: Vec<RejectedRecipient>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.smtp_code {
            Some(code) if !self.detail.starts_with(&code.to_string()) => {
                write!(f, "{code} {}", self.detail)
            }
            _ => f.write_str(&self.detail),
        }
    }
}

/// A failed delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth trying again later: 4xx replies, timeouts, connection failures.
    Transient(Failure),
    /// Trying again cannot help: 5xx replies, a message that cannot be built.
    Permanent(Failure),
}

impl DeliveryError {
    pub fn transient(
        class: FailureClass,
        smtp_code: Option<u16>,
        detail: impl Into<String>,
    ) -> Self {
        Self::Transient(Failure {
            class,
            smtp_code,
            detail: detail.into(),
            rejected: Vec::new(),
        })
    }

    pub fn permanent(
        class: FailureClass,
        smtp_code: Option<u16>,
        detail: impl Into<String>,
    ) -> Self {
        Self::Permanent(Failure {
            class,
            smtp_code,
            detail: detail.into(),
            rejected: Vec::new(),
        })
    }

    pub fn failure(&self) -> &Failure {
        match self {
            DeliveryError::Transient(f) | DeliveryError::Permanent(f) => f,
        }
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.failure().fmt(f)
    }
}

impl std::error::Error for DeliveryError {}
