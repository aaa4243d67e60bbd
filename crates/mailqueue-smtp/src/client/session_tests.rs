//! The session against a scripted peer on the other end of an in-memory
//! pipe: what it writes, in which order, and what each reply makes of it.

use super::*;
use mailqueue_core::delivery::FailureClass;
use mailqueue_core::{DeliveryError, EmailAddress};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, DuplexStream};
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_millis(300);

/// One move of the peer.
enum Peer {
    /// Read one line; it must start with this.
    Read(&'static str),
    /// Read the DATA payload up to the `.` line.
    ReadData,
    Send(&'static str),
    /// Stop reading and writing, keeping the pipe open.
    Hang,
    /// Read (and drop) until the client closes its end.
    UntilClosed,
}

/// Starts a peer; the handle yields every line it read.
fn peer(script: Vec<Peer>, buffer: usize) -> (DuplexStream, JoinHandle<Vec<String>>) {
    let (client, server) = tokio::io::duplex(buffer);
    let task = tokio::spawn(async move {
        let (read, mut write) = tokio::io::split(server);
        let mut read = BufReader::new(read);
        let mut seen = Vec::new();
        for step in script {
            match step {
                Peer::Read(prefix) => {
                    let mut line = String::new();
                    read.read_line(&mut line).await.unwrap();
                    assert!(line.starts_with(prefix), "expected {prefix}, got {line:?}");
                    assert!(line.ends_with("\r\n"), "{line:?}");
                    seen.push(line.trim_end().to_string());
                }
                Peer::ReadData => loop {
                    let mut line = String::new();
                    read.read_line(&mut line).await.unwrap();
                    seen.push(line.trim_end().to_string());
                    if line == ".\r\n" {
                        break;
                    }
                },
                Peer::Send(bytes) => write.write_all(bytes.as_bytes()).await.unwrap(),
                Peer::Hang => std::future::pending::<()>().await,
                Peer::UntilClosed => {
                    let mut rest = Vec::new();
                    read.read_to_end(&mut rest).await.unwrap();
                }
            }
        }
        seen
    });
    (client, task)
}

const EHLO_PLAIN: &str = "250-relay.test\r\n250-8BITMIME\r\n250 SIZE 1000\r\n";
const EHLO_PIPELINING: &str = "250-relay.test\r\n250 PIPELINING\r\n";

async fn ready(script: Vec<Peer>) -> (Session<DuplexStream>, JoinHandle<Vec<String>>) {
    ready_with(EHLO_PLAIN, script, 1 << 16).await
}

async fn ready_with(
    ehlo: &'static str,
    script: Vec<Peer>,
    buffer: usize,
) -> (Session<DuplexStream>, JoinHandle<Vec<String>>) {
    let mut full = vec![
        Peer::Send("220 relay.test ESMTP\r\n"),
        Peer::Read("EHLO "),
        Peer::Send(ehlo),
    ];
    full.extend(script);
    let (stream, task) = peer(full, buffer);
    let mut session = Session::greet(stream, TIMEOUT).await.unwrap();
    session.ehlo("client.test").await.unwrap();
    (session, task)
}

fn rcpts(list: &[&str]) -> Vec<EmailAddress> {
    list.iter().map(|s| addr(s)).collect()
}

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

#[test]
fn reads_capabilities_in_both_auth_forms() {
    let reply = Reply {
        code: 250,
        lines: vec![
            "relay.test greets you".into(),
            "pipelining".into(),
            "STARTTLS".into(),
            "AUTH login PLAIN".into(),
            "AUTH=CRAM-MD5 LOGIN".into(),
        ],
    };
    let caps = Capabilities::from_ehlo(&reply);
    assert!(caps.pipelining && caps.starttls);
    assert_eq!(caps.auth, ["CRAM-MD5", "LOGIN", "PLAIN"]);
    let first_line_only = Reply {
        code: 250,
        lines: vec!["PIPELINING".into()],
    };
    assert_eq!(
        Capabilities::from_ehlo(&first_line_only),
        Capabilities::default()
    );
}

#[tokio::test]
async fn sends_a_transaction_one_command_at_a_time() {
    let (mut s, peer) = ready(vec![
        Peer::Read("MAIL FROM:<from@acme.test>"),
        Peer::Send("250 ok\r\n"),
        Peer::Read("RCPT TO:<a@example.com>"),
        Peer::Send("250 ok\r\n"),
        Peer::Read("RCPT TO:<b@example.com>"),
        Peer::Send("250 ok\r\n"),
        Peer::Read("DATA"),
        Peer::Send("354 go on\r\n"),
        Peer::ReadData,
        Peer::Send("250-2.0.0 queued\r\n250 as 42\r\n"),
        Peer::UntilClosed,
    ])
    .await;
    let reply = s
        .send_mail(
            &addr("from@acme.test"),
            &rcpts(&["a@example.com", "b@example.com"]),
            b"Subject: x\n\n.hi\n",
        )
        .await
        .unwrap();
    assert_eq!(reply.reply.to_string(), "250 2.0.0 queued as 42");
    assert!(s.is_quiet());
    drop(s);
    let seen = peer.await.unwrap();
    assert_eq!(&seen[seen.len() - 4..], ["Subject: x", "", "..hi", "."]);
}

#[tokio::test]
async fn pipelines_the_envelope_when_offered() {
    // The peer reads all four commands before it answers any: a client
    // that waited for each reply would time out here.
    let (mut s, peer) = ready_with(
        EHLO_PIPELINING,
        vec![
            Peer::Read("MAIL FROM:<from@acme.test>"),
            Peer::Read("RCPT TO:<a@example.com>"),
            Peer::Read("RCPT TO:<b@example.com>"),
            Peer::Read("DATA"),
            Peer::Send("250 ok\r\n250 ok\r\n250 ok\r\n354 go on\r\n"),
            Peer::ReadData,
            Peer::Send("250 queued\r\n"),
        ],
        1 << 16,
    )
    .await;
    assert!(s.capabilities().pipelining);
    s.send_mail(
        &addr("from@acme.test"),
        &rcpts(&["a@example.com", "b@example.com"]),
        b"body",
    )
    .await
    .unwrap();
    assert!(!s.is_broken());
    peer.await.unwrap();
}

#[tokio::test]
async fn a_recipient_refused_in_turn_is_returned_and_the_others_get_the_data() {
    let (mut s, peer) = ready(vec![
        Peer::Read("MAIL FROM:"),
        Peer::Send("250 ok\r\n"),
        Peer::Read("RCPT TO:<gone@example.com>"),
        Peer::Send("550 5.1.1 no such user\r\n"),
        Peer::Read("RCPT TO:<b@example.com>"),
        Peer::Send("250 ok\r\n"),
        Peer::Read("DATA"),
        Peer::Send("354 go on\r\n"),
        Peer::ReadData,
        Peer::Send("250 queued\r\n"),
    ])
    .await;
    let accepted = s
        .send_mail(
            &addr("from@acme.test"),
            &rcpts(&["gone@example.com", "b@example.com"]),
            b"x",
        )
        .await
        .unwrap();
    assert_eq!(accepted.reply.code, 250);
    assert_eq!(accepted.rejected.len(), 1);
    assert_eq!(accepted.rejected[0].address.as_str(), "gone@example.com");
    assert_eq!(accepted.rejected[0].reply.code, 550);
    assert!(!s.is_broken(), "the conversation is still in step");
    assert!(peer.await.unwrap().iter().any(|l| l == "."));
}

#[tokio::test]
async fn every_recipient_refused_in_turn_skips_data_and_fails_for_good() {
    let (mut s, peer) = ready(vec![
        Peer::Read("MAIL FROM:"),
        Peer::Send("250 ok\r\n"),
        Peer::Read("RCPT TO:<gone@example.com>"),
        Peer::Send("550 5.1.1 no such user\r\n"),
        Peer::Read("RCPT TO:<also@example.com>"),
        Peer::Send("550 5.1.1 no such user\r\n"),
        Peer::Read("RSET"),
        Peer::Send("250 ok\r\n"),
    ])
    .await;
    let e = s
        .send_mail(
            &addr("from@acme.test"),
            &rcpts(&["gone@example.com", "also@example.com"]),
            b"x",
        )
        .await
        .unwrap_err();
    assert!(
        !matches!(e.to_delivery_error(), DeliveryError::Transient(_)),
        "{e}"
    );
    assert!(!s.is_broken(), "the conversation is still in step");
    s.rset().await.unwrap();
    peer.await.unwrap();
}

#[tokio::test]
async fn a_354_after_a_recipient_refused_for_now_breaks_the_session() {
    let (mut s, _peer) = ready_with(
        EHLO_PIPELINING,
        vec![
            Peer::Read("MAIL"),
            Peer::Read("RCPT"),
            Peer::Read("RCPT"),
            Peer::Read("DATA"),
            Peer::Send("250 ok\r\n450 later\r\n250 ok\r\n354 go on\r\n"),
            Peer::Hang,
        ],
        1 << 16,
    )
    .await;
    let e = s
        .send_mail(
            &addr("f@acme.test"),
            &rcpts(&["x@e.test", "y@e.test"]),
            b"x",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Refused { .. }), "{e}");
    assert!(matches!(e.to_delivery_error(), DeliveryError::Transient(_)));
    assert!(
        s.is_broken(),
        "only closing aborts the data the relay waits for"
    );
}

#[tokio::test]
async fn a_recipient_refused_for_good_is_returned_and_the_others_get_the_data() {
    let (mut s, peer) = ready_with(
        EHLO_PIPELINING,
        vec![
            Peer::Read("MAIL"),
            Peer::Read("RCPT"),
            Peer::Read("RCPT"),
            Peer::Read("DATA"),
            Peer::Send("250 ok\r\n550 5.1.1 no such user\r\n250 ok\r\n354 go on\r\n"),
            Peer::ReadData,
            Peer::Send("250 queued\r\n"),
            Peer::UntilClosed,
        ],
        1 << 16,
    )
    .await;
    let accepted = s
        .send_mail(
            &addr("f@acme.test"),
            &rcpts(&["x@e.test", "y@e.test"]),
            b"x",
        )
        .await
        .unwrap();
    assert_eq!(accepted.reply.code, 250);
    assert_eq!(accepted.rejected.len(), 1);
    assert_eq!(accepted.rejected[0].address.as_str(), "x@e.test");
    assert_eq!(accepted.rejected[0].reply.code, 550);
    assert!(!s.is_broken());
    drop(s);
    assert!(peer.await.unwrap().iter().any(|l| l == "."));
}

#[tokio::test]
async fn a_reply_that_does_not_fit_breaks_the_session_and_is_retried() {
    let (mut s, _peer) = ready(vec![
        Peer::Read("MAIL"),
        Peer::Send("354 go on\r\n"),
        Peer::Hang,
    ])
    .await;
    let e = s
        .send_mail(&addr("f@acme.test"), &rcpts(&["x@e.test"]), b"x")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Protocol { .. }), "{e}");
    assert!(s.is_broken());
    let d = e.to_delivery_error();
    assert!(matches!(d, DeliveryError::Transient(_)));
    assert_eq!(d.failure().class, FailureClass::Connection);
}

