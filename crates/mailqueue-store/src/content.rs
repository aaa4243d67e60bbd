//! The `content` column: an email's fields as JSON, the same in both
//! databases. Attachment bytes live in `email_attachments`; the JSON keeps
//! their names, types and sizes so listings never load the bytes.
//!
//! A message submitted whole (over SMTP) keeps its bytes in
//! `email_attachments` too, as the email's one stored file (position 0,
//! `message/rfc822`): it is loaded, backed up and purged with the same
//! rows. Its JSON keeps the envelope, the Message-ID and the size.

use chrono::{DateTime, Utc};
use mailqueue_core::api_key::ApiKeyPermission;
use mailqueue_core::email::{Attachment, AttachmentInfo, CustomHeader, NewEmail, Priority, Tag};
use mailqueue_core::store::StoreError;
use mailqueue_core::{EmailAddress, Mailbox, SubmittedMessage};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct StoredContent {
    from: Mailbox,
    to: Vec<Mailbox>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cc: Vec<Mailbox>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    bcc: Vec<Mailbox>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    reply_to: Vec<Mailbox>,
    subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    html: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<CustomHeader>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<AttachmentInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<Tag>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    metadata: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    submitted: Option<StoredSubmission>,
}

/// What the JSON keeps of a submitted message; its bytes are a file.
#[derive(Serialize, Deserialize)]
struct StoredSubmission {
    envelope_from: String,
    envelope_to: Vec<Mailbox>,
    message_id: String,
    size: u64,
}

/// One row of `email_attachments` to write.
pub struct StoredFile<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub content_id: Option<&'a str>,
    pub content: &'a [u8],
}

/// The name and type under which a submitted message is stored.
const SUBMITTED_FILE: (&str, &str) = ("message.eml", "message/rfc822");

/// The files `email` stores, in position order: its attachments, or a
/// submitted message's bytes.
pub fn stored_files(email: &NewEmail) -> Vec<StoredFile<'_>> {
    if let Some(s) = &email.submitted {
        return vec![StoredFile {
            filename: SUBMITTED_FILE.0,
            content_type: SUBMITTED_FILE.1,
            content_id: None,
            content: &s.message,
        }];
    }
    email
        .attachments
        .iter()
        .map(|a| StoredFile {
            filename: &a.filename,
            content_type: &a.content_type,
            content_id: a.content_id.as_deref(),
            content: &a.content,
        })
        .collect()
}

/// Whether an email decoded with these attachment infos has files to load
/// before it can be sent.
pub fn has_files(email: &NewEmail, infos: &[AttachmentInfo]) -> bool {
    email.submitted.is_some() || !infos.is_empty()
}

/// Serializes the fields of `email` that go into the `content` column.
pub fn encode_content(email: &NewEmail) -> String {
    let stored = StoredContent {
        from: email.from.clone(),
        to: email.to.clone(),
        cc: email.cc.clone(),
        bcc: email.bcc.clone(),
        reply_to: email.reply_to.clone(),
        subject: email.subject.clone(),
        text: email.text.clone(),
        html: email.html.clone(),
        headers: email.headers.clone(),
        attachments: email.attachments.iter().map(AttachmentInfo::from).collect(),
        tags: email.tags.clone(),
        metadata: email.metadata.clone(),
        submitted: email.submitted.as_ref().map(|s| StoredSubmission {
            envelope_from: s.envelope_from.to_string(),
            envelope_to: s.envelope_to.clone(),
            message_id: s.message_id.clone(),
            size: s.message.len() as u64,
        }),
    };
    serde_json::to_string(&stored)
        .unwrap_or_else(|e| unreachable!("email content always serializes: {e}"))
}

/// Rebuilds an email from its columns. Attachments and a submitted message
/// come back without their bytes; [`attach_files`] adds them where needed.
pub fn decode_content(
    content: &str,
    priority: i16,
    scheduled_at: Option<DateTime<Utc>>,
) -> Result<(NewEmail, Vec<AttachmentInfo>), StoreError> {
    let stored: StoredContent = serde_json::from_str(content)
        .map_err(|e| StoreError::Corrupt(format!("email content is not valid: {e}")))?;
    let priority = Priority::from_rank(priority)
        .ok_or_else(|| StoreError::Corrupt(format!("priority rank {priority} is unknown")))?;
    let email = NewEmail {
        from: stored.from,
        to: stored.to,
        cc: stored.cc,
        bcc: stored.bcc,
        reply_to: stored.reply_to,
        subject: stored.subject,
        text: stored.text,
        html: stored.html,
        headers: stored.headers,
        attachments: Vec::new(),
        tags: stored.tags,
        metadata: stored.metadata,
        priority,
        scheduled_at,
        submitted: stored
            .submitted
            .map(|s| {
                let envelope_from = EmailAddress::parse(&s.envelope_from).map_err(|e| {
                    StoreError::Corrupt(format!("a submitted message's envelope sender: {e}"))
                })?;
                Ok::<_, StoreError>(SubmittedMessage {
                    envelope_from,
                    envelope_to: s.envelope_to,
                    message_id: s.message_id,
                    message: Vec::new(),
                })
            })
            .transpose()?,
    };
    Ok((email, stored.attachments))
}

/// Gives `email` the bytes of its stored files, loaded in position order:
/// a submitted message's, or its attachments' (joined with their infos by
/// position).
pub fn attach_files(
    email: &mut NewEmail,
    infos: Vec<AttachmentInfo>,
    mut bytes: Vec<Vec<u8>>,
) -> Result<(), StoreError> {
    if let Some(submitted) = &mut email.submitted {
        if bytes.len() != 1 {
            return Err(StoreError::Corrupt(format!(
                "a submitted message is one stored file, but {} are stored",
                bytes.len()
            )));
        }
        submitted.message = bytes.remove(0);
        return Ok(());
    }
    if infos.len() != bytes.len() {
        return Err(StoreError::Corrupt(format!(
            "email lists {} attachments but {} are stored",
            infos.len(),
            bytes.len()
        )));
    }
    email.attachments = infos
        .into_iter()
        .zip(bytes.drain(..))
        .map(|(info, content)| Attachment {
            filename: info.filename,
            content_type: info.content_type,
            content_id: info.content_id,
            content,
        })
        .collect();
    Ok(())
}

/// The `permission` column of `api_keys`; an unknown value is corruption.
pub fn stored_permission(text: String) -> Result<ApiKeyPermission, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("API key permission: {e}")))
}
