//! Building the MIME message of an email with lettre, in a form that is
//! safe on the wire whatever the email holds.
//!
//! The structure is the usual one for transactional mail:
//! `mixed[ related[ alternative[text, html], inline… ], attachment… ]`,
//! each level present only when needed. Bcc recipients go into the
//! envelope, never into the headers, and the envelope names each address
//! once (`NewEmail::envelope_recipients`).
//!
//! The result is 7-bit, has CRLF line endings only and no line over 998
//! octets: attachments are always base64 (lettre would send short ASCII
//! files as `7bit`, bare LFs and CRs included), text and HTML bodies get
//! CRLF line endings before lettre picks 7bit or quoted-printable, and the
//! address lists, the subject and custom headers are folded by
//! [`crate::header_value`].
//! [`build_message`] checks the bytes before handing them out, so a message
//! that would break the promise fails (permanently) instead of going out.

use crate::header_value::{encode_header_value, encode_mailbox_list, HARD_LIMIT};
use lettre::address::{Address, Envelope};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{
    Attachment as MimeAttachment, Body, Mailbox as LettreMailbox, Mailboxes, MultiPart, SinglePart,
};
use lettre::Message;
use mailqueue_core::delivery::{DeliveryError, FailureClass};
use mailqueue_core::transport::OutgoingEmail;
use mailqueue_core::{EmailAddress, Mailbox, NewEmail};
use std::time::SystemTime;

/// A message ready for the wire: the envelope and the formatted bytes.
#[derive(Clone, Debug)]
pub struct BuiltMessage {
    /// The envelope sender (`MAIL FROM`).
    pub from: EmailAddress,
    /// Every recipient, Bcc included (`RCPT TO`), each once.
    pub to: Vec<EmailAddress>,
    /// CRLF only, no line over 998 octets; 7-bit unless submitted whole
    /// with 8-bit bytes (which the submission front end allowed).
    pub bytes: Vec<u8>,
}

fn unbuildable(detail: String) -> DeliveryError {
    DeliveryError::permanent(FailureClass::Message, None, detail)
}

fn address(a: &mailqueue_core::EmailAddress) -> Result<Address, DeliveryError> {
    a.as_str()
        .parse()
        .map_err(|e| unbuildable(format!("address {a} cannot be used: {e}")))
}

/// An address header (`From`, `To`, `Cc`, `Reply-To`), folded by
/// [`encode_mailbox_list`]. lettre keeps its own rendering of the list as
/// the header's unencoded value, from which it reads `From` back.
fn address_header(name: &'static str, list: &[Mailbox]) -> Result<HeaderValue, DeliveryError> {
    let mut mailboxes = Mailboxes::new();
    for m in list {
        mailboxes.push(LettreMailbox::new(m.name.clone(), address(&m.address)?));
    }
    let encoded = encode_mailbox_list(name, list)
        .ok_or_else(|| unbuildable(format!("the {name} header cannot be folded to fit a line")))?;
    Ok(HeaderValue::dangerous_new_pre_encoded(
        HeaderName::new_from_ascii_str(name),
        mailboxes.to_string(),
        encoded,
    ))
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

/// Every line ending (CRLF, bare LF, bare CR) as CRLF.
fn crlf_line_endings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

/// A text or HTML part. lettre sends short ASCII text as `7bit`, which
/// must not hold NUL; such text is sent quoted-printable instead.
fn text_part(text: &str, content_type: ContentType) -> SinglePart {
    let text = crlf_line_endings(text);
    let body = if text.contains('\0') {
        Body::new_with_encoding(text, ContentTransferEncoding::QuotedPrintable)
            .unwrap_or_else(Body::new)
    } else {
        Body::new(text)
    };
    SinglePart::builder().header(content_type).body(body)
}

/// An attachment's bytes, base64 whatever they are.
fn attachment_body(content: &[u8]) -> Body {
    Body::new_with_encoding(content.to_vec(), ContentTransferEncoding::Base64)
        .unwrap_or_else(Body::new)
}

fn body(email: &NewEmail) -> Result<Part, DeliveryError> {
    let plain = |t: &str| text_part(t, ContentType::TEXT_PLAIN);
    let html = |t: &str| text_part(t, ContentType::TEXT_HTML);
    let text_and_html = match (&email.text, &email.html) {
        (Some(text), Some(h)) => Part::Multi(
            MultiPart::alternative()
                .singlepart(plain(text))
                .singlepart(html(h)),
        ),
        (Some(text), None) => Part::Single(plain(text)),
        (None, Some(h)) => Part::Single(html(h)),
        (None, None) => Part::Single(plain("")),
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
                .body(attachment_body(&a.content), content_type(&a.content_type)?);
            related = related.singlepart(file);
        }
        part = Part::Multi(related);
    }
    if !attached.is_empty() {
        let mut mixed = part.add_to(MultiPart::mixed());
        for a in attached {
            let file = MimeAttachment::new(a.filename.clone())
                .body(attachment_body(&a.content), content_type(&a.content_type)?);
            mixed = mixed.singlepart(file);
        }
        part = Part::Multi(mixed);
    }
    Ok(part)
}