#[tokio::test]
async fn a_garbled_greeting_is_refused() {
    let (stream, _peer) = peer(
        vec![Peer::Send("HTTP/1.1 400 Bad Request\r\n"), Peer::Hang],
        1024,
    );
    let e = Session::greet(stream, TIMEOUT).await.err().unwrap();
    assert!(
        matches!(
            e,
            ClientError::Protocol {
                step: Step::Greeting,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn bytes_nobody_asked_for_are_noticed_before_the_next_command() {
    let (mut s, _peer) = ready(vec![
        Peer::Read("NOOP"),
        Peer::Send("250 ok\r\n250 2.0.0 stale reply\r\n"),
        Peer::Hang,
    ])
    .await;
    s.noop().await.unwrap();
    assert!(!s.is_quiet(), "the stale reply is already buffered");
    let e = s.noop().await.unwrap_err();
    assert!(e.to_string().contains("stale reply"), "{e}");
    assert!(s.is_broken());
}

#[tokio::test]
async fn is_quiet_sees_bytes_waiting_on_the_stream() {
    let (mut s, peer) = ready(vec![Peer::Send("250 unsolicited\r\n")]).await;
    assert!(peer.await.unwrap().len() == 1, "the peer sent its line");
    assert!(!s.is_quiet());
    assert!(s.is_broken());
}

#[tokio::test]
async fn is_quiet_sees_the_end_of_the_stream() {
    let (mut s, peer) = ready(vec![]).await;
    peer.await.unwrap();
    assert!(!s.is_quiet(), "the peer closed its end");
}

#[tokio::test]
async fn starttls_refuses_bytes_after_the_220() {
    let (mut s, _peer) = ready(vec![
        Peer::Read("STARTTLS"),
        Peer::Send("220 go ahead\r\n250 injected\r\n"),
        Peer::Hang,
    ])
    .await;
    let e = s.starttls().await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Protocol {
                step: Step::StartTls,
                ..
            }
        ),
        "{e}"
    );
}

fn credentials() -> Credentials {
    Credentials {
        user: "relay-user".into(),
        password: "s3cret".into(),
    }
}

#[tokio::test]
async fn auth_plain_sends_user_and_password_in_one_token() {
    let (mut s, peer) = ready_with(
        "250-relay.test\r\n250 AUTH LOGIN PLAIN\r\n",
        vec![Peer::Read("AUTH PLAIN "), Peer::Send("235 2.7.0 ok\r\n")],
        1 << 16,
    )
    .await;
    s.authenticate(&credentials()).await.unwrap();
    let seen = peer.await.unwrap();
    assert_eq!(
        seen[1],
        format!("AUTH PLAIN {}", b64(b"\0relay-user\0s3cret"))
    );
}

#[tokio::test]
async fn auth_login_refused_says_so_without_the_secret() {
    let (mut s, peer) = ready_with(
        "250-relay.test\r\n250 AUTH=LOGIN\r\n",
        vec![
            Peer::Read("AUTH LOGIN"),
            Peer::Send("334 VXNlcm5hbWU6\r\n"),
            Peer::Read(""),
            Peer::Send("334 UGFzc3dvcmQ6\r\n"),
            Peer::Read(""),
            Peer::Send("535 5.7.8 Authentication credentials invalid\r\n"),
        ],
        1 << 16,
    )
    .await;
    let e = s.authenticate(&credentials()).await.unwrap_err();
    assert!(e.is_auth());
    let text = e.to_string();
    assert_eq!(
        text,
        "the relay refuses the credentials (535 5.7.8 Authentication credentials invalid)"
    );
    let seen = peer.await.unwrap();
    assert_eq!(seen[2], b64(b"relay-user"));
    assert_eq!(seen[3], b64(b"s3cret"));
    assert!(!format!("{e:?}{:?}", credentials()).contains("s3cret"));
}

#[tokio::test]
async fn credentials_without_a_known_mechanism_are_an_auth_failure() {
    let (mut s, _peer) =
        ready_with("250-relay.test\r\n250 AUTH CRAM-MD5\r\n", vec![], 1 << 16).await;
    let e = s.authenticate(&credentials()).await.unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert!(e.to_string().contains("CRAM-MD5"), "{e}");
}

#[tokio::test]
async fn a_530_to_mail_from_is_an_auth_failure() {
    let (mut s, _peer) = ready(vec![
        Peer::Read("MAIL"),
        Peer::Send("530 5.7.0 Authentication required\r\n"),
        Peer::Hang,
    ])
    .await;
    let e = s
        .send_mail(&addr("f@acme.test"), &rcpts(&["x@e.test"]), b"x")
        .await
        .unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert_eq!(e.to_delivery_error().failure().class, FailureClass::Auth);
}

#[tokio::test]
async fn a_reply_that_does_not_come_times_out_per_command() {
    let (mut s, _peer) = ready(vec![Peer::Read("NOOP"), Peer::Hang]).await;
    let started = std::time::Instant::now();
    let e = s.noop().await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Timeout {
                step: Step::Noop,
                ..
            }
        ),
        "{e}"
    );
    assert!(started.elapsed() >= TIMEOUT);
    assert!(s.is_broken());
}

