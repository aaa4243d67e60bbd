//! What crosses the wire: only CRLF, stuffed dots, no smuggling; replies
//! nobody asked for; pipelining and refused recipients.

use crate::{attach, email, relay, send, WAIT};
use mail_parser::MimeHeaders;
use mailqueue_core::delivery::FailureClass;
use mailqueue_core::DeliveryError;
use mailqueue_testkit::{RelayOptions, TestRelay, SMUGGLING_PAYLOAD as SMUGGLING};
use std::time::Duration;

#[tokio::test]
async fn a_smuggling_attachment_is_one_message_and_the_connection_goes_on() {
    let lenient = TestRelay::start(RelayOptions {
        lenient: true,
        ..Default::default()
    })
    .await;
    let client = relay(&lenient.url(), Duration::from_secs(5));
    let mut first = email(
        &["user@example.com"],
        std::str::from_utf8(SMUGGLING).unwrap(),
    );
    attach(&mut first, "payload.txt", "text/plain", SMUGGLING);
    send(&client, &first).await.unwrap();
    let second = email(&["next@example.com"], "the next email");
    send(&client, &second).await.unwrap();

    let messages = lenient.wait_for_messages(2, WAIT).await;
    assert_eq!(messages.len(), 2, "one message per email, nothing smuggled");
    assert_eq!(messages[0].rcpt_to, ["user@example.com"]);
    assert_eq!(messages[1].rcpt_to, ["next@example.com"]);
    assert_eq!(lenient.sessions(), 1, "the pooled connection was reused");
    assert!(lenient
        .commands()
        .iter()
        .all(|c| !c.line.contains("smuggled")));
    let parsed = messages[0].parsed();
    let attachment = parsed.attachments().next().unwrap();
    assert_eq!(attachment.attachment_name(), Some("payload.txt"));
    assert_eq!(attachment.contents(), SMUGGLING);
    assert_eq!(
        parsed.body_text(0).unwrap(),
        std::str::from_utf8(SMUGGLING)
            .unwrap()
            .replace('\n', "\r\n"),
        "the text body's dots were stuffed, not taken as the end"
    );
    assert!(lenient.bare_line_endings().is_empty());
}

#[tokio::test]
async fn every_line_on_the_wire_ends_with_crlf_and_fits() {
    let strict = TestRelay::start(RelayOptions::default()).await;
    let client = relay(&strict.url(), Duration::from_secs(5));
    let csv = b"name,amount\nzoe,1\n.hidden,2\n".to_vec();
    let binary: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let mut e = email(&["user@example.com"], "one\ntwo\rthree\r\n.four\n..five");
    e.html = Some(format!("<p>{}</p>\n.\n", "long ".repeat(400)));
    attach(&mut e, "data.csv", "text/csv", &csv);
    attach(&mut e, "blob.bin", "application/octet-stream", &binary);
    send(&client, &e).await.unwrap();

    let message = &strict.wait_for_messages(1, WAIT).await[0];
    assert_eq!(strict.bare_line_endings(), Vec::<String>::new());
    assert!(message.longest_line() <= 998, "{}", message.longest_line());
    let parsed = message.parsed();
    let files: Vec<(String, Vec<u8>)> = parsed
        .attachments()
        .map(|a| {
            (
                a.attachment_name().unwrap().to_string(),
                a.contents().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("data.csv".to_string(), csv),
            ("blob.bin".to_string(), binary)
        ]
    );
    assert_eq!(
        parsed.body_text(0).unwrap(),
        "one\r\ntwo\r\nthree\r\n.four\r\n..five"
    );
}

#[tokio::test]
async fn a_reply_nobody_asked_for_closes_the_connection_and_the_next_email_goes_out() {
    let desynced = TestRelay::start(RelayOptions {
        unsolicited_after_data: Some("250 2.0.0 Ok: queued as a smuggled message".into()),
        ..Default::default()
    })
    .await;
    let client = relay(&desynced.url(), Duration::from_secs(5));
    send(&client, &email(&["a@example.com"], "first"))
        .await
        .unwrap();
    let reply = send(&client, &email(&["b@example.com"], "second"))
        .await
        .unwrap();
    assert!(reply.reply.message.contains("queued as 2"), "{reply:?}");
    let messages = desynced.wait_for_messages(2, WAIT).await;
    assert_eq!(
        messages[1].session, 2,
        "the second went over a new connection"
    );
    let first_session_mails = desynced
        .commands()
        .iter()
        .filter(|c| c.session == 1 && c.line.starts_with("MAIL"))
        .count();
    assert_eq!(
        first_session_mails, 1,
        "the stale connection was not reused"
    );
}

async fn envelope_reads(pipelining: bool) -> Vec<(usize, String)> {
    let relay_server = TestRelay::start(RelayOptions {
        pipelining,
        ..Default::default()
    })
    .await;
    let client = relay(&relay_server.url(), Duration::from_secs(5));
    send(&client, &email(&["a@example.com", "b@example.com"], "x"))
        .await
        .unwrap();
    relay_server.wait_for_messages(1, WAIT).await;
    relay_server
        .commands()
        .into_iter()
        .filter(|c| {
            ["MAIL", "RCPT", "DATA"]
                .iter()
                .any(|v| c.line.starts_with(v))
        })
        .map(|c| (c.read, c.line))
        .collect()
}

#[tokio::test]
async fn the_envelope_is_pipelined_when_the_relay_offers_it() {
    let reads = envelope_reads(true).await;
    assert_eq!(reads.len(), 4, "{reads:?}");
    assert!(
        reads.iter().all(|r| r.0 == reads[0].0),
        "one write: {reads:?}"
    );
    let reads = envelope_reads(false).await;
    let mut distinct: Vec<usize> = reads.iter().map(|r| r.0).collect();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "one command at a time: {reads:?}");
}