/// A header whose value is folded (or encoded) to fit on the wire.
fn folded_header(name: HeaderName, value: &str) -> HeaderValue {
    let encoded = encode_header_value(&name, value);
    HeaderValue::dangerous_new_pre_encoded(name, value.to_string(), encoded)
}

/// Why `bytes` may not go on the wire as they are, if they may not: 8-bit
/// or NUL bytes, a CR or LF outside a CRLF, a line over 998 octets.
fn wire_form_problem(bytes: &[u8]) -> Option<String> {
    let mut line_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let problem = match b {
            0 => Some("a NUL byte"),
            0x80.. => Some("an 8-bit byte"),
            b'\r' if bytes.get(i + 1) != Some(&b'\n') => Some("a CR without LF"),
            b'\n' if i == 0 || bytes[i - 1] != b'\r' => Some("an LF without CR"),
            _ => None,
        };
        if let Some(problem) = problem {
            return Some(format!("{problem} at byte {i}"));
        }
        if b == b'\n' {
            if i - 1 - line_start > HARD_LIMIT {
                return Some(format!(
                    "a line of {} octets at byte {line_start}",
                    i - 1 - line_start
                ));
            }
            line_start = i + 1;
        }
    }
    (bytes.len() - line_start > HARD_LIMIT).then(|| {
        format!(
            "a line of {} octets at byte {line_start}",
            bytes.len() - line_start
        )
    })
}

/// Builds the message, signed first when the email has a signer (the
/// signature header goes on top, over the bytes that leave). Failures
/// are permanent: the same input would fail again.
/// A message submitted whole goes as it came, to its envelope. The envelope
/// sender is the email's return address when reports come back to
/// mailqueue, else its sender.
pub fn build_message(out: &OutgoingEmail<'_>) -> Result<BuiltMessage, DeliveryError> {
    let (sender, bytes) = match &out.email.submitted {
        Some(submitted) => (&submitted.envelope_from, submitted.message.clone()),
        None => {
            let bytes = build_lettre_message(out)?.formatted();
            if let Some(problem) = wire_form_problem(&bytes) {
                return Err(unbuildable(format!(
                    "the built message cannot go on the wire: {problem}"
                )));
            }
            (&out.email.from.address, bytes)
        }
    };
    let bytes = match &out.signer {
        Some(signer) => {
            let header = signer
                .signature_header(&bytes)
                .map_err(|e| unbuildable(format!("the message cannot be signed: {e}")))?;
            let mut signed = Vec::with_capacity(header.len() + bytes.len());
            signed.extend_from_slice(header.as_bytes());
            signed.extend_from_slice(&bytes);
            signed
        }
        None => bytes,
    };
    Ok(BuiltMessage {
        from: out.return_path.clone().unwrap_or_else(|| sender.clone()),
        to: out
            .email
            .envelope_recipients()
            .into_iter()
            .cloned()
            .collect(),
        bytes,
    })
}

