//! Reading what mailbox providers and relays send back after a message was
//! accepted: delivery status notifications (RFC 3464, `multipart/report;
//! report-type=delivery-status`) and abuse reports (RFC 5965 ARF,
//! `report-type=feedback-report`). Anything else is unclassified. Nothing
//! here trusts the report: the caller matches it against what was sent.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use mailqueue_core::events::is_enhanced_status;

/// What a report says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    Delivery(DeliveryReport),
    Complaint(ComplaintReport),
    /// Not a report this server reads; why, in one line.
    Unclassified(String),
}

/// An RFC 3464 delivery status notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReport {
    pub recipients: Vec<RecipientStatus>,
    /// The `Message-ID` of the message it reports on, when it was returned.
    pub original_message_id: Option<String>,
}

/// One recipient's part of a DSN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientStatus {
    /// `Final-Recipient` (or, failing it, `Original-Recipient`), the
    /// address only.
    pub recipient: String,
    pub action: DsnAction,
    /// The enhanced status code, e.g. `5.1.1`.
    pub status: String,
    /// `Diagnostic-Code`, its type (`smtp;`) removed.
    pub diagnostic_code: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DsnAction {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
}

/// An RFC 5965 feedback report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComplaintReport {
    /// `Feedback-Type`, lower case: `abuse`, `fraud`, `not-spam`, …
    pub feedback_type: String,
    pub original_rcpt_to: Option<String>,
    pub original_mail_from: Option<String>,
    pub original_message_id: Option<String>,
    /// The returned message's `Return-Path`, where a VERP address shows.
    pub original_return_path: Option<String>,
    /// The returned message's `To` addresses, when no `Original-Rcpt-To`.
    pub original_to: Vec<String>,
}

/// Reads `message` as a report.
pub fn read_report(message: &[u8]) -> Report {
    let Some(parsed) = MessageParser::new().parse(message) else {
        return Report::Unclassified("the message cannot be parsed".into());
    };
    let report_type = parsed.content_type().and_then(|ct| {
        (ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report")))
        .then(|| ct.attribute("report-type").map(str::to_ascii_lowercase))
        .flatten()
    });
    match report_type.as_deref() {
        Some("delivery-status") => delivery_report(&parsed),
        Some("feedback-report") => complaint_report(&parsed),
        Some(other) => Report::Unclassified(format!("a report of type {other}")),
        None => Report::Unclassified("not a multipart/report".into()),
    }
}

/// The bytes of the first part whose type is `ctype/subtype`.
fn part_bytes<'a>(parsed: &'a Message<'a>, ctype: &str, subtype: &str) -> Option<&'a [u8]> {
    parsed.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        let matches = ct.ctype().eq_ignore_ascii_case(ctype)
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case(subtype));
        if !matches {
            return None;
        }
        match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => Some(b.as_ref()),
            PartType::Text(t) => Some(t.as_bytes()),
            _ => None,
        }
    })
}

/// The returned message's headers: those of a `message/rfc822` part, or a
/// `message/rfc822-headers` / `text/rfc822-headers` part, read from the
/// report's own bytes.
fn returned_headers(parsed: &Message<'_>) -> Vec<(String, String)> {
    for part in &parsed.parts {
        if let PartType::Message(_) = &part.body {
            let raw = parsed
                .raw_message()
                .get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)
                .unwrap_or_default();
            return field_groups(raw).into_iter().next().unwrap_or_default();
        }
    }
    for (ctype, subtype) in [("message", "rfc822-headers"), ("text", "rfc822-headers")] {
        if let Some(bytes) = part_bytes(parsed, ctype, subtype) {
            return field_groups(bytes).into_iter().next().unwrap_or_default();
        }
    }
    Vec::new()
}

/// The groups of `Name: value` fields a delivery-status or feedback-report
/// body is made of, separated by blank lines; names in lower case, values
/// unfolded.
fn field_groups(bytes: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8_lossy(bytes);
    let mut groups = Vec::new();
    let mut group: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `rfc822; user@example.com` → `user@example.com` (angle brackets off).
fn typed_address(value: &str) -> String {
    let address = value.split_once(';').map_or(value, |(_, a)| a);
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

/// The first `x.y.z` in a status field.
fn status_code(value: &str) -> Option<String> {
    value
        .split(|c: char| c.is_whitespace() || c == '(')
        .find(|word| is_enhanced_status(word))
        .map(str::to_string)
}

fn message_id_of(headers: &[(String, String)]) -> Option<String> {
    field(headers, "message-id").map(|v| v.trim().to_string())
}

fn delivery_report(parsed: &Message<'_>) -> Report {
    let Some(status) = part_bytes(parsed, "message", "delivery-status")
        .or_else(|| part_bytes(parsed, "message", "global-delivery-status"))
    else {
        return Report::Unclassified("a delivery report without a delivery-status part".into());
    };
    let mut recipients = Vec::new();
    // The first group holds the per-message fields; the others, one
    // recipient each.
    for group in field_groups(status).iter().skip(1) {
        let recipient = field(group, "final-recipient")
            .or_else(|| field(group, "original-recipient"))
            .map(typed_address);
        let action = match field(group, "action").map(|a| a.trim().to_ascii_lowercase()) {
            Some(a) if a == "failed" => Some(DsnAction::Failed),
            Some(a) if a == "delayed" => Some(DsnAction::Delayed),
            Some(a) if a == "delivered" => Some(DsnAction::Delivered),
            Some(a) if a == "relayed" => Some(DsnAction::Relayed),
            Some(a) if a == "expanded" => Some(DsnAction::Expanded),
            _ => None,
        };
        let status = field(group, "status").and_then(status_code);
        if let (Some(recipient), Some(action), Some(status)) = (recipient, action, status) {
            recipients.push(RecipientStatus {
                recipient,
                action,
                status,
                diagnostic_code: field(group, "diagnostic-code").map(|d| {
                    d.split_once(';')
                        .map_or(d, |(_, rest)| rest)
                        .trim()
                        .to_string()
                }),
            });
        }
    }
    if recipients.is_empty() {
        return Report::Unclassified("a delivery report that names no recipient".into());
    }
    Report::Delivery(DeliveryReport {
        recipients,
        original_message_id: message_id_of(&returned_headers(parsed)),
    })
}

fn complaint_report(parsed: &Message<'_>) -> Report {
    let Some(feedback) = part_bytes(parsed, "message", "feedback-report") else {
        return Report::Unclassified("a feedback report without a feedback-report part".into());
    };
    let fields = field_groups(feedback)
        .into_iter()
        .next()
        .unwrap_or_default();
    let Some(feedback_type) = field(&fields, "feedback-type") else {
        return Report::Unclassified("a feedback report without a Feedback-Type".into());
    };
    let original = returned_headers(parsed);
    let original_to = field(&original, "to")
        .map(|to| {
            to.split(',')
                .map(|a| {
                    let a = a.trim();
                    match (a.rfind('<'), a.rfind('>')) {
                        (Some(open), Some(close)) if open < close => a[open + 1..close].to_string(),
                        _ => a.to_string(),
                    }
                })
                .filter(|a| a.contains('@'))
                .collect()
        })
        .unwrap_or_default();
    Report::Complaint(ComplaintReport {
        feedback_type: feedback_type.trim().to_ascii_lowercase(),
        original_rcpt_to: field(&fields, "original-rcpt-to").map(typed_address),
        original_mail_from: field(&fields, "original-mail-from").map(typed_address),
        original_message_id: message_id_of(&original),
        original_return_path: field(&original, "return-path").map(typed_address),
        original_to,
    })
}

#[cfg(test)]
mod tests;
