//! `SmtpRelay` against real SMTP servers on loopback ports: the Rust test
//! relay (bytes on the wire, lenient parsing, knobs for faults) and the
//! aiosmtpd sink. All in one test binary.

#![allow(clippy::unwrap_used)]

mod auth;
mod timeouts;
mod tls;
mod wire;

use chrono::Utc;
use mailqueue_core::delivery::{Delivered, DeliveryError};
use mailqueue_core::email::{Attachment, NewEmail};
use mailqueue_core::transport::{OutgoingEmail, SendError, Transport};
use mailqueue_core::EmailId;
use mailqueue_smtp::{SmtpRelay, SmtpSettings};
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(20);

pub fn relay(url: &str, timeout: Duration) -> SmtpRelay {
    SmtpRelay::new(&SmtpSettings {
        url: url.into(),
        pool_size: 1,
        timeout,
        hello_name: Some("client.test".into()),
    })
    .unwrap()
}

pub fn email(to: &[&str], text: &str) -> NewEmail {
    NewEmail {
        text: Some(text.into()),
        ..mailqueue_testkit::plain_email("Acme <noreply@acme.test>", to)
    }
}

pub fn attach(email: &mut NewEmail, filename: &str, content_type: &str, content: &[u8]) {
    email.attachments.push(Attachment {
        filename: filename.into(),
        content_type: content_type.into(),
        content_id: None,
        content: content.to_vec(),
    });
}

/// Sends through `relay`; these relays have no fleet cap, so every error
/// is an attempt's.
pub async fn send(relay: &SmtpRelay, email: &NewEmail) -> Result<Delivered, DeliveryError> {
    let now = Utc::now();
    relay
        .send(&OutgoingEmail {
            id: EmailId::generate(now),
            message_id: "<test@acme.test>",
            date: now,
            email,
            return_path: None,
            signer: None,
            require_tls: false,
        })
        .await
        .map_err(|e| match e {
            SendError::Failed(e) => e,
            SendError::NoConnectionSlot => panic!("a relay without a fleet cap ran out of slots"),
        })
}
