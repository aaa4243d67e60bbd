//! Delivery at the level of bytes on the wire: what a relay receives holds
//! only CRLF line endings, no line over 998 octets, and exactly the
//! messages that were sent, whatever the emails contain.

use crate::helpers::*;
use base64::Engine;
use mail_parser::MimeHeaders;
use mailqueue_testkit::{
    RelayOptions, RelayedMessage, StoreKind, TestRelay, SMUGGLING_PAYLOAD as SMUGGLING,
};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// No line of the data is over 998 octets (bare CR and LF are checked by
/// the relay, in commands and data alike).
fn assert_lines_fit(message: &RelayedMessage) {
    assert!(message.longest_line() <= 998, "{}", message.longest_line());
}

fn attachment(message: &RelayedMessage, name: &str) -> Vec<u8> {
    let parsed = message.parsed();
    let found = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some(name))
        .unwrap_or_else(|| panic!("no attachment {name}"));
    found.contents().to_vec()
}

#[tokio::test]
async fn a_smuggling_attachment_arrives_as_one_message_and_the_next_email_is_sent() {
    let lenient = TestRelay::start(RelayOptions {
        lenient: true,
        ..Default::default()
    })
    .await;
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_SMTP_URL", &lenient.url())]).await;
    let mut first = minimal_email();
    first["attachments"] = json!([{"filename": "payload.txt", "content": b64(SMUGGLING)}]);
    let first = app.send(&first).await;
    app.wait_for_status(&first, "sent", WAIT).await;
    let second = app.send(&minimal_email()).await;
    let email = app.wait_for_status(&second, "sent", WAIT).await;
    assert_eq!(email["attempts"], 1, "{email}");

    let messages = lenient.wait_for_messages(2, WAIT).await;
    assert_eq!(messages.len(), 2, "exactly one message per email");
    assert!(messages.iter().all(|m| m.mail_from == "noreply@acme.test"));
    assert!(messages.iter().all(|m| m.rcpt_to == ["user@example.com"]));
    assert_eq!(lenient.sessions(), 1, "the pooled connection carried both");
    assert!(
        lenient.bare_line_endings().is_empty(),
        "{:?}",
        lenient.bare_line_endings()
    );
    assert_lines_fit(&messages[0]);
    assert_eq!(attachment(&messages[0], "payload.txt"), SMUGGLING);
}

#[tokio::test]
async fn a_csv_with_lf_line_endings_arrives_byte_identical() {
    let strict = TestRelay::start(RelayOptions::default()).await;
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_SMTP_URL", &strict.url())]).await;
    let csv = b"id,name\n1,Zo\xc3\xab\n.2,dot\n\n3,\"multi\rline\"\n".to_vec();
    let mut e = minimal_email();
    e["text"] = json!("first line\nsecond line\n.\nafter a lone dot");
    e["attachments"] =
        json!([{"filename": "export.csv", "content": b64(&csv), "content_type": "text/csv"}]);
    let id = app.send(&e).await;
    app.wait_for_status(&id, "sent", WAIT).await;

    let message = &strict.wait_for_messages(1, WAIT).await[0];
    assert!(
        strict.bare_line_endings().is_empty(),
        "{:?}",
        strict.bare_line_endings()
    );
    assert_lines_fit(message);
    assert_eq!(attachment(message, "export.csv"), csv);
    assert_eq!(
        message.parsed().body_text(0).unwrap(),
        "first line\r\nsecond line\r\n.\r\nafter a lone dot"
    );
}

#[tokio::test]
async fn a_998_byte_header_value_arrives_folded_and_unfolds_to_itself() {
    let strict = TestRelay::start(RelayOptions::default()).await;
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_SMTP_URL", &strict.url())]).await;
    let words: String = (0..200).map(|i| format!("token{i:03} ")).collect();
    let spaced = words[..998].to_string();
    let unbroken = "u".repeat(998);
    let mut e = minimal_email();
    e["headers"] = json!({"X-Spaced": spaced, "X-Unbroken": unbroken});
    let id = app.send(&e).await;
    app.wait_for_status(&id, "sent", WAIT).await;

    let message = &strict.wait_for_messages(1, WAIT).await[0];
    assert_lines_fit(message);
    let bytes = message.unstuffed();
    let parsed = mail_parser::MessageParser::new()
        .with_minimal_headers()
        .header_text("X-Unbroken")
        .parse(&bytes)
        .unwrap();
    let raw = parsed.header_raw("X-Spaced").unwrap();
    assert!(raw.contains("\r\n "), "folded: {raw:?}");
    assert_eq!(raw.replace("\r\n", "").trim(), spaced);
    assert_eq!(
        parsed.header("X-Unbroken").and_then(|h| h.as_text()),
        Some(unbroken.as_str()),
        "encoded-words decode to the value"
    );
}

/// Each mailbox gets one copy per message: an address named again in
/// `to`, `cc` or `bcc` (its domain in another case) gets one `RCPT TO`.
/// And fifty long addresses in each header arrive folded, every line of
/// the message within 998 octets.
#[tokio::test]
async fn each_address_gets_one_rcpt_and_long_address_lists_arrive_folded() {
    let strict = TestRelay::start(RelayOptions::default()).await;
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_SMTP_URL", &strict.url())]).await;
    let mut e = minimal_email();
    e["to"] = json!(["one@example.com", "two@example.com"]);
    e["cc"] = json!(["one@EXAMPLE.com", "Two@example.com"]);
    e["bcc"] = json!(["one@example.com", "three@example.com"]);
    let id = app.send(&e).await;
    app.wait_for_status(&id, "sent", WAIT).await;
    let message = &strict.wait_for_messages(1, WAIT).await[0];
    assert_eq!(
        message.rcpt_to,
        [
            "one@example.com",
            "two@example.com",
            "Two@example.com",
            "three@example.com"
        ]
    );

    let long = |i: usize| format!("{}-{i:02}@example.com", "r".repeat(26));
    let mut e = minimal_email();
    e["to"] = json!((0..50).map(long).collect::<Vec<_>>());
    e["reply_to"] = json!((0..50).map(long).collect::<Vec<_>>());
    e["cc"] = json!((0..50)
        .map(|i| format!("\"Recipient Number {i}, Ünïcødé\" <{}>", long(i)))
        .collect::<Vec<_>>());
    let id = app.send(&e).await;
    app.wait_for_status(&id, "sent", WAIT).await;
    let message = &strict.wait_for_messages(2, WAIT).await[1];
    assert_lines_fit(message);
    assert_eq!(
        message.rcpt_to.len(),
        50,
        "to and cc name the same mailboxes"
    );
    let parsed = message.parsed();
    assert_eq!(parsed.to().unwrap().iter().count(), 50);
    assert_eq!(parsed.reply_to().unwrap().iter().count(), 50);
    assert_eq!(
        parsed.cc().unwrap().first().unwrap().name(),
        Some("Recipient Number 0, Ünïcødé")
    );
}
