//! What can go wrong in an SMTP conversation, and what each failure means
//! for the email: retried or failed, under which class.
//!
//! The rule: a refusal that concerns the message (a 5xx to MAIL FROM,
//! RCPT TO, DATA or the end of the data) fails it for good; everything that
//! concerns the relay or the connection (4xx, timeouts, broken connections,
//! TLS, refused credentials, a 5xx to the greeting or EHLO, a conversation
//! that stops making sense) is retried.

use super::reply::Reply;
use mailqueue_core::delivery::{
    DeliveryError, Failure, FailureClass, RejectedRecipient, SmtpReply,
};
use mailqueue_core::EmailAddress;
use std::fmt;
use std::time::Duration;

/// The step of the conversation a failure happened in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Connect,
    TlsHandshake,
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    MailFrom,
    RcptTo(EmailAddress),
    Data,
    /// Writing the message and waiting for the final reply.
    EndOfData,
    Rset,
    Noop,
    Quit,
}

impl Step {
    /// Steps whose refusal is about the message, not the relay.
    fn concerns_the_message(&self) -> bool {
        matches!(
            self,
            Step::MailFrom | Step::RcptTo(_) | Step::Data | Step::EndOfData
        )
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Connect => f.write_str("connecting to the relay"),
            Step::TlsHandshake => f.write_str("the TLS handshake"),
            Step::Greeting => f.write_str("the greeting"),
            Step::Ehlo => f.write_str("EHLO"),
            Step::StartTls => f.write_str("STARTTLS"),
            Step::Auth => f.write_str("AUTH"),
            Step::MailFrom => f.write_str("MAIL FROM"),
            Step::RcptTo(address) => write!(f, "RCPT TO:<{address}>"),
            Step::Data => f.write_str("DATA"),
            Step::EndOfData => f.write_str("the end of the message data"),
            Step::Rset => f.write_str("RSET"),
            Step::Noop => f.write_str("NOOP"),
            Step::Quit => f.write_str("QUIT"),
        }
    }
}

/// A failed step. Display is one line without secrets.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{step}: {source}")]
    Io {
        step: Step,
        #[source]
        source: std::io::Error,
    },
    #[error("{step}: the relay made no progress for {after:?}")]
    Timeout { step: Step, after: Duration },
    #[error("the relay closed the connection during {step}")]
    Closed { step: Step },
    #[error("TLS with the relay: {0}")]
    Tls(String),
    /// The relay did not offer STARTTLS where it is required; nothing was
    /// sent after EHLO.
    #[error("TLS with the relay: it does not offer STARTTLS, which is required (MAILQUEUE_SMTP_URL with `smtp://`); nothing was sent in clear")]
    StartTlsMissing,
    /// The relay said something that does not fit the conversation.
    #[error("the relay broke the conversation during {step}: {reason}")]
    Protocol { step: Step, reason: String },
    /// A well-formed 4xx or 5xx reply.
    #[error("{reply} (in reply to {step})")]
    Refused { step: Step, reply: Reply },
    /// Every recipient was refused for good at `RCPT TO`.
    #[error("every recipient was refused: {}", refused_list(refused))]
    AllRecipientsRefused {
        refused: Vec<super::session::RecipientReply>,
    },
    /// The relay refused our credentials, requires some, or offers no
    /// mechanism we speak.
    #[error("{reason}")]
    Auth {
        reason: String,
        reply: Option<Reply>,
    },
}

