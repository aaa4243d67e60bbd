//! The email object of `GET /v1/emails/{id}`: Resend's fields first, then
//! mailqueue's own (status, attempts, errors, timestamps).

use chrono::{DateTime, SecondsFormat, Utc};
use mailqueue_core::events::EmailEvent;
use mailqueue_core::store::{AttemptRecord, EmailRecord};
use mailqueue_core::{LastEvent, Mailbox};
use serde_json::{json, Value};

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

fn opt_timestamp(t: Option<DateTime<Utc>>) -> Value {
    t.map(timestamp).map(Value::String).unwrap_or(Value::Null)
}

/// Resend answers `null` rather than `[]` for absent address lists.
fn addresses_or_null(list: &[Mailbox]) -> Value {
    if list.is_empty() {
        Value::Null
    } else {
        json!(list.iter().map(ToString::to_string).collect::<Vec<_>>())
    }
}

/// The email's `last_event`: its latest event, or for an email accepted
/// before events were recorded, what its status says.
fn last_event(r: &EmailRecord) -> Value {
    match r.last_event {
        Some(t) => json!(t.last_event()),
        None => json!(LastEvent::of(r.status, r.attempts)),
    }
}

/// The full object; `with_bodies` is false in listings. Once retention
/// dropped an email's contents, `html` and `text` are `null` and
/// `content_purged_at` says since when (`null` while they are kept);
/// `attachments` still names the files, whose bytes are gone.
pub fn email_json(r: &EmailRecord, with_bodies: bool) -> Value {
    let e = &r.email;
    let mut v = json!({
        "object": "email",
        "id": r.id.to_string(),
        "message_id": r.message_id,
        "from": e.from.to_string(),
        "to": e.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "cc": addresses_or_null(&e.cc),
        "bcc": addresses_or_null(&e.bcc),
        "reply_to": addresses_or_null(&e.reply_to),
        "subject": e.subject,
        "created_at": timestamp(r.created_at),
        "scheduled_at": opt_timestamp(e.scheduled_at),
        "last_event": last_event(r),
        "tags": e.tags,
        "status": r.status,
        "priority": e.priority,
        "attempts": r.attempts,
        "last_error": r.last_error,
        "last_smtp_reply": r.last_smtp_reply,
        "next_attempt_at": opt_timestamp(r.next_attempt_at),
        "last_attempt_at": opt_timestamp(r.last_attempt_at),
        "sent_at": opt_timestamp(r.sent_at),
        "updated_at": timestamp(r.updated_at),
        "headers": e.headers.iter().map(|h| (h.name.clone(), Value::String(h.value.clone()))).collect::<serde_json::Map<_, _>>(),
        "attachments": r.attachments,
        "metadata": e.metadata,
        "content_purged_at": opt_timestamp(r.content_purged_at),
    });
    if with_bodies {
        v["html"] = json!(e.html);
        v["text"] = json!(e.text);
    }
    v
}

pub fn attempt_json(a: &AttemptRecord) -> Value {
    json!({
        "attempt": a.attempt,
        "started_at": timestamp(a.started_at),
        "finished_at": timestamp(a.finished_at),
        "outcome": a.outcome.as_str(),
        "smtp_code": a.smtp_code,
        "detail": a.detail,
    })
}

/// One event of an email's history: its type in Resend's naming, and the
/// details Resend's webhook payloads carry for it (`bounce`, `failed`,
/// `suppressed`, and `to` when it concerns only some recipients).
pub fn event_json(e: &EmailEvent) -> Value {
    let mut v = json!({
        "object": "email_event",
        "id": e.id.to_string(),
        "email_id": e.email_id.to_string(),
        "type": e.event_type.as_str(),
        "created_at": timestamp(e.created_at),
    });
    if let Ok(Value::Object(details)) = serde_json::to_value(&e.data) {
        for (k, d) in details {
            v[k] = d;
        }
    }
    v
}
