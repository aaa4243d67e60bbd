//! The wire shape of `POST /v1/emails` (Resend's dialect) and its one-way
//! conversion into a [`NewEmail`]. Every rule that decides whether an email
//! is acceptable lives here, so the HTTP layer only maps [`FieldError`]s.

use crate::address::Mailbox;
use crate::email::{Attachment, CustomHeader, NewEmail, Priority, Tag};
use crate::schedule::parse_scheduled_at;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// A rejected field: `field` is the JSON path (`to`, `attachments[1].content`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    pub missing: bool,
}

impl FieldError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            missing: false,
        }
    }

    pub fn missing(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            missing: true,
        }
    }
}

/// Size limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Most addresses in each of `to`, `cc`, `bcc` and `reply_to` (Resend: 50).
    pub max_recipients_per_field: usize,
    pub max_subject_chars: usize,
    pub max_metadata_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_recipients_per_field: 50,
            max_subject_chars: 2_000,
            max_metadata_bytes: 16 * 1024,
        }
    }
}

/// A string or a list of strings, as Resend accepts for `to`, `cc`, ...
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an email address or a list of email addresses")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Attachment bytes as a base64 string or, as the Python SDK sends
/// `list(f.read())`, an array of byte values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentContent {
    Base64(String),
    Bytes(Vec<u8>),
}

