//! What the API accepts, the builder can build: any request that
//! `EmailRequest::into_new_email` takes (every field up to its limits, long
//! and non-ASCII display names, subjects, headers and filenames, many
//! attachments) becomes a message whose every line is at most 998 octets.
//! A request accepted with a 202 and then failed by the builder would be an
//! email that never goes out.

#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use mailqueue_core::request::{EmailRequest, RequestLimits};
use mailqueue_core::transport::OutgoingEmail;
use mailqueue_core::EmailId;
use mailqueue_smtp::build_message;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Text without control characters: ASCII, accented, CJK, emoji.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).unwrap(),
        proptest::string::string_regex(&format!("[a-zA-Z0-9 éüßçÆœ中文字😀,.\"'\\\\-]{{0,{max}}}"))
            .unwrap(),
        proptest::string::string_regex(&format!("\\PC{{0,{max}}}")).unwrap(),
        // One long word: nowhere to fold.
        (1..=max).prop_map(|n| "w".repeat(n)),
    ]
}

fn local_part() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex("[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,64}").unwrap(),
        (1..=64usize).prop_map(|n| "l".repeat(n)),
        proptest::string::string_regex("[a-z]{1,20}\\.[a-z]{1,20}").unwrap(),
    ]
}

fn domain() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex("[a-z0-9]{1,20}\\.(com|test|example)").unwrap(),
        (1..=63usize, 1..=3usize)
            .prop_map(|(n, labels)| vec!["d".repeat(n); labels].join(".") + ".com"),
        proptest::string::string_regex("[A-Z][a-z0-9-]{0,10}[a-z]\\.[A-Z]{2,6}").unwrap(),
    ]
}

fn address() -> impl Strategy<Value = String> {
    (local_part(), domain()).prop_map(|(l, d)| {
        let a = format!("{l}@{d}");
        // Keep within the 254-octet limit most of the time; the rest tests refusal.
        if a.len() > 254 {
            format!(
                "{}@{d}",
                &l[..l.len().min(254usize.saturating_sub(d.len() + 1).max(1))]
            )
        } else {
            a
        }
    })
}

/// A mailbox in one of the forms the API reads.
fn mailbox() -> impl Strategy<Value = String> {
    (address(), proptest::option::of(text(256)), 0..4u8).prop_map(|(a, name, form)| {
        match (name, form) {
            (None, 0) | (None, 1) => a,
            (None, _) => format!("<{a}>"),
            (Some(n), 2) => {
                let quoted = n.replace('\\', "\\\\").replace('"', "\\\"");
                format!("\"{quoted}\" <{a}>")
            }
            // Unquoted, a name may hold neither quotes nor angle brackets.
            (Some(n), _) => format!("{} <{a}>", n.replace(['"', '<', '>'], "")),
        }
    })
}

fn mailboxes(min: usize) -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        proptest::collection::vec(mailbox(), min..=3),
        proptest::collection::vec(mailbox(), min.max(40)..=50),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex("X-[A-Za-z0-9-]{1,20}").unwrap(),
        (1..=74usize).prop_map(|n| format!("X-{}", "n".repeat(n))),
        Just("List-Unsubscribe".to_string()),
    ]
}

/// Header values up to the limit of 998 bytes.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        text(240),
        proptest::string::string_regex("[ -~]{0,998}").unwrap(),
        (1..=998usize).prop_map(|n| "v".repeat(n)),
    ]
}

fn headers() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::vec((header_name(), header_value()), 0..6)
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| (k, json!(v))).collect())
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just("application/pdf".to_string()),
        Just("text/plain; charset=utf-8".to_string()),
        Just("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string()),
        proptest::string::string_regex(
            "[a-z]{1,20}/[a-z0-9.+-]{1,40}(; [a-z]{1,10}=[a-z0-9]{1,40}){0,3}"
        )
        .unwrap(),
        (1..=240usize).prop_map(|n| format!("text/plain; name={}", "x".repeat(n))),
    ])
}

fn attachment() -> impl Strategy<Value = Value> {
    (
        text(255),
        proptest::collection::vec(any::<u8>(), 0..3000),
        content_type(),
        proptest::option::of(proptest::string::string_regex("[!-=?-~]{1,128}").unwrap()),
    )
        .prop_map(|(filename, bytes, content_type, content_id)| {
            let mut a = json!({"filename": filename, "content": bytes});
            if let Some(ct) = content_type {
                a["content_type"] = json!(ct);
            }
            if let Some(cid) = content_id {
                a["content_id"] = json!(cid);
            }
            a
        })
}