fn refused_list(refused: &[super::session::RecipientReply]) -> String {
    refused
        .iter()
        .map(|r| format!("{} ({})", r.address, r.reply))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A recipient's refusal as the core keeps it.
pub fn rejected_recipient(r: &super::session::RecipientReply) -> RejectedRecipient {
    RejectedRecipient {
        address: r.address.clone(),
        reply: SmtpReply {
            code: r.reply.code,
            message: r.reply.text(),
        },
    }
}

impl ClientError {
    /// A refused AUTH, with the sentence an operator needs.
    pub fn auth_refused(reply: Reply) -> Self {
        let reason = match reply.code {
            454 => format!("the relay cannot check the credentials now ({reply})"),
            530 => format!("the relay requires authentication ({reply})"),
            _ => format!("the relay refuses the credentials ({reply})"),
        };
        ClientError::Auth {
            reason,
            reply: Some(reply),
        }
    }

    pub fn is_auth(&self) -> bool {
        matches!(self, ClientError::Auth { .. })
    }

    /// Whether the failure is the relay's set-up rather than this
    /// message's or this connection's: refused credentials, or no STARTTLS
    /// where it is required. Until it is mended, nothing can be sent.
    pub fn is_relay_setup(&self) -> bool {
        self.is_auth() || matches!(self, ClientError::StartTlsMissing)
    }

    /// What the failure means for the email.
    pub fn to_delivery_error(&self) -> DeliveryError {
        let detail = self.to_string();
        let transient = |class| DeliveryError::transient(class, None, detail.clone());
        match self {
            ClientError::Io { .. } | ClientError::Closed { .. } | ClientError::Protocol { .. } => {
                transient(FailureClass::Connection)
            }
            ClientError::Timeout { .. } => transient(FailureClass::Timeout),
            ClientError::Tls(_) | ClientError::StartTlsMissing => transient(FailureClass::Tls),
            ClientError::Auth { reply, .. } => {
                DeliveryError::transient(FailureClass::Auth, reply.as_ref().map(|r| r.code), detail)
            }
            ClientError::AllRecipientsRefused { refused } => DeliveryError::Permanent(Failure {
                class: FailureClass::Reply5xx,
                smtp_code: refused.first().map(|r| r.reply.code),
                detail,
                rejected: refused.iter().map(rejected_recipient).collect(),
            }),
            ClientError::Refused { step, reply } => {
                let code = Some(reply.code);
                if reply.code < 500 {
                    DeliveryError::transient(FailureClass::Reply4xx, code, detail)
                } else if step.concerns_the_message() {
                    DeliveryError::permanent(FailureClass::Reply5xx, code, detail)
                } else {
                    DeliveryError::transient(FailureClass::Reply5xx, code, detail)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16) -> Reply {
        Reply {
            code,
            lines: vec!["text".into()],
        }
    }

    fn refused(step: Step, code: u16) -> DeliveryError {
        ClientError::Refused {
            step,
            reply: reply(code),
        }
        .to_delivery_error()
    }

    #[test]
    fn a_5xx_about_the_message_is_permanent_and_about_the_relay_is_not() {
        for step in [
            Step::MailFrom,
            Step::RcptTo(EmailAddress::parse("a@b.test").unwrap()),
            Step::Data,
            Step::EndOfData,
        ] {
            let e = refused(step, 550);
            assert!(!matches!(e, DeliveryError::Transient(_)));
            assert_eq!(e.failure().class, FailureClass::Reply5xx);
            assert_eq!(e.failure().smtp_code, Some(550));
        }
        for step in [Step::Greeting, Step::Ehlo, Step::StartTls, Step::Rset] {
            assert!(matches!(refused(step, 554), DeliveryError::Transient(_)));
        }
        let e = refused(Step::EndOfData, 451);
        assert!(matches!(e, DeliveryError::Transient(_)));
        assert_eq!(e.failure().class, FailureClass::Reply4xx);
        assert!(e.to_string().starts_with("451 text"), "{e}");
    }

    #[test]
    fn refused_credentials_are_retried_under_their_own_class() {
        for code in [535, 530, 454] {
            let e = ClientError::auth_refused(reply(code));
            assert!(e.is_auth());
            let d = e.to_delivery_error();
            assert!(matches!(d, DeliveryError::Transient(_)), "{code}");
            assert_eq!(d.failure().class, FailureClass::Auth);
            assert_eq!(d.failure().smtp_code, Some(code));
        }
        assert!(ClientError::auth_refused(reply(535))
            .to_string()
            .starts_with("the relay refuses the credentials (535"));
    }

    #[test]
    fn broken_conversations_and_timeouts_are_retried() {
        let protocol = ClientError::Protocol {
            step: Step::MailFrom,
            reason: "354 where 250 was expected".into(),
        };
        assert_eq!(
            protocol.to_delivery_error().failure().class,
            FailureClass::Connection
        );
        let timeout = ClientError::Timeout {
            step: Step::EndOfData,
            after: Duration::from_secs(1),
        }
        .to_delivery_error();
        assert!(matches!(timeout, DeliveryError::Transient(_)));
        assert_eq!(timeout.failure().class, FailureClass::Timeout);
    }
}
