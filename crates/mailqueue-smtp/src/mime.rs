//! Building the MIME message of an email with lettre.
//!
//! The structure is the usual one for transactional mail:
//! `mixed[ related[ alternative[text, html], inline… ], attachment… ]`,
//! each level present only when needed. Bcc recipients go into the
//! envelope, never into the headers.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{
    Attachment as MimeAttachment, Mailbox as LettreMailbox, MultiPart, SinglePart,
};
use lettre::Message;
use mailqueue_core::delivery::{DeliveryError, FailureClass};
use mailqueue_core::transport::OutgoingEmail;
use mailqueue_core::{Mailbox, NewEmail};
use std::time::SystemTime;

fn unbuildable(detail: String) -> DeliveryError {
    DeliveryError::permanent(FailureClass::Message, None, detail)
}

fn mailbox(m: &Mailbox) -> Result<LettreMailbox, DeliveryError> {
    let address = m
        .address
        .as_str()
        .parse()
        .map_err(|e| unbuildable(format!("address {} cannot be used: {e}", m.address)))?;
    Ok(LettreMailbox::new(m.name.clone(), address))
}

enum Part {
    Single(SinglePart),
    Multi(MultiPart),
}

impl Part {
    fn add_to(self, builder: lettre::message::MultiPartBuilder) -> MultiPart {
        match self {
            Part::Single(s) => builder.singlepart(s),
            Part::Multi(m) => builder.multipart(m),
        }
    }
}

fn content_type(ct: &str) -> Result<ContentType, DeliveryError> {
    ContentType::parse(ct)
        .map_err(|e| unbuildable(format!("content type `{ct}` is not valid: {e}")))
}

fn body(email: &NewEmail) -> Result<Part, DeliveryError> {
    let text_and_html = match (&email.text, &email.html) {
        (Some(text), Some(html)) => Part::Multi(MultiPart::alternative_plain_html(
            text.clone(),
            html.clone(),
        )),
        (Some(text), None) => Part::Single(SinglePart::plain(text.clone())),
        (None, Some(html)) => Part::Single(SinglePart::html(html.clone())),
        (None, None) => Part::Single(SinglePart::plain(String::new())),
    };
    let (inline, attached): (Vec<_>, Vec<_>) = email
        .attachments
        .iter()
        .partition(|a| a.content_id.is_some());
    let mut part = text_and_html;
    if !inline.is_empty() {
        let mut related = part.add_to(MultiPart::related());
        for a in inline {
            let cid = a.content_id.clone().unwrap_or_default();
            let file = MimeAttachment::new_inline_with_name(cid, a.filename.clone())
                .body(a.content.clone(), content_type(&a.content_type)?);
            related = related.singlepart(file);
        }
        part = Part::Multi(related);
    }
    if !attached.is_empty() {
        let mut mixed = part.add_to(MultiPart::mixed());
        for a in attached {
            let file = MimeAttachment::new(a.filename.clone())
                .body(a.content.clone(), content_type(&a.content_type)?);
            mixed = mixed.singlepart(file);
        }
        part = Part::Multi(mixed);
    }
    Ok(part)
}

/// Builds the message. Failures are permanent: the same input would fail again.
pub fn build_message(out: &OutgoingEmail<'_>) -> Result<Message, DeliveryError> {
    let email = out.email;
    let mut builder = Message::builder()
        .from(mailbox(&email.from)?)
        .subject(email.subject.clone())
        .message_id(Some(out.message_id.to_string()))
        .date(SystemTime::from(out.date));
    for m in &email.to {
        builder = builder.to(mailbox(m)?);
    }
    for m in &email.cc {
        builder = builder.cc(mailbox(m)?);
    }
    for m in &email.bcc {
        builder = builder.bcc(mailbox(m)?);
    }
    for m in &email.reply_to {
        builder = builder.reply_to(mailbox(m)?);
    }
    for h in &email.headers {
        let name = HeaderName::new_from_ascii(h.name.clone())
            .map_err(|e| unbuildable(format!("header name `{}` is not valid: {e}", h.name)))?;
        builder = builder.raw_header(HeaderValue::new(name, h.value.clone()));
    }
    let built = match body(email)? {
        Part::Single(s) => builder.singlepart(s),
        Part::Multi(m) => builder.multipart(m),
    };
    built.map_err(|e| unbuildable(format!("the message cannot be built: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use mailqueue_core::email::{Attachment, CustomHeader};
    use mailqueue_core::EmailId;

    fn email() -> NewEmail {
        NewEmail {
            from: Mailbox::parse("Zoë Sender <from@acme.test>").unwrap(),
            to: vec![Mailbox::parse("to@example.com").unwrap()],
            cc: vec![Mailbox::parse("cc@example.com").unwrap()],
            bcc: vec![Mailbox::parse("hidden@example.com").unwrap()],
            reply_to: vec![],
            subject: "Grüße aus Köln".into(),
            text: Some("plain body".into()),
            html: Some("<p>html body <img src=\"cid:logo\"></p>".into()),
            headers: vec![CustomHeader {
                name: "X-Campaign".into(),
                value: "spring".into(),
            }],
            attachments: vec![
                Attachment {
                    filename: "report.pdf".into(),
                    content_type: "application/pdf".into(),
                    content_id: None,
                    content: b"%PDF-1.4".to_vec(),
                },
                Attachment {
                    filename: "logo.png".into(),
                    content_type: "image/png".into(),
                    content_id: Some("logo".into()),
                    content: vec![137, 80, 78, 71],
                },
            ],
            tags: vec![],
            metadata: Default::default(),
            priority: Default::default(),
            scheduled_at: None,
        }
    }

    #[test]
    fn builds_mixed_related_alternative_with_encoded_headers() {
        let e = email();
        let out = OutgoingEmail {
            id: EmailId::generate(Utc::now()),
            message_id: "<abc@acme.test>",
            date: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            email: &e,
        };
        let msg = build_message(&out).unwrap();
        let text = String::from_utf8(msg.formatted()).unwrap();
        assert!(text.contains("Message-ID: <abc@acme.test>"), "{text}");
        assert!(text.contains("Date: Fri, 02 Jan 2026 03:04:05"), "{text}");
        assert!(
            text.contains("Subject: =?utf-8?"),
            "non-ASCII subject is encoded: {text}"
        );
        assert!(text.contains("X-Campaign: spring"));
        assert!(!text.contains("hidden@example.com"), "bcc is not a header");
        assert!(text.contains("multipart/mixed") && text.contains("multipart/related"));
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("Content-ID: <logo>"));
        let rcpt: Vec<String> = msg.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(
            rcpt,
            ["to@example.com", "cc@example.com", "hidden@example.com"]
        );
    }
}