fn body() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        text(3000),
        // Long lines, bare line endings, dots where the data could end.
        (1..5000usize).prop_map(|n| format!(".\n{}\r.\r\n..\n", "z".repeat(n))),
    ])
}

fn request() -> impl Strategy<Value = Value> {
    (
        (
            mailbox(),
            mailboxes(1),
            mailboxes(0),
            mailboxes(0),
            mailboxes(0),
        ),
        (text(2000), body(), body()),
        (headers(), proptest::collection::vec(attachment(), 0..8)),
    )
        .prop_map(
            |((from, to, cc, bcc, reply_to), (subject, text, html), (headers, attachments))| {
                let mut v = json!({
                    "from": from, "to": to, "cc": cc, "bcc": bcc, "reply_to": reply_to,
                    "subject": subject, "headers": headers, "attachments": attachments,
                    "tags": [{"name": "category", "value": "welcome"}],
                    "metadata": {"user": 7},
                });
                match (text, html) {
                    (None, None) => v["text"] = json!(""),
                    (t, h) => {
                        if let Some(t) = t {
                            v["text"] = json!(t);
                        }
                        if let Some(h) = h {
                            v["html"] = json!(h);
                        }
                    }
                }
                v
            },
        )
}

/// Builds the request as the service would send it, if the API accepts it;
/// whether it did.
fn check(v: &Value) -> Result<bool, TestCaseError> {
    let now = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
    let Ok(request) = serde_json::from_value::<EmailRequest>(v.clone()) else {
        return Ok(false);
    };
    let email = match request.into_new_email(now, &RequestLimits::default()) {
        Ok(email) => email,
        Err(e) => {
            if std::env::var_os("SHOW_REFUSALS").is_some() {
                eprintln!("refused: {}", e.message);
            }
            return Ok(false);
        }
    };
    let id = EmailId::generate(now);
    let message_id = format!("<{id}@{}>", email.from.address.domain());
    let built = build_message(&OutgoingEmail {
        id,
        message_id: &message_id,
        date: now,
        email: &email,
        return_path: None,
        signer: None,
        require_tls: false,
    });
    let built = built.map_err(|e| TestCaseError::fail(format!("accepted but unbuildable: {e}")))?;
    for line in built.bytes.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        prop_assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
    Ok(true)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_accepted_request_builds_with_lines_of_at_most_998_octets(v in request()) {
        // Requests the API refuses are not the point: too many of them
        // fails the test (proptest's limit on rejected cases).
        prop_assume!(check(&v)?);
    }
}

/// Every field at once at its limit, with the forms that broke the builder
/// before: 50 long bare addresses in `to`, 50 long display names in `cc`,
/// 50 `reply_to` addresses, 255-character non-ASCII filenames.
#[test]
fn a_request_at_every_limit_builds() {
    let long = |i: usize| format!("{}{i:02}@{}.example.com", "a".repeat(30), "b".repeat(40));
    let named = |i: usize| {
        format!(
            "\"{} {i}\" <{}>",
            "Ünïcødé Nàmé ".repeat(18).trim(),
            long(i)
        )
    };
    let v = json!({
        "from": named(0),
        "to": (0..50).map(long).collect::<Vec<_>>(),
        "cc": (0..50).map(named).collect::<Vec<_>>(),
        "bcc": (0..50).map(long).collect::<Vec<_>>(),
        "reply_to": (0..50).map(long).collect::<Vec<_>>(),
        "subject": "Grüße ".repeat(333),
        "text": "x".repeat(5000),
        "html": "<p>".to_string() + &"é".repeat(5000),
        "headers": {"X-Long": "v".repeat(998), "X-Spaced": "a b ".repeat(249)},
        "attachments": (0..20).map(|i| json!({
            "filename": format!("{i:02}{}", "文".repeat(253)),
            "content": "aGVsbG8=",
            "content_type": format!("text/plain; name={}", "n".repeat(230)),
            "content_id": format!("{i}{}", "c".repeat(120)),
        })).collect::<Vec<_>>(),
    });
    assert!(check(&v).unwrap(), "the request is accepted");
}