fn build_lettre_message(out: &OutgoingEmail<'_>) -> Result<Message, DeliveryError> {
    let email = out.email;
    let recipients = email
        .envelope_recipients()
        .into_iter()
        .map(address)
        .collect::<Result<Vec<_>, _>>()?;
    let envelope = Envelope::new(Some(address(&email.from.address)?), recipients)
        .map_err(|e| unbuildable(format!("the envelope cannot be built: {e}")))?;
    let mut builder = Message::builder()
        .envelope(envelope)
        .raw_header(address_header("From", std::slice::from_ref(&email.from))?)
        .raw_header(folded_header(
            HeaderName::new_from_ascii_str("Subject"),
            &email.subject,
        ))
        .message_id(Some(out.message_id.to_string()))
        .date(SystemTime::from(out.date));
    for (name, list) in [
        ("To", &email.to),
        ("Cc", &email.cc),
        ("Reply-To", &email.reply_to),
    ] {
        if !list.is_empty() {
            builder = builder.raw_header(address_header(name, list)?);
        }
    }
    for h in &email.headers {
        let name = HeaderName::new_from_ascii(h.name.clone())
            .map_err(|e| unbuildable(format!("header name `{}` is not valid: {e}", h.name)))?;
        builder = builder.raw_header(folded_header(name, &h.value));
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
    use mail_parser::MimeHeaders;
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
            submitted: None,
        }
    }

    fn build(e: &NewEmail) -> BuiltMessage {
        build_message(&OutgoingEmail {
            id: EmailId::generate(Utc::now()),
            message_id: "<abc@acme.test>",
            date: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            email: e,
            return_path: None,
            signer: None,
            require_tls: false,
        })
        .unwrap()
    }

    fn parse(m: &BuiltMessage) -> mail_parser::Message<'_> {
        // Custom headers are raw to mail_parser unless named as text.
        mail_parser::MessageParser::new()
            .with_minimal_headers()
            .header_text("X-Token")
            .parse(&m.bytes)
            .unwrap()
    }

    #[test]
    fn builds_mixed_related_alternative_with_encoded_headers() {
        let msg = build(&email());
        let text = String::from_utf8(msg.bytes.clone()).unwrap();
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
        assert_eq!(msg.from.as_str(), "from@acme.test");
        let to: Vec<&str> = msg.to.iter().map(EmailAddress::as_str).collect();
        assert_eq!(
            to,
            ["to@example.com", "cc@example.com", "hidden@example.com"]
        );
    }

    const SMUGGLING: &[u8] = b"x\n.\nMAIL FROM:<smuggled@evil.test>\nRCPT TO:<victim@example.com>\nDATA\nforged\n.\n\r.\r";

    #[test]
    fn attachments_are_base64_whatever_they_hold() {
        let mut e = email();
        e.attachments[0].content = SMUGGLING.to_vec();
        e.attachments[0].content_type = "text/plain".into();
        let msg = build(&e);
        let text = String::from_utf8(msg.bytes.clone()).unwrap();
        assert!(!text.contains("smuggled"), "{text}");
        assert!(
            !text.contains("Content-Transfer-Encoding: 7bit\r\nContent-Disposition: attachment")
        );
        let parsed = parse(&msg);
        let a = parsed
            .attachments()
            .find(|a| a.attachment_name() == Some("report.pdf"));
        assert_eq!(a.unwrap().contents(), SMUGGLING);
    }

    #[test]
    fn text_and_html_get_crlf_line_endings_and_keep_their_text() {
        let mut e = email();
        e.text = Some("one\ntwo\rthree\r\n.four\0five".into());
        e.html = Some("<p>\r\r\n</p>".into());
        let msg = build(&e);
        assert_eq!(wire_form_problem(&msg.bytes), None);
        let parsed = parse(&msg);
        assert_eq!(
            parsed.body_text(0).unwrap(),
            "one\r\ntwo\r\nthree\r\n.four\0five"
        );
        assert_eq!(parsed.body_html(0).unwrap(), "<p>\r\n\r\n</p>");
    }

    #[test]
    fn long_subjects_and_header_values_are_folded() {
        let mut e = email();
        e.subject = "s".repeat(2000);
        let spaced: String = (0..200).map(|i| format!("w{i:03} ")).collect();
        e.headers = vec![
            CustomHeader {
                name: "X-Spaced".into(),
                value: spaced[..998].to_string(),
            },
            CustomHeader {
                name: "X-Token".into(),
                value: "t".repeat(998),
            },
        ];
        let msg = build(&e);
        assert_eq!(wire_form_problem(&msg.bytes), None);
        let parsed = parse(&msg);
        assert_eq!(parsed.subject(), Some("s".repeat(2000).as_str()));
        let raw = parsed.header_raw("X-Spaced").unwrap();
        assert_eq!(raw.replace("\r\n", "").trim_start(), &spaced[..998]);
        assert_eq!(
            parsed.header("X-Token").and_then(|h| h.as_text()),
            Some("t".repeat(998).as_str())
        );
    }

    #[test]
    fn long_address_lists_fold_and_each_address_is_sent_to_once() {
        let mut e = email();
        let long = |i: usize| format!("{}{i:02}@example.com", "r".repeat(26));
        e.to = (0..50).map(|i| Mailbox::parse(&long(i)).unwrap()).collect();
        e.reply_to = e.to[..30].to_vec();
        e.cc = (0..50)
            .map(|i| Mailbox::parse(&format!("Recipient Number {i} <{}>", long(i))).unwrap())
            .collect();
        e.bcc = vec![
            Mailbox::parse(&long(7).to_uppercase().replace("EXAMPLE.COM", "Example.Com")).unwrap(),
        ];
        let msg = build(&e);
        assert_eq!(wire_form_problem(&msg.bytes), None);
        let text = String::from_utf8(msg.bytes.clone()).unwrap();
        let head = &text[..text.find("\r\n\r\n").unwrap()];
        for line in head.split("\r\n") {
            assert!(line.len() <= 78, "{line}");
        }
        let parsed = parse(&msg);
        let to: Vec<String> = parsed
            .to()
            .unwrap()
            .iter()
            .map(|a| a.address().unwrap().to_string())
            .collect();
        assert_eq!(to, (0..50).map(long).collect::<Vec<_>>());
        assert_eq!(
            parsed.cc().unwrap().first().unwrap().name(),
            Some("Recipient Number 0")
        );
        assert_eq!(parsed.reply_to().unwrap().iter().count(), 30);
        // 50 in `to` and again in `cc`; the upper-case local part in `bcc` is another mailbox.
        assert_eq!(msg.to.len(), 51, "{:?}", msg.to);
    }

    #[test]
    fn wire_form_problems_are_named() {
        assert_eq!(wire_form_problem(b"a\r\nb\r\n"), None);
        assert_eq!(wire_form_problem(b""), None);
        assert!(wire_form_problem(b"a\nb")
            .unwrap()
            .contains("LF without CR"));
        assert!(wire_form_problem(b"\n").unwrap().contains("LF without CR"));
        assert!(wire_form_problem(b"a\rb")
            .unwrap()
            .contains("CR without LF"));
        assert!(wire_form_problem(b"a\0").unwrap().contains("NUL"));
        assert!(wire_form_problem("é".as_bytes()).unwrap().contains("8-bit"));
        let fits = format!("{}\r\n{}", "x".repeat(998), "y".repeat(998));
        assert_eq!(wire_form_problem(fits.as_bytes()), None);
        let long = format!("{}\r\n", "x".repeat(999));
        assert!(wire_form_problem(long.as_bytes())
            .unwrap()
            .contains("999 octets"));
        assert!(wire_form_problem("z".repeat(999).as_bytes()).is_some());
    }
}
