use super::*;
use chrono::TimeZone;

fn envelope(to: &[&str]) -> Envelope {
    Envelope {
        from: EmailAddress::parse("app@acme.test").unwrap(),
        to: to.iter().map(|a| Mailbox::parse(a).unwrap()).collect(),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap()
}

fn sent(prepared: &PreparedMessage) -> &[u8] {
    &prepared.email.submitted.as_ref().unwrap().message
}

const MESSAGE: &[u8] = b"From: Acme <billing@acme.test>\r\n\
To: Ann <ann@example.com>, bad address\r\n\
Cc: cc@example.com\r\n\
Bcc: secret@example.com,\r\n hidden@example.com\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\
Message-ID: <m1@acme.test>\r\n\
Date: Mon, 7 Dec 2026 11:00:00 +0000\r\n\
Resend-Idempotency-Key: order-42\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hello\r\n\
--b\r\n\
Content-Type: text/html\r\n\
\r\n\
<p>Hello</p>\r\n\
--b--\r\n";

#[test]
fn keeps_the_message_but_its_bcc_and_idempotency_headers() {
    let p = prepare(
        MESSAGE,
        envelope(&["ann@example.com", "secret@example.com"]),
        now(),
        None,
    )
    .unwrap();
    let expected: Vec<u8> = String::from_utf8_lossy(MESSAGE)
        .replace("Bcc: secret@example.com,\r\n hidden@example.com\r\n", "")
        .replace("Resend-Idempotency-Key: order-42\r\n", "")
        .into_bytes();
    assert_eq!(sent(&p), expected.as_slice());
    assert_eq!(p.idempotency_key.as_deref(), Some("order-42"));
    let submitted = p.email.submitted.as_ref().unwrap();
    assert_eq!(submitted.message_id, "<m1@acme.test>");
    assert_eq!(submitted.envelope_to.len(), 2);
}

#[test]
fn shows_the_parsed_fields() {
    let p = prepare(MESSAGE, envelope(&["ann@example.com"]), now(), None).unwrap();
    let e = &p.email;
    assert_eq!(e.from.to_string(), "Acme <billing@acme.test>");
    let to: Vec<String> = e.to.iter().map(|m| m.address.to_string()).collect();
    assert_eq!(
        to,
        ["ann@example.com"],
        "an address that is none is left out"
    );
    assert_eq!(e.cc.len(), 1);
    assert!(e.bcc.is_empty());
    assert_eq!(e.subject, "Grüße");
    assert_eq!(e.text.as_deref().map(str::trim_end), Some("Hello"));
    assert_eq!(e.html.as_deref().map(str::trim_end), Some("<p>Hello</p>"));
}

#[test]
fn adds_a_message_id_and_a_date_when_missing() {
    let p = prepare(
        b"Subject: hi\r\n\r\nbody\r\n",
        envelope(&["a@example.com"]),
        now(),
        Some("mq.test"),
    )
    .unwrap();
    let text = String::from_utf8(sent(&p).to_vec()).unwrap();
    let id = &p.email.submitted.as_ref().unwrap().message_id;
    assert!(id.starts_with('<') && id.ends_with("@mq.test>"), "{id}");
    assert_eq!(
        text,
        format!("Subject: hi\r\nMessage-ID: {id}\r\nDate: Mon, 7 Dec 2026 12:00:00 +0000\r\n\r\nbody\r\n")
    );
    assert_eq!(
        p.email.from.address.as_str(),
        "app@acme.test",
        "no From: the envelope sender"
    );
}

#[test]
fn the_fingerprint_ignores_the_idempotency_key_and_what_was_added() {
    let a = prepare(
        b"Subject: x\r\nResend-Idempotency-Key: k\r\n\r\nb\r\n",
        envelope(&["a@example.com"]),
        now(),
        None,
    )
    .unwrap();
    let b = prepare(
        b"Subject: x\r\n\r\nb\r\n",
        envelope(&["a@example.com"]),
        now() + chrono::Duration::seconds(5),
        None,
    )
    .unwrap();
    let c = prepare(
        b"Subject: x\r\n\r\nb\r\n",
        envelope(&["b@example.com"]),
        now(),
        None,
    )
    .unwrap();
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_ne!(
        a.fingerprint, c.fingerprint,
        "another envelope is another request"
    );
}

#[test]
fn refuses_what_is_no_message() {
    let cases: [(&[u8], ContentError); 4] = [
        (b"\r\nbody only\r\n", ContentError::NoHeader),
        (
            b"Subject: x\r\nnot a field\r\n\r\n",
            ContentError::MalformedHeader(2),
        ),
        (
            b" folded first: x\r\n\r\n",
            ContentError::MalformedHeader(1),
        ),
        (
            b"Resend-Idempotency-Key:\r\n\r\n",
            ContentError::InvalidIdempotencyKey,
        ),
    ];
    for (message, error) in cases {
        assert_eq!(
            prepare(message, envelope(&["a@example.com"]), now(), None).unwrap_err(),
            error
        );
    }
}

proptest::proptest! {
    #[test]
    fn never_panics(message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
        let _ = prepare(&message, envelope(&["a@example.com"]), now(), None);
    }
}
