//! A load generator for the submission port (bench/submission.sh): SESSIONS
//! connections at once, each authenticating once (AUTH PLAIN in the clear,
//! so the server must allow it) and then sending its share of MESSAGES
//! messages of about SIZE bytes one after the other, each command waiting
//! for its reply, as Postfix's `smtp-source -d` does. Prints
//! `messages=N seconds=S rate=R`; exits non-zero on any reply but the
//! expected one.
//!
//! Usage: submission_load ADDRESS API_KEY SESSIONS MESSAGES SIZE

mod load_client;

use base64::Engine;
use load_client::{command, connect, run_all, send_message};

async fn session(
    address: String,
    key: String,
    messages: usize,
    body: Vec<u8>,
) -> std::io::Result<()> {
    let mut conn = connect(&address).await?;
    command(&mut conn, b"EHLO load.test\r\n", 250).await?;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("\0resend\0{key}"));
    command(&mut conn, format!("AUTH PLAIN {token}\r\n").as_bytes(), 235).await?;
    for _ in 0..messages {
        send_message(
            &mut conn,
            "billing@acme.test",
            "customer@example.com",
            &body,
        )
        .await?;
    }
    command(&mut conn, b"QUIT\r\n", 221).await
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, key, sessions, messages, size] = args.as_slice() else {
        eprintln!("usage: submission_load ADDRESS API_KEY SESSIONS MESSAGES SIZE");
        std::process::exit(2);
    };
    let number = |s: &str| -> usize {
        s.parse().unwrap_or_else(|_| {
            eprintln!("submission_load: `{s}` is not a number");
            std::process::exit(2)
        })
    };
    let (sessions, messages, size) = (number(sessions).max(1), number(messages), number(size));
    let mut body = b"From: Acme Billing <billing@acme.test>\r\nTo: customer@example.com\r\nSubject: Your invoice\r\n\r\n".to_vec();
    while body.len() < size {
        body.extend_from_slice(b"Thank you for your order. Your invoice is attached as usual.\r\n");
    }
    body.extend_from_slice(b".\r\n");
    let sessions: Vec<_> = (0..sessions)
        .map(|i| {
            let share = messages / sessions + usize::from(i < messages % sessions);
            session(address.clone(), key.clone(), share, body.clone())
        })
        .collect();
    run_all("messages", messages, sessions).await;
}
