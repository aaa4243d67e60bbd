use chrono::{DateTime, Duration, TimeZone, Utc};
use mailqueue_core::email::{Attachment, CustomHeader, Priority, Tag};
use mailqueue_core::store::{Claim, EmailToInsert, InsertGroup, Store};
use mailqueue_core::{EmailId, Mailbox, NewEmail};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

pub fn email(subject: &str) -> NewEmail {
    NewEmail {
        subject: subject.into(),
        text: Some("text body".into()),
        ..mailqueue_testkit::plain_email("Acme <noreply@acme.test>", &["a@example.com"])
    }
}

pub fn full_email() -> NewEmail {
    let mut e = email("Grüße, all fields");
    e.cc = vec![Mailbox::parse("\"Doe, Jane\" <cc@example.com>").unwrap()];
    e.bcc = vec![Mailbox::parse("bcc@example.com").unwrap()];
    e.reply_to = vec![Mailbox::parse("reply@acme.test").unwrap()];
    e.html = Some("<p>html</p>".into());
    e.headers = vec![CustomHeader {
        name: "X-Ref".into(),
        value: "42".into(),
    }];
    e.attachments = vec![
        Attachment {
            filename: "a.pdf".into(),
            content_type: "application/pdf".into(),
            content_id: None,
            content: b"%PDF-1.4 bytes".to_vec(),
        },
        Attachment {
            filename: "logo.png".into(),
            content_type: "image/png".into(),
            content_id: Some("logo".into()),
            content: vec![0, 1, 2, 255],
        },
    ];
    e.tags = vec![Tag {
        name: "kind".into(),
        value: Some("welcome".into()),
    }];
    e.metadata.insert("user".into(), serde_json::json!(7));
    e.priority = Priority::High;
    e
}

pub fn to_insert(email: NewEmail, created_at: DateTime<Utc>) -> EmailToInsert {
    let id = EmailId::generate(created_at);
    EmailToInsert {
        id,
        api_key_id: None,
        message_id: format!("<{id}@acme.test>"),
        created_at,
        email,
    }
}

/// Inserts one email created at `at`; returns its id.
pub async fn insert(store: &dyn Store, email: NewEmail, at: DateTime<Utc>) -> EmailId {
    let e = to_insert(email, at);
    let id = e.id;
    store
        .insert_emails(&[InsertGroup {
            emails: vec![e].into(),
            idempotency: None,
        }])
        .await
        .unwrap();
    id
}

pub fn claim(holder: &str, now: DateTime<Utc>) -> Claim {
    Claim {
        holder: holder.into(),
        now,
        lease_expires_at: now + Duration::minutes(5),
    }
}
