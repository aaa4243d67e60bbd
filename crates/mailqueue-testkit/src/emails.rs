//! Emails for tests that drive the stores and workers directly.

use chrono::{DateTime, Utc};
use mailqueue_core::store::{EmailToInsert, InsertGroup};
use mailqueue_core::{EmailId, Mailbox, NewEmail};

/// A text email from `from` to `to`, with nothing else set.
pub fn plain_email(from: &str, to: &[&str]) -> NewEmail {
    let mailbox = |a: &str| Mailbox::parse(a).expect("a valid test address");
    NewEmail {
        from: mailbox(from),
        to: to.iter().map(|a| mailbox(a)).collect(),
        cc: vec![],
        bcc: vec![],
        reply_to: vec![],
        subject: "Hello".into(),
        text: Some("Hi there".into()),
        html: None,
        headers: vec![],
        attachments: vec![],
        tags: vec![],
        metadata: serde_json::Map::new(),
        priority: Default::default(),
        scheduled_at: None,
        submitted: None,
    }
}

/// `email` as accepted at `now` without an API key: a group of one to
/// insert, and its id.
pub fn accepted_group(email: NewEmail, now: DateTime<Utc>) -> (EmailId, InsertGroup) {
    let id = EmailId::generate(now);
    let insert = EmailToInsert {
        id,
        api_key_id: None,
        message_id: format!("<{id}@{}>", email.from.address.domain()),
        created_at: now,
        email,
    };
    let group = InsertGroup {
        emails: vec![insert].into(),
        idempotency: None,
    };
    (id, group)
}
