//! A submitted message made ready to store: its own bytes, with a `Bcc`
//! header and the `Resend-Idempotency-Key` header taken out (neither may
//! leave) and a `Message-ID` and a `Date` added when missing, as Postfix's
//! cleanup does. The email object's from, to, cc, subject, text and html
//! are read from the result (with `mail-parser`), for display only: the
//! message goes out as it is, to its envelope.

use chrono::{DateTime, Utc};
use mail_parser::{MessageParser, PartType};
use mailqueue_core::{EmailAddress, Mailbox, NewEmail, Priority, SubmittedMessage};
use sha2::{Digest, Sha256};

/// The envelope of a transaction: `MAIL FROM` and each `RCPT TO` once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub from: EmailAddress,
    pub to: Vec<Mailbox>,
}

/// A message ready to accept.
#[derive(Debug)]
pub struct PreparedMessage {
    pub email: NewEmail,
    /// The `Resend-Idempotency-Key` header's value, if one was sent.
    pub idempotency_key: Option<String>,
    /// What a retry must repeat for its key to replay the first answer:
    /// the envelope and the message as submitted (its idempotency header
    /// aside), before anything was added to it.
    pub fingerprint: [u8; 32],
}

/// Why a message cannot be accepted as it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("the message has no header")]
    NoHeader,
    #[error("line {0} of the header is not a header field")]
    MalformedHeader(usize),
    #[error("the message cannot be parsed as MIME")]
    Unparseable,
    #[error("the Resend-Idempotency-Key header must be 1 to 256 printable ASCII characters")]
    InvalidIdempotencyKey,
}

/// The header taken out and read as the idempotency key.
const IDEMPOTENCY_HEADER: &str = "Resend-Idempotency-Key";
/// Headers that never leave: the blind copies' addresses, and ours.
const REMOVED: [&str; 2] = ["Bcc", IDEMPOTENCY_HEADER];

/// One header field: its name and where its lines lie in the message.
struct Field<'a> {
    name: &'a str,
    /// The field's bytes, folded lines and final CRLF included.
    bytes: &'a [u8],
}

impl Field<'_> {
    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value, unfolded and trimmed.
    fn value(&self) -> String {
        let raw = &self.bytes[self.name.len() + 1..];
        String::from_utf8_lossy(raw)
            .replace("\r\n", "")
            .trim()
            .to_string()
    }
}