impl<'de> Deserialize<'de> for AttachmentContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AttachmentContent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a base64 string or an array of byte values (0-255)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AttachmentContent, E> {
                Ok(AttachmentContent::Base64(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<AttachmentContent, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(AttachmentContent::Bytes(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRequest {
    pub filename: Option<String>,
    pub content: Option<AttachmentContent>,
    pub content_type: Option<String>,
    pub content_id: Option<String>,
    /// The Python SDK's alias of `content_id`.
    pub inline_content_id: Option<String>,
    /// Remote attachments are refused with a clear error rather than fetched.
    pub path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRequest {
    pub name: Option<String>,
    pub value: Option<String>,
}

/// The JSON body of `POST /v1/emails`, one item of a batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    pub from: Option<String>,
    pub to: Option<OneOrMany>,
    pub cc: Option<OneOrMany>,
    pub bcc: Option<OneOrMany>,
    pub reply_to: Option<OneOrMany>,
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub headers: Option<serde_json::Map<String, serde_json::Value>>,
    pub attachments: Option<Vec<AttachmentRequest>>,
    pub tags: Option<Vec<TagRequest>>,
    pub scheduled_at: Option<String>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub priority: Option<Priority>,
}

/// Headers that mailqueue writes itself: setting them through `headers`
/// would produce a malformed or misleading message.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "sender",
];

/// Headers that belong to the transport, not to the author: trace fields
/// (RFC 5321 §4.4), signatures and authentication results, which relays
/// and receivers add and trust. One from an API client would forge them.
const TRANSPORT_HEADERS: &[&str] = &[
    "return-path",
    "received",
    "received-spf",
    "dkim-signature",
    "domainkey-signature",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "authentication-results",
    "delivered-to",
    "x-original-to",
];

/// `Resent-*` fields (RFC 5322 §3.6.6) are written when a message is
/// reintroduced into transport, never by the author of a new one.
const TRANSPORT_PREFIX: &str = "resent-";

fn has_line_break_or_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\t')
}

/// Whether a JSON value holds a NUL character in any string or key.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

fn parse_mailboxes(
    field: &str,
    list: Option<OneOrMany>,
    limits: &RequestLimits,
) -> Result<Vec<Mailbox>, FieldError> {
    let list = list.unwrap_or_default().0;
    if list.len() > limits.max_recipients_per_field {
        return Err(FieldError::invalid(
            field,
            format!(
                "`{field}` has {} addresses; the limit is {}",
                list.len(),
                limits.max_recipients_per_field
            ),
        ));
    }
    list.iter()
        .map(|s| Mailbox::parse(s).map_err(|e| FieldError::invalid(field, e.to_string())))
        .collect()
}

fn parse_headers(
    raw: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<Vec<CustomHeader>, FieldError> {
    let mut out = Vec::new();
    for (name, value) in raw.unwrap_or_default() {
        let field = format!("headers.{name}");
        let valid_name = !name.is_empty()
            && name.len() <= 76
            && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !valid_name {
            return Err(FieldError::invalid(
                "headers",
                format!(
                    "header name `{}` is not a valid header field name",
                    name.escape_debug()
                ),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(FieldError::invalid(
                field,
                format!("header `{name}` is set by mailqueue; use the matching field instead"),
            ));
        }
        if TRANSPORT_HEADERS.contains(&lower.as_str()) || lower.starts_with(TRANSPORT_PREFIX) {
            return Err(FieldError::invalid(
                field,
                format!("header `{name}` belongs to the mail transport and cannot be set"),
            ));
        }
        let serde_json::Value::String(value) = value else {
            return Err(FieldError::invalid(
                field,
                format!("header `{name}` must be a string"),
            ));
        };
        if has_line_break_or_control(&value) {
            return Err(FieldError::invalid(
                field,
                format!("header `{name}` contains a line break or control character"),
            ));
        }
        if value.len() > 998 {
            return Err(FieldError::invalid(
                field,
                format!("header `{name}` is longer than 998 bytes"),
            ));
        }
        out.push(CustomHeader { name, value });
    }
    Ok(out)
}

/// Longest attachment content type: RFC 6838 allows 127 characters each
/// for type and subtype, and this leaves room for a parameter or two while
/// keeping the `Content-Type` line far below 998 octets.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;

/// An attachment's content type, checked by the parser the message builder
/// uses (the `mime` crate, under lettre's `ContentType`), so that a type the
/// API accepts is one the builder takes.
fn parse_content_type(ct: &str) -> Result<String, String> {
    if ct.len() > MAX_CONTENT_TYPE_LEN {
        return Err(format!(
            "the content type is {} characters long; the limit is {MAX_CONTENT_TYPE_LEN}",
            ct.len()
        ));
    }
    if has_line_break_or_control(ct) || !ct.is_ascii() {
        return Err("the content type must be printable ASCII, like `application/pdf`".into());
    }
    ct.parse::<mime::Mime>().map_err(|e| {
        format!(
            "`{}` is not a MIME type like `application/pdf` or `text/plain; charset=utf-8`: {e}",
            ct.escape_debug()
        )
    })?;
    Ok(ct.to_string())
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(compact).ok()
}

fn parse_attachment(i: usize, a: AttachmentRequest) -> Result<Attachment, FieldError> {
    let at = |f: &str| format!("attachments[{i}].{f}");
    if a.path.is_some() {
        return Err(FieldError::invalid(
            at("path"),
            "remote attachments (`path`) are not fetched by mailqueue; send the file in `content`",
        ));
    }
    let filename = a.filename.ok_or_else(|| {
        FieldError::missing(at("filename"), "every attachment needs a `filename`")
    })?;
    if filename.trim().is_empty()
        || filename.chars().count() > 255
        || has_line_break_or_control(&filename)
    {
        return Err(FieldError::invalid(
            at("filename"),
            "the filename must be 1 to 255 characters without line breaks",
        ));
    }
    let content = match a.content {
        None => {
            return Err(FieldError::missing(
                at("content"),
                "every attachment needs a `content`",
            ))
        }
        Some(AttachmentContent::Bytes(b)) => b,
        Some(AttachmentContent::Base64(s)) => decode_base64(&s)
            .ok_or_else(|| FieldError::invalid(at("content"), "the content is not valid base64"))?,
    };
    let content_type = match a.content_type {
        Some(ct) => {
            parse_content_type(&ct).map_err(|m| FieldError::invalid(at("content_type"), m))?
        }
        None => mime_guess::from_path(&filename)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_string(),
    };
    let content_id = match a.content_id.or(a.inline_content_id) {
        None => None,
        Some(cid) => {
            let cid = cid
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string();
            let valid = !cid.is_empty()
                && cid.len() <= 128
                && cid
                    .bytes()
                    .all(|b| (33..=126).contains(&b) && b != b'<' && b != b'>');
            if !valid {
                return Err(FieldError::invalid(
                    at("content_id"),
                    "the content id must be 1 to 128 printable ASCII characters",
                ));
            }
            Some(cid)
        }
    };
    Ok(Attachment {
        filename,
        content_type,
        content_id,
        content,
    })
}

fn valid_tag_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn parse_tags(raw: Option<Vec<TagRequest>>) -> Result<Vec<Tag>, FieldError> {
    raw.unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let name = t
                .name
                .ok_or_else(|| FieldError::missing(format!("tags[{i}].name"), "every tag needs a `name`"))?;
            if !valid_tag_part(&name) {
                return Err(FieldError::invalid(
                    format!("tags[{i}].name"),
                    "tag names may only contain ASCII letters, numbers, underscores and dashes (at most 256)",
                ));
            }
            if let Some(v) = &t.value {
                if !valid_tag_part(v) {
                    return Err(FieldError::invalid(
                        format!("tags[{i}].value"),
                        "tag values may only contain ASCII letters, numbers, underscores and dashes (at most 256)",
                    ));
                }
            }
            Ok(Tag { name, value: t.value })
        })
        .collect()
}

impl EmailRequest {
    /// Validates every field and produces the email to store.
    pub fn into_new_email(
        self,
        now: DateTime<Utc>,
        limits: &RequestLimits,
    ) -> Result<NewEmail, FieldError> {
        let from = self
            .from
            .ok_or_else(|| FieldError::missing("from", "the `from` field is missing"))?;
        let from = Mailbox::parse(&from).map_err(|e| FieldError::invalid("from", e.to_string()))?;
        if self.to.as_ref().is_none_or(|t| t.0.is_empty()) {
            return Err(FieldError::missing("to", "the `to` field is missing"));
        }
        let to = parse_mailboxes("to", self.to, limits)?;
        let cc = parse_mailboxes("cc", self.cc, limits)?;
        let bcc = parse_mailboxes("bcc", self.bcc, limits)?;
        let reply_to = parse_mailboxes("reply_to", self.reply_to, limits)?;
        let subject = self
            .subject
            .ok_or_else(|| FieldError::missing("subject", "the `subject` field is missing"))?;
        if has_line_break_or_control(&subject) {
            return Err(FieldError::invalid(
                "subject",
                "the subject contains a line break or control character",
            ));
        }
        if subject.chars().count() > limits.max_subject_chars {
            return Err(FieldError::invalid(
                "subject",
                format!(
                    "the subject is longer than {} characters",
                    limits.max_subject_chars
                ),
            ));
        }
        for (field, body) in [("text", &self.text), ("html", &self.html)] {
            if body.as_deref().is_some_and(|b| b.contains('\0')) {
                return Err(FieldError::invalid(
                    field,
                    format!("`{field}` contains a NUL character, which email cannot carry"),
                ));
            }
        }
        if self.text.is_none() && self.html.is_none() {
            return Err(FieldError::missing(
                "html",
                "either `text` or `html` is required",
            ));
        }
        let headers = parse_headers(self.headers)?;
        let attachments = self
            .attachments
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, a)| parse_attachment(i, a))
            .collect::<Result<Vec<_>, _>>()?;
        let tags = parse_tags(self.tags)?;
        let metadata = self.metadata.unwrap_or_default();
        if metadata
            .iter()
            .any(|(k, v)| k.contains('\0') || holds_nul(v))
        {
            return Err(FieldError::invalid(
                "metadata",
                "`metadata` contains a NUL character, which cannot be stored",
            ));
        }
        let metadata_len = serde_json::to_vec(&metadata)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if metadata_len > limits.max_metadata_bytes {
            return Err(FieldError::invalid(
                "metadata",
                format!(
                    "metadata is {metadata_len} bytes as JSON; the limit is {}",
                    limits.max_metadata_bytes
                ),
            ));
        }
        let scheduled_at = match self.scheduled_at {
            None => None,
            Some(s) => Some(
                parse_scheduled_at(&s, now).map_err(|m| FieldError::invalid("scheduled_at", m))?,
            ),
        };
        Ok(NewEmail {
            from,
            to,
            cc,
            bcc,
            reply_to,
            subject,
            text: self.text,
            html: self.html,
            headers,
            attachments,
            tags,
            metadata,
            priority: self.priority.unwrap_or_default(),
            scheduled_at,
            submitted: None,
        })
    }
}

#[cfg(test)]
mod tests;