async fn a_refused_recipient_is_reported_and_the_others_get_it(pipelining: bool) -> TestRelay {
    let refusing = TestRelay::start(RelayOptions {
        pipelining,
        rcpt_replies: vec![("gone@example.com".into(), 550)],
        ..Default::default()
    })
    .await;
    let client = relay(&refusing.url(), Duration::from_secs(5));
    let delivered = send(
        &client,
        &email(&["ok@example.com", "gone@example.com"], "x"),
    )
    .await
    .unwrap();
    assert_eq!(delivered.reply.code, 250);
    assert_eq!(delivered.rejected.len(), 1, "{delivered:?}");
    assert_eq!(delivered.rejected[0].address.as_str(), "gone@example.com");
    assert_eq!(delivered.rejected[0].reply.code, 550);
    let messages = refusing.wait_for_messages(1, WAIT).await;
    assert_eq!(messages[0].rcpt_to, vec!["ok@example.com".to_string()]);
    refusing
}

#[tokio::test]
async fn a_refused_recipient_is_reported_and_the_others_get_the_message() {
    for pipelining in [false, true] {
        let relay = a_refused_recipient_is_reported_and_the_others_get_it(pipelining).await;
        assert_eq!(relay.sessions(), 1, "pipelining {pipelining}");
    }
}

async fn every_recipient_refused_fails_the_email(pipelining: bool) -> TestRelay {
    let refusing = TestRelay::start(RelayOptions {
        pipelining,
        rcpt_replies: vec![
            ("gone@example.com".into(), 550),
            ("left@example.com".into(), 551),
        ],
        ..Default::default()
    })
    .await;
    let client = relay(&refusing.url(), Duration::from_secs(5));
    let e = send(
        &client,
        &email(&["gone@example.com", "left@example.com"], "x"),
    )
    .await
    .unwrap_err();
    assert!(!matches!(e, DeliveryError::Transient(_)), "{e}");
    assert_eq!(e.failure().class, FailureClass::Reply5xx);
    assert_eq!(e.failure().smtp_code, Some(550));
    let rejected: Vec<_> = e
        .failure()
        .rejected
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(rejected, ["gone@example.com", "left@example.com"]);
    assert!(e.to_string().contains("gone@example.com"), "{e}");
    send(&client, &email(&["ok@example.com"], "next"))
        .await
        .unwrap();
    let messages = refusing.wait_for_messages(1, WAIT).await;
    assert_eq!(
        messages.len(),
        1,
        "nothing was delivered for the refused one"
    );
    assert_eq!(messages[0].rcpt_to, vec!["ok@example.com".to_string()]);
    refusing
}

#[tokio::test]
async fn every_recipient_refused_fails_the_email_and_delivers_nothing() {
    let in_turn = every_recipient_refused_fails_the_email(false).await;
    assert_eq!(in_turn.sessions(), 1, "RSET, then the same connection");
    assert!(in_turn.commands().iter().any(|c| c.line == "RSET"));
    let datas = in_turn
        .commands()
        .iter()
        .filter(|c| c.line == "DATA")
        .count();
    assert_eq!(datas, 1, "no DATA for the refused email");
    // Pipelined, DATA went with the envelope and the relay refused it.
    let pipelined = every_recipient_refused_fails_the_email(true).await;
    assert_eq!(pipelined.sessions(), 1);
}
