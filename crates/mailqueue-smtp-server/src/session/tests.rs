//! The protocol on an in-memory connection, with an intake that takes
//! everything (the store's side is tested end to end with the real
//! server): pipelined commands answered in order, the order of commands
//! enforced, and any bytes at all answered without a panic or a hang.

use super::*;
use crate::auth::AuthFailures;
use crate::settings::SessionSettings;
use async_trait::async_trait;
use base64::Engine;
use proptest::prelude::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Takes any key `good`, any address, and every message.
struct TakesAll {
    settings: SessionSettings,
    failures: AuthFailures,
}

#[async_trait]
impl Intake for TakesAll {
    fn settings(&self) -> &SessionSettings {
        &self.settings
    }
    fn auth(&self) -> Option<&AuthFailures> {
        Some(&self.failures)
    }
    async fn authenticate(&self, c: &Credentials) -> Result<Option<ApiKeyRecord>, Reply> {
        Ok((c.password == "good").then(|| ApiKeyRecord {
            id: mailqueue_core::ApiKeyId(uuid::Uuid::nil()),
            name: "good".into(),
            token_prefix: "mq_".into(),
            permission: Default::default(),
            domain_id: None,
            created_at: chrono::Utc::now(),
            revoked_at: None,
        }))
    }
    async fn sender(
        &self,
        from: &str,
        _: Option<&ApiKeyRecord>,
    ) -> Result<Option<EmailAddress>, Reply> {
        EmailAddress::parse(from)
            .map(Some)
            .map_err(|e| Reply::new(553, "5.1.7", e.to_string()))
    }
    fn recipient(&self, to: &str) -> Result<Mailbox, Reply> {
        EmailAddress::parse(to)
            .map(|address| Mailbox {
                name: None,
                address,
            })
            .map_err(|e| Reply::new(553, "5.1.3", e.to_string()))
    }
    async fn deliver(
        &self,
        _: IpAddr,
        _: Option<ApiKeyRecord>,
        envelope: Envelope,
        message: Vec<u8>,
    ) -> Reply {
        Reply::new(
            250,
            "2.0.0",
            format!("{} octets for {}", message.len(), envelope.to.len()),
        )
    }
}

/// Runs a session on `input` (then end of input); returns all it wrote.
async fn converse(input: &[u8]) -> String {
    let (client, server) = tokio::io::duplex(1 << 20);
    let intake = Arc::new(TakesAll {
        settings: SessionSettings {
            hostname: "mq.test".into(),
            max_message_bytes: 4096,
            allow_plaintext_auth: true,
            command_timeout: Duration::from_secs(5),
            data_timeout: Duration::from_secs(5),
            ..SessionSettings::default()
        },
        failures: AuthFailures::default(),
    });
    let session = Session::new(
        Box::new(server),
        "192.0.2.1".parse().unwrap(),
        intake,
        None,
        false,
    );
    let task = tokio::spawn(session.run());
    let (mut read, mut write) = tokio::io::split(client);
    write.write_all(input).await.unwrap();
    write.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut out))
        .await
        .expect("the session ends once its input does")
        .unwrap();
    task.await.expect("the session does not panic");
    String::from_utf8(out).expect("replies are text")
}

fn plain(password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("\0resend\0{password}"))
}

fn codes(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.as_bytes().get(3) == Some(&b' '))
        .map(|l| &l[..3])
        .collect()
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let input = format!(
        "EHLO c.test\r\nAUTH PLAIN {}\r\nMAIL FROM:<a@acme.test>\r\nRCPT TO:<b@example.com>\r\n\
         RCPT TO:<c@example.com>\r\nDATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
        plain("good")
    );
    let out = converse(input.as_bytes()).await;
    assert_eq!(
        codes(&out),
        ["220", "250", "235", "250", "250", "250", "354", "250", "221"],
        "{out}"
    );
    assert!(out.contains("250 2.0.0 20 octets for 2"), "{out}");
    assert!(out.contains("250-SIZE 4096"), "{out}");
}

#[tokio::test]
async fn commands_out_of_order_are_refused_and_the_session_goes_on() {
    let input = format!(
        "MAIL FROM:<a@acme.test>\r\nEHLO c.test\r\nMAIL FROM:<a@acme.test>\r\nAUTH PLAIN {}\r\n\
         AUTH PLAIN {}\r\nRCPT TO:<b@example.com>\r\nDATA\r\nMAIL FROM:<a@acme.test>\r\n\
         MAIL FROM:<a@acme.test>\r\nDATA\r\nRSET\r\nBDAT 10 LAST\r\n",
        plain("bad"),
        plain("good")
    );
    let out = converse(input.as_bytes()).await;
    assert_eq!(
        codes(&out),
        [
            "220", "503", "250", "530", "535", "235", "503", "503", "250", "503", "554", "250",
            "502"
        ],
        "{out}"
    );
}

#[tokio::test]
async fn a_message_over_size_is_read_to_its_end_then_refused() {
    let body = "x".repeat(900);
    let mut input = format!(
        "EHLO c\r\nAUTH PLAIN {}\r\nMAIL FROM:<a@acme.test>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
        plain("good")
    );
    for _ in 0..10 {
        input.push_str(&body);
        input.push_str("\r\n");
    }
    input.push_str(".\r\nNOOP\r\n");
    let out = converse(input.as_bytes()).await;
    assert_eq!(
        codes(&out),
        ["220", "250", "235", "250", "250", "354", "552", "250"],
        "{out}"
    );
}

#[tokio::test]
async fn twenty_refusals_in_a_row_close_the_connection() {
    let out = converse("FROB\r\n".repeat(30).as_bytes()).await;
    let replies = codes(&out);
    assert_eq!(replies.len(), 1 + 20 + 1, "{out}");
    assert_eq!(replies.last(), Some(&"421"));
}

#[tokio::test]
async fn a_command_line_too_long_is_refused_whole() {
    let long = format!("NOOP {}\r\nNOOP\r\n", "a".repeat(10_000));
    let out = converse(long.as_bytes()).await;
    assert_eq!(codes(&out), ["220", "500", "250"], "{out}");
}

fn command_or_junk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"EHLO fuzz.test\r\n".to_vec()),
        Just(b"HELO fuzz.test\r\n".to_vec()),
        Just(format!("AUTH PLAIN {}\r\n", plain("good")).into_bytes()),
        Just(b"AUTH LOGIN\r\n".to_vec()),
        Just(b"MAIL FROM:<a@acme.test> SIZE=100\r\n".to_vec()),
        Just(b"RCPT TO:<b@example.com>\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"Subject: fuzz\r\n\r\nbody\r\n.\r\n".to_vec()),
        Just(b"RSET\r\n".to_vec()),
        Just(b"STARTTLS\r\n".to_vec()),
        Just(b"VRFY x\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..300),
        "[ -~]{0,100}\r\n".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_get_replies_never_a_panic_or_a_hang(parts in proptest::collection::vec(command_or_junk(), 0..40)) {
        let input: Vec<u8> = parts.concat();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let out = runtime.block_on(converse(&input));
        prop_assert!(out.starts_with("220 "));
        for line in out.lines() {
            let code = line.get(..3).unwrap_or("");
            prop_assert!(code.bytes().all(|b| b.is_ascii_digit()), "{line}");
        }
    }
}
