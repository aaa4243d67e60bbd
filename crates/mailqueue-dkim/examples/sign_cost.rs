//! The CPU one DKIM signature costs mailqueue, per algorithm, on one core:
//! the signer the workers use, over a 2 KiB message as the delivery
//! benchmark builds it; and the floor of its body hash (SHA-256 of the
//! body). `bench/signing.sh` sets these beside `openssl speed`.
//!
//! usage: sign_cost [SECONDS per measurement, default 3]
//! prints: rsa_us=… rsa_header_bytes=… ed25519_us=… ed25519_header_bytes=…
//! body_hash_us=… (microseconds per message; the bytes of the
//! `DKIM-Signature` header each algorithm adds to it)

use mailqueue_core::domains::{DkimAlgorithm, DkimKey, DkimKeys, DomainName, VerificationStatus};
use mailqueue_dkim::{KeySealer, MailAuthKeys};
use std::time::{Duration, Instant};

fn message() -> Vec<u8> {
    let filler = "Thank you for your order. Your invoice is attached below. ";
    let mut body = String::new();
    while body.len() < 1700 {
        body.push_str(filler);
        if body.len() % 76 < filler.len() {
            body.push_str("\r\n");
        }
    }
    format!(
        "From: Acme Billing <billing@acme.test>\r\nTo: customer@example.com\r\n\
         Subject: Your invoice for November\r\nMessage-ID: <01a2@acme.test>\r\n\
         Date: Mon, 07 Dec 2026 19:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\
         X-Tag: invoice\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// Microseconds per call of `f`, over about `budget`.
fn per_call(budget: Duration, mut f: impl FnMut()) -> f64 {
    for _ in 0..20 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..10 {
            f();
        }
        n += 10;
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let budget = Duration::from_secs(seconds);
    let keys = MailAuthKeys::new(KeySealer::new(None));
    let domain = DomainName::parse("acme.test").expect("a domain");
    let message = message();
    let mut out = Vec::new();
    for (name, algorithm) in [
        ("rsa", DkimAlgorithm::Rsa2048),
        ("ed25519", DkimAlgorithm::Ed25519),
    ] {
        let new = keys.generate(algorithm).expect("a key");
        let key = DkimKey {
            status: VerificationStatus::Verified,
            ..DkimKey::new("mq1", algorithm, new, true, chrono::Utc::now())
        };
        let signer = keys.signer(&domain, &key).expect("a signer");
        let us = per_call(budget, || {
            std::hint::black_box(signer.signature_header(&message).expect("signed"));
        });
        out.push(format!("{name}_us={us:.2}"));
        let header = signer.signature_header(&message).expect("signed");
        out.push(format!("{name}_header_bytes={}", header.len()));
    }
    let at = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a body")
        + 4;
    let body = &message[at..];
    let us = per_call(budget, || {
        std::hint::black_box(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body));
    });
    out.push(format!("body_hash_us={us:.2}"));
    println!("{}", out.join(" "));
}
