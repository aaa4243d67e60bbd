//! The `content` column: an email's fields as JSON, the same in both
//! databases. Attachment bytes live in `email_attachments`; the JSON keeps
//! their names, types and sizes so listings never load the bytes.

use chrono::{DateTime, Utc};
use mailqueue_core::api_key::ApiKeyPermission;
use mailqueue_core::email::{Attachment, AttachmentInfo, CustomHeader, NewEmail, Priority, Tag};
use mailqueue_core::store::StoreError;
use mailqueue_core::Mailbox;
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
    };
    serde_json::to_string(&stored)
        .unwrap_or_else(|e| unreachable!("email content always serializes: {e}"))
}

/// Rebuilds an email from its columns. Attachments come back without their
/// bytes; [`with_attachment_bytes`] adds them where needed.
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
    };
    Ok((email, stored.attachments))
}

/// Joins attachment metadata with the bytes loaded for it, by position.
pub fn with_attachment_bytes(
    infos: Vec<AttachmentInfo>,
    mut bytes: Vec<Vec<u8>>,
) -> Result<Vec<Attachment>, StoreError> {
    if infos.len() != bytes.len() {
        return Err(StoreError::Corrupt(format!(
            "email lists {} attachments but {} are stored",
            infos.len(),
            bytes.len()
        )));
    }
    Ok(infos
        .into_iter()
        .zip(bytes.drain(..))
        .map(|(info, content)| Attachment {
            filename: info.filename,
            content_type: info.content_type,
            content_id: info.content_id,
            content,
        })
        .collect())
}

/// The `permission` column of `api_keys`; an unknown value is corruption.
pub fn stored_permission(text: String) -> Result<ApiKeyPermission, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Corrupt(format!("API key permission: {e}")))
}
