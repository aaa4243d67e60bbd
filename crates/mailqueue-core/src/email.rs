//! An accepted email as the domain sees it: every field already validated.
//! Values of these types only come from [`crate::request`] or from storage.

use crate::address::{EmailAddress, Mailbox};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which due emails go first when several are waiting.
/// Read from its name only; any other JSON value is a wrong type for the
/// field, not malformed JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// The stored rank: a lower rank is sent first.
    pub fn rank(self) -> i16 {
        match self {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        }
    }

    pub fn from_rank(rank: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.rank() == rank)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = Priority;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("one of `high`, `normal`, `low`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Priority, E> {
                Priority::ALL
                    .into_iter()
                    .find(|p| p.as_str() == v)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_str(Name)
    }
}

/// A user-supplied header that is neither structural nor dangerous.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomHeader {
    pub name: String,
    pub value: String,
}

/// A file to attach; `content_id` makes it an inline part referenced from
/// the HTML as `cid:<content_id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub content: Vec<u8>,
}

/// What an attachment looks like without its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    pub filename: String,
    pub content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    pub size: u64,
}

impl From<&Attachment> for AttachmentInfo {
    fn from(a: &Attachment) -> Self {
        Self {
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            content_id: a.content_id.clone(),
            size: a.content.len() as u64,
        }
    }
}

/// A `{name, value}` label kept with the email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A validated email, ready to store and send.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEmail {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub headers: Vec<CustomHeader>,
    pub attachments: Vec<Attachment>,
    pub tags: Vec<Tag>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub priority: Priority,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// A message submitted whole (over SMTP): sent as it came, to the
    /// envelope it came with. Its other fields are read from its headers
    /// and body, for display only.
    pub submitted: Option<SubmittedMessage>,
}

/// A message as a client submitted it, and its SMTP envelope. The bytes are
/// the message that goes on the wire: the front end has already removed
/// what must not leave (a `Bcc` header) and added what must be there
/// (`Message-ID`, `Date`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmittedMessage {
    /// `MAIL FROM`, the envelope sender (where bounces go).
    pub envelope_from: EmailAddress,
    /// `RCPT TO`, each address once: who the message goes to, whatever its
    /// headers say.
    pub envelope_to: Vec<Mailbox>,
    /// The `Message-ID` header's value, angle brackets included.
    pub message_id: String,
    pub message: Vec<u8>,
}

impl NewEmail {
    /// Every recipient as listed: `to`, then `cc`, then `bcc`, repeats
    /// included; for a submitted message, its envelope's recipients.
    pub fn recipients(&self) -> impl Iterator<Item = &Mailbox> {
        let (to, cc, bcc): (&[Mailbox], &[Mailbox], &[Mailbox]) = match &self.submitted {
            Some(s) => (&s.envelope_to, &[], &[]),
            None => (&self.to, &self.cc, &self.bcc),
        };
        to.iter().chain(cc).chain(bcc)
    }

    /// The lists of recipients the suppression list may take addresses out
    /// of: `to`, `cc` and `bcc`, or a submitted message's envelope.
    pub fn recipient_lists_mut(&mut self) -> Vec<&mut Vec<Mailbox>> {
        match &mut self.submitted {
            Some(s) => vec![&mut s.envelope_to],
            None => vec![&mut self.to, &mut self.cc, &mut self.bcc],
        }
    }

    /// The envelope's recipients (`RCPT TO`): each address once, in the
    /// order of [`Self::recipients`]. Addresses are the same when they
    /// differ only in the case of the domain (RFC 5321 §2.4: the local part
    /// belongs to the receiving host), so one mailbox named in `to`, `cc`
    /// and `bcc` gets one copy.
    pub fn envelope_recipients(&self) -> Vec<&EmailAddress> {
        let mut seen = std::collections::HashSet::new();
        self.recipients()
            .map(|m| &m.address)
            .filter(|a| seen.insert(envelope_key(a)))
            .collect()
    }
}

/// An address with its domain in lower case: the form in which two
/// envelope recipients are compared.
fn envelope_key(address: &EmailAddress) -> (String, String) {
    let (local, domain) = address
        .as_str()
        .rsplit_once('@')
        .unwrap_or((address.as_str(), ""));
    (local.to_string(), domain.to_ascii_lowercase())
}

/// An email from `from` to `to` with nothing else, for unit tests.
#[cfg(test)]
pub(crate) fn bare_email(from: &str, to: &[&str]) -> NewEmail {
    let m = |s: &str| Mailbox::parse(s).unwrap_or_else(|e| panic!("{e}"));
    NewEmail {
        from: m(from),
        to: to.iter().map(|a| m(a)).collect(),
        cc: vec![],
        bcc: vec![],
        reply_to: vec![],
        subject: String::new(),
        text: None,
        html: None,
        headers: vec![],
        attachments: vec![],
        tags: vec![],
        metadata: Default::default(),
        priority: Priority::Normal,
        scheduled_at: None,
        submitted: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_recipients_name_each_mailbox_once() {
        let m = |s: &str| Mailbox::parse(s).unwrap();
        let mut email = bare_email("a@acme.test", &["Ann <ann@Example.com>", "bob@example.com"]);
        email.cc = vec![m("ann@example.COM"), m("Ann@example.com")];
        email.bcc = vec![m("bob@example.com"), m("carl@example.com")];
        let envelope: Vec<&str> = email
            .envelope_recipients()
            .into_iter()
            .map(EmailAddress::as_str)
            .collect();
        assert_eq!(
            envelope,
            [
                "ann@Example.com",
                "bob@example.com",
                "Ann@example.com",
                "carl@example.com"
            ]
        );
    }
}