/// Splits `message` into its header fields and its body (from the blank
/// line on, or empty when there is none).
fn header_fields(message: &[u8]) -> Result<(Vec<Field<'_>>, &[u8]), ContentError> {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut at = 0;
    let mut line_number = 0;
    while at < message.len() {
        let end = message[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(message.len(), |p| at + p + 2);
        let line = &message[at..end];
        line_number += 1;
        if line == b"\r\n" {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let last = fields
                .last_mut()
                .ok_or(ContentError::MalformedHeader(line_number))?;
            let start = last.bytes.as_ptr() as usize - message.as_ptr() as usize;
            last.bytes = &message[start..end];
        } else {
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or(ContentError::MalformedHeader(line_number))?;
            let name = std::str::from_utf8(&line[..colon])
                .ok()
                .filter(|n| !n.is_empty() && n.bytes().all(|b| (33..=126).contains(&b)))
                .ok_or(ContentError::MalformedHeader(line_number))?;
            fields.push(Field { name, bytes: line });
        }
        at = end;
    }
    if fields.is_empty() {
        return Err(ContentError::NoHeader);
    }
    Ok((fields, &message[at..]))
}

/// Makes `submitted` ready to accept. `message_id_domain` names the domain
/// of a Message-ID added here (the configured one, or the sender's).
pub fn prepare(
    submitted: &[u8],
    envelope: Envelope,
    now: DateTime<Utc>,
    message_id_domain: Option<&str>,
) -> Result<PreparedMessage, ContentError> {
    let (fields, body) = header_fields(submitted)?;
    let idempotency_key = match fields.iter().find(|f| f.is(IDEMPOTENCY_HEADER)) {
        None => None,
        Some(f) => {
            let key = f.value();
            if key.is_empty() || key.len() > 256 || !key.bytes().all(|b| (0x20..0x7f).contains(&b))
            {
                return Err(ContentError::InvalidIdempotencyKey);
            }
            Some(key)
        }
    };
    let mut message = Vec::with_capacity(submitted.len() + 128);
    let mut fingerprint = Sha256::new();
    fingerprint.update(envelope.from.as_str());
    for to in &envelope.to {
        fingerprint.update(b"\0");
        fingerprint.update(to.address.as_str());
    }
    fingerprint.update(b"\n");
    for f in &fields {
        if !f.is(IDEMPOTENCY_HEADER) {
            fingerprint.update(f.bytes);
        }
        if !REMOVED.iter().any(|r| f.is(r)) {
            message.extend_from_slice(f.bytes);
        }
    }
    fingerprint.update(body);
    if !message.ends_with(b"\r\n") && !message.is_empty() {
        message.extend_from_slice(b"\r\n");
    }
    let message_id = match fields.iter().find(|f| f.is("Message-ID")) {
        Some(f) => f.value(),
        None => {
            let domain = message_id_domain.unwrap_or(envelope.from.domain());
            let id = format!("<{}@{domain}>", mailqueue_core::EmailId::generate(now));
            message.extend_from_slice(format!("Message-ID: {id}\r\n").as_bytes());
            id
        }
    };
    if !fields.iter().any(|f| f.is("Date")) {
        message.extend_from_slice(format!("Date: {}\r\n", now.to_rfc2822()).as_bytes());
    }
    message.extend_from_slice(body);
    let email = displayed(message, message_id, envelope)?;
    Ok(PreparedMessage {
        email,
        idempotency_key,
        fingerprint: fingerprint.finalize().into(),
    })
}

/// The email object of `message`: its headers and bodies as shown by the
/// API, with the message itself to send.
fn displayed(
    message: Vec<u8>,
    message_id: String,
    envelope: Envelope,
) -> Result<NewEmail, ContentError> {
    let parsed = MessageParser::new()
        .parse(&message)
        .ok_or(ContentError::Unparseable)?;
    let mailboxes = |list: Option<&mail_parser::Address<'_>>| -> Vec<Mailbox> {
        list.map(|l| l.iter().filter_map(mailbox).collect())
            .unwrap_or_default()
    };
    let from = mailboxes(parsed.from())
        .into_iter()
        .next()
        .unwrap_or_else(|| Mailbox {
            name: None,
            address: envelope.from.clone(),
        });
    let text = parsed
        .text_part(0)
        .filter(|p| matches!(p.body, PartType::Text(_)))
        .and_then(|_| parsed.body_text(0))
        .map(|t| t.into_owned());
    let html = parsed
        .html_part(0)
        .filter(|p| matches!(p.body, PartType::Html(_)))
        .and_then(|_| parsed.body_html(0))
        .map(|t| t.into_owned());
    let email = NewEmail {
        from,
        to: mailboxes(parsed.to()),
        cc: mailboxes(parsed.cc()),
        bcc: Vec::new(),
        reply_to: mailboxes(parsed.reply_to()),
        subject: parsed.subject().unwrap_or_default().to_string(),
        text,
        html,
        headers: Vec::new(),
        attachments: Vec::new(),
        tags: Vec::new(),
        metadata: serde_json::Map::new(),
        priority: Priority::Normal,
        scheduled_at: None,
        submitted: None,
    };
    Ok(NewEmail {
        submitted: Some(SubmittedMessage {
            envelope_from: envelope.from,
            envelope_to: envelope.to,
            message_id,
            message,
        }),
        ..email
    })
}

/// A header's address as a mailbox, if it is one mailqueue can hold.
fn mailbox(addr: &mail_parser::Addr<'_>) -> Option<Mailbox> {
    let address = EmailAddress::parse(addr.address()?).ok()?;
    let name = addr
        .name()
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.chars().any(char::is_control))
        .map(str::to_string);
    Some(Mailbox { name, address })
}

#[cfg(test)]
mod tests;