#[tokio::test]
async fn a_write_that_makes_no_progress_times_out() {
    // A 1 KiB pipe and a peer that stops reading after 354.
    let (mut s, _peer) = ready_with(
        EHLO_PLAIN,
        vec![
            Peer::Read("MAIL"),
            Peer::Send("250 ok\r\n"),
            Peer::Read("RCPT"),
            Peer::Send("250 ok\r\n"),
            Peer::Read("DATA"),
            Peer::Send("354 go on\r\n"),
            Peer::Hang,
        ],
        1024,
    )
    .await;
    let big = vec![b'x'; 200_000];
    let e = s
        .send_mail(&addr("f@acme.test"), &rcpts(&["x@e.test"]), &big)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Timeout {
                step: Step::EndOfData,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn an_8bit_message_is_announced_to_a_relay_that_offers_8bitmime() {
    let transaction = || {
        vec![
            Peer::Read("MAIL FROM:<f@acme.test>"),
            Peer::Send("250 ok\r\n"),
            Peer::Read("RCPT TO:<x@e.test>"),
            Peer::Send("250 ok\r\n"),
            Peer::Read("DATA"),
            Peer::Send("354 go on\r\n"),
            Peer::ReadData,
            Peer::Send("250 ok\r\n"),
            Peer::UntilClosed,
        ]
    };
    let mail_from = |ehlo: &'static str, message: &'static [u8]| async move {
        let (mut s, peer) = ready_with(ehlo, transaction(), 1 << 16).await;
        s.send_mail(&addr("f@acme.test"), &rcpts(&["x@e.test"]), message)
            .await
            .unwrap();
        drop(s);
        peer.await.unwrap()[1].clone()
    };
    let eight_bit: &[u8] = "Subject: caf\u{e9}\r\n\r\nna\u{ef}ve\r\n".as_bytes();
    assert_eq!(
        mail_from(EHLO_PLAIN, eight_bit).await,
        "MAIL FROM:<f@acme.test> BODY=8BITMIME"
    );
    assert_eq!(
        mail_from(EHLO_PLAIN, b"Subject: plain\r\n\r\nascii\r\n").await,
        "MAIL FROM:<f@acme.test>",
        "a 7-bit message is not announced"
    );
    assert_eq!(
        mail_from(EHLO_PIPELINING, eight_bit).await,
        "MAIL FROM:<f@acme.test>",
        "a relay without 8BITMIME is not told of it"
    );
}
