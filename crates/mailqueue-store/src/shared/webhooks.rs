//! Webhooks and their outbox, written once for both stores. The dialects
//! differ only in how a webhook's event list is kept (a `TEXT[]` against
//! a JSON array, both read and written here as JSON text) and in the
//! claim's row locks (`FOR UPDATE … SKIP LOCKED` on PostgreSQL; SQLite
//! has one writer).

use super::rows::{self, RowReader};
use super::{Dialect, Param, Statement};
use crate::content::decode_content;
use chrono::{DateTime, Utc};
use mailqueue_core::store::StoreError;
use mailqueue_core::webhooks::{
    health_changes, signing_secrets, AccountEvent, ClaimedDelivery, DeliveryClaim, DeliveryOutcome,
    DeliveryReport, DeliveryStatus, DisablePolicy, Endpoint, EventEmail, HealthChange, OutboxEvent,
    OutboxStats, PreviousSecret, SecretRotation, SigningSecret, StreakChange, Webhook,
    WebhookAttempt, WebhookChange, WebhookDelivery, WebhookEventType, WebhookPage, WebhookStatus,
};
use mailqueue_core::{EventId, WebhookId};

impl Dialect {
    /// The `events` column as a JSON array in text.
    fn events_out(self) -> &'static str {
        match self {
            Dialect::Postgres => "array_to_json(events)::text AS events",
            Dialect::Sqlite => "events",
        }
    }

    /// A JSON array parameter as the `events` column.
    fn events_in(self, placeholder: &str) -> String {
        match self {
            Dialect::Postgres => {
                format!("ARRAY(SELECT json_array_elements_text({placeholder}::json))")
            }
            Dialect::Sqlite => placeholder.to_string(),
        }
    }
}

fn events_json(events: &[WebhookEventType]) -> String {
    let names: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
    serde_json::Value::from(names).to_string()
}

/// The stored subscription, each name read back as its type.
fn stored_events(events: &str) -> Result<Vec<WebhookEventType>, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(format!("stored events `{events}`: {e}"));
    let names: Vec<String> = serde_json::from_str(events).map_err(|e| corrupt(e.to_string()))?;
    names.iter().map(|n| n.parse().map_err(corrupt)).collect()
}

fn webhook_columns(d: Dialect) -> String {
    format!(
        "id, endpoint, {}, status, signing_secret, previous_secrets, \
         created_at, failing_since, disabled_reason",
        d.events_out()
    )
}

pub fn insert_webhook(d: Dialect, w: &Webhook) -> Statement {
    let mut st = Statement::new("");
    let values = [
        st.param(Param::Uuid(w.id.0)),
        st.param(Param::Text(w.endpoint.as_str().into())),
        d.events_in(&st.param(Param::Text(events_json(&w.events)))),
        st.param(Param::Text(w.status.as_str().into())),
        st.param(Param::Text(w.signing_secret.expose().into())),
        st.param(Param::Time(w.created_at)),
    ];
    st.sql = format!(
        "INSERT INTO webhooks (id, endpoint, events, status, signing_secret, created_at) \
         VALUES ({})",
        values.join(", ")
    );
    st
}

pub fn get_webhook(d: Dialect, id: WebhookId) -> Statement {
    Statement::new(format!(
        "SELECT {} FROM webhooks WHERE id = $1",
        webhook_columns(d)
    ))
    .with(Param::Uuid(id.0))
}

/// Keyset conditions and order of a page over an id column, newest first;
/// towards newer items (`before`) oldest first.
fn page_of(st: &mut Statement, column: &str, page: &WebhookPage<uuid::Uuid>) -> String {
    let mut sql = String::new();
    if let Some(after) = page.after {
        sql += &format!(" AND {column} < {}", st.param(Param::Uuid(after)));
    }
    if let Some(before) = page.before {
        sql += &format!(" AND {column} > {}", st.param(Param::Uuid(before)));
    }
    let order = if page.before.is_some() { "ASC" } else { "DESC" };
    sql += &format!(
        " ORDER BY {column} {order} LIMIT {}",
        st.param(Param::Int(i64::from(page.limit)))
    );
    sql
}

pub fn list_webhooks(d: Dialect, page: &WebhookPage<WebhookId>) -> Statement {
    let mut st = Statement::new("");
    let page = WebhookPage {
        limit: page.limit,
        after: page.after.map(|i| i.0),
        before: page.before.map(|i| i.0),
    };
    let tail = page_of(&mut st, "id", &page);
    st.sql = format!(
        "SELECT {} FROM webhooks WHERE 1 = 1{tail}",
        webhook_columns(d)
    );
    st
}

/// `None` when the change names nothing.
pub fn update_webhook(d: Dialect, id: WebhookId, change: &WebhookChange) -> Option<Statement> {
    let mut st = Statement::new("");
    let mut sets = Vec::new();
    if let Some(endpoint) = &change.endpoint {
        sets.push(format!(
            "endpoint = {}",
            st.param(Param::Text(endpoint.as_str().into()))
        ));
    }
    if let Some(events) = &change.events {
        let p = st.param(Param::Text(events_json(events)));
        sets.push(format!("events = {}", d.events_in(&p)));
    }
    if let Some(status) = change.status {
        sets.push(format!(
            "status = {}",
            st.param(Param::Text(status.as_str().into()))
        ));
        sets.push("failing_since = NULL".into());
        sets.push("disabled_reason = NULL".into());
    }
    if sets.is_empty() {
        return None;
    }
    st.sql = format!(
        "UPDATE webhooks SET {} WHERE id = {}",
        sets.join(", "),
        st.param(Param::Uuid(id.0))
    );
    Some(st)
}

/// Applies a [`SecretRotation`] if the signing secret is still the one it
/// replaces (one row changed).
pub fn rotate_secret(id: WebhookId, rotation: &SecretRotation) -> Statement {
    Statement::new(
        "UPDATE webhooks SET signing_secret = $3, previous_secrets = $4 \
         WHERE id = $1 AND signing_secret = $2",
    )
    .with(Param::Uuid(id.0))
    .with(Param::Text(rotation.replaces.expose().into()))
    .with(Param::Text(rotation.signing_secret.expose().into()))
    .with(Param::Text(encode_previous_secrets(
        &rotation.previous_secrets,
    )))
}

/// The `previous_secrets` column: a JSON array of `{"secret", "until_ms"}`.
fn encode_previous_secrets(previous: &[PreviousSecret]) -> String {
    serde_json::Value::Array(
        previous
            .iter()
            .map(|p| serde_json::json!({"secret": p.secret.expose(), "until_ms": p.until.timestamp_millis()}))
            .collect(),
    )
    .to_string()
}

fn decode_previous_secrets(stored: Option<String>) -> Result<Vec<PreviousSecret>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Stored {
        secret: String,
        until_ms: i64,
    }
    let Some(stored) = stored else {
        return Ok(Vec::new());
    };
    let list: Vec<Stored> = serde_json::from_str(&stored)
        .map_err(|e| StoreError::Corrupt(format!("stored previous secrets: {e}")))?;
    list.into_iter()
        .map(|p| {
            Ok(PreviousSecret {
                secret: SigningSecret::parse(&p.secret)
                    .map_err(corrupt("a stored previous secret"))?,
                until: DateTime::from_timestamp_millis(p.until_ms).ok_or_else(|| {
                    StoreError::Corrupt(format!("a previous secret's end {}", p.until_ms))
                })?,
            })
        })
        .collect()
}

/// A webhook's outbox, deleted with it where no foreign key cascades
/// (PostgreSQL, see migration 0010); its attempts cascade.
pub fn delete_webhook_deliveries(id: WebhookId) -> Statement {
    Statement::new("DELETE FROM webhook_deliveries WHERE webhook_id = $1").with(Param::Uuid(id.0))
}

pub fn delete_webhook(id: WebhookId) -> Statement {
    Statement::new("DELETE FROM webhooks WHERE id = $1").with(Param::Uuid(id.0))
}

fn corrupt(what: &str) -> impl Fn(String) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

/// A row of [`webhook_columns`].
pub fn webhook(row: &impl RowReader) -> Result<Webhook, StoreError> {
    let events = row.text("events")?;
    let previous = decode_previous_secrets(row.opt_text("previous_secrets")?)?;
    Ok(Webhook {
        id: WebhookId(row.uuid("id")?),
        endpoint: Endpoint::parse(&row.text("endpoint")?).map_err(corrupt("a stored endpoint"))?,
        events: stored_events(&events)?,
        status: row
            .text("status")?
            .parse()
            .map_err(corrupt("a stored webhook status"))?,
        signing_secret: SigningSecret::parse(&row.text("signing_secret")?)
            .map_err(corrupt("a stored signing secret"))?,
        previous_secrets: previous,
        created_at: row.time("created_at")?,
        failing_since: row.opt_time("failing_since")?,
        disabled_reason: row.opt_text("disabled_reason")?,
    })
}

/// A delivery with its event, an email's or the account's (`WHERE`
/// conditions follow with `AND`).
fn delivery_select(d: Dialect) -> String {
    format!(
        "SELECT d.webhook_id, d.status, d.attempts, d.next_attempt_at, d.last_status_code, \
         d.last_error, d.created_at AS queued_at, ev.id, ev.email_id, ev.type, ev.created_at, \
         {} AS data, {ACCOUNT_EVENT_COLUMNS} \
         FROM webhook_deliveries AS d \
         LEFT JOIN email_events AS ev ON ev.id = d.event_id \
         LEFT JOIN account_events AS ae ON ae.id = d.event_id \
         WHERE (ev.id IS NOT NULL OR ae.id IS NOT NULL)",
        d.json_text("ev.data")
    )
}

/// An account event's columns, on alias `ae`, as [`account_event`] reads
/// them.
const ACCOUNT_EVENT_COLUMNS: &str = "ae.id AS account_event_id, ae.type AS account_event_type, \
     ae.created_at AS account_event_created_at, ae.payload AS account_event_payload";

pub fn list_deliveries(d: Dialect, id: WebhookId, page: &WebhookPage<EventId>) -> Statement {
    let mut st = Statement::new("");
    let condition = format!("d.webhook_id = {}", st.param(Param::Uuid(id.0)));
    let page = WebhookPage {
        limit: page.limit,
        after: page.after.map(|i| i.0),
        before: page.before.map(|i| i.0),
    };
    let tail = page_of(&mut st, "d.event_id", &page);
    st.sql = format!("{} AND {condition}{tail}", delivery_select(d));
    st
}

pub fn get_delivery(d: Dialect, id: WebhookId, event: EventId) -> Statement {
    Statement::new(format!(
        "{} AND d.webhook_id = $1 AND d.event_id = $2",
        delivery_select(d)
    ))
    .with(Param::Uuid(id.0))
    .with(Param::Uuid(event.0))
}

/// A row of [`delivery_select`].
pub fn delivery(row: &impl RowReader) -> Result<WebhookDelivery, StoreError> {
    Ok(WebhookDelivery {
        webhook_id: WebhookId(row.uuid("webhook_id")?),
        event: outbox_event(row, |_| Ok(()))?,
        status: row
            .text("status")?
            .parse()
            .map_err(corrupt("a stored delivery status"))?,
        attempts: row.int("attempts")? as u32,
        next_attempt_at: row.opt_time("next_attempt_at")?,
        last_status_code: row.opt_int("last_status_code")?.map(|c| c as u16),
        last_error: row.opt_text("last_error")?,
        created_at: row.time("queued_at")?,
    })
}

/// The delivery's latest try, as an attempt row, when no attempt row holds
/// it: a delivered delivery's (attempt rows keep only the tries that did
/// not deliver, see [`record_attempt`]).
fn delivered_try(d: &str) -> String {
    format!(
        "SELECT {d}.webhook_id, {d}.event_id, {d}.last_attempted_at, {d}.last_status_code, \
         {d}.last_duration_ms, {d}.last_error FROM webhook_deliveries AS {d} \
         WHERE {d}.webhook_id = $1 AND {d}.event_id = $2 AND {d}.status = '{}' \
         AND {d}.last_attempted_at IS NOT NULL",
        DeliveryStatus::Delivered.as_str()
    )
}

/// Every try of a delivery, oldest first: its attempt rows, and its
/// delivering try from the delivery row.
pub fn list_attempts(id: WebhookId, event: EventId) -> Statement {
    Statement::new(format!(
        "SELECT attempted_at, status_code, duration_ms, error FROM ( \
             SELECT a.attempted_at, a.status_code, a.duration_ms, a.error, 0 AS last, a.id \
             FROM webhook_attempts AS a WHERE a.webhook_id = $1 AND a.event_id = $2 \
             UNION ALL \
             SELECT t.last_attempted_at, t.last_status_code, t.last_duration_ms, t.last_error, \
                 1, 0 FROM ({}) AS t) AS tries \
         ORDER BY last, id",
        delivered_try("d")
    ))
    .with(Param::Uuid(id.0))
    .with(Param::Uuid(event.0))
}

/// Before a replay: the delivering try, kept as an attempt row, since the
/// replay leaves the delivery row to describe the next tries.
pub fn keep_delivered_try(id: WebhookId, event: EventId) -> Statement {
    Statement::new(format!(
        "INSERT INTO webhook_attempts (webhook_id, event_id, attempted_at, status_code, \
         duration_ms, error) {}",
        delivered_try("d")
    ))
    .with(Param::Uuid(id.0))
    .with(Param::Uuid(event.0))
}

pub fn attempt(row: &impl RowReader) -> Result<WebhookAttempt, StoreError> {
    Ok(WebhookAttempt {
        attempted_at: row.time("attempted_at")?,
        status_code: row.opt_int("status_code")?.map(|c| c as u16),
        duration_ms: row.int("duration_ms")? as u32,
        error: row.opt_text("error")?,
    })
}

pub fn replay(id: WebhookId, event: EventId, now: DateTime<Utc>) -> Statement {
    Statement::new(format!(
        "UPDATE webhook_deliveries SET status = '{}', attempts = 0, next_attempt_at = $3, \
         lease_holder = NULL, lease_expires_at = NULL WHERE webhook_id = $1 AND event_id = $2",
        DeliveryStatus::Pending.as_str()
    ))
    .with(Param::Uuid(id.0))
    .with(Param::Uuid(event.0))
    .with(Param::Time(now))
}

/// A claim leases due deliveries: per webhook, the oldest due ones up to
/// `per_webhook` minus those the claimer holds already (`held`, passed in
/// as a JSON object of counts by webhook id), oldest due first overall.
/// Each enabled webhook's candidates are read from
/// `webhook_deliveries_claim_idx`, so a claim costs what it takes, whatever
/// the outbox holds; no index covers the lease columns, so taking a lease
/// can be a heap-only update on PostgreSQL. The claim's terms, bound as
/// `$1`…`$6` of `sql`.
fn with_terms(sql: String, c: &DeliveryClaim) -> Statement {
    let held: serde_json::Map<String, serde_json::Value> = c
        .held
        .iter()
        .map(|(w, n)| (w.0.to_string(), (*n).into()))
        .collect();
    Statement::new(sql)
        .with(Param::Time(c.now))
        .with(Param::Text(c.holder.clone()))
        .with(Param::Time(c.lease_expires_at))
        .with(Param::Int(i64::from(c.per_webhook)))
        .with(Param::Int(i64::from(c.limit)))
        .with(Param::Text(serde_json::Value::Object(held).to_string()))
}

/// The conditions of a due delivery of webhook `w`, on alias `a`.
fn due(a: &str) -> String {
    format!(
        "{a}.webhook_id = w.id AND {a}.status = '{}' AND {a}.next_attempt_at <= $1 \
         AND ({a}.lease_expires_at IS NULL OR {a}.lease_expires_at <= $1) \
         ORDER BY {a}.next_attempt_at, {a}.event_id",
        DeliveryStatus::Pending.as_str()
    )
}

const LEASE: &str = "UPDATE webhook_deliveries SET lease_holder = $2, lease_expires_at = $3, \
                     attempts = webhook_deliveries.attempts + 1";

/// PostgreSQL: per enabled webhook, its free share of due deliveries
/// locked in one lateral subquery, then the rows updated by their tuple
/// ids. No step joins back by key, so no plan can walk the outbox's index
/// for each row, and the dead index entries that delivered rows leave
/// behind (until a vacuum) are crossed once per webhook, not once per row.
fn claim_postgres() -> String {
    format!(
        "WITH picked AS ( \
             SELECT d.tid, d.next_attempt_at FROM webhooks AS w \
             LEFT JOIN LATERAL (SELECT h.value::bigint AS n FROM jsonb_each_text($6::jsonb) AS h \
                 WHERE h.key = w.id::text) AS b ON true \
             CROSS JOIN LATERAL (SELECT c.ctid AS tid, c.next_attempt_at FROM webhook_deliveries AS c \
                 WHERE {} LIMIT GREATEST($4 - COALESCE(b.n, 0), 0) FOR UPDATE SKIP LOCKED) AS d \
             WHERE w.status = '{}' \
             ORDER BY d.next_attempt_at LIMIT $5) \
         {LEASE} FROM picked WHERE webhook_deliveries.ctid = picked.tid \
         RETURNING webhook_deliveries.webhook_id, webhook_deliveries.event_id, \
             webhook_deliveries.attempts",
        due("c"),
        WebhookStatus::Enabled.as_str()
    )
}

/// SQLite's claim (one writer, so nothing to lock): per webhook at most
/// `per_webhook` candidates as a rowid list (it has no lateral joins),
/// ranked after the deliveries the claimer holds, then updated by key.
/// Returns the claimed keys, for [`claimed_sqlite`].
pub fn claim_sqlite(c: &DeliveryClaim) -> Statement {
    let pending = DeliveryStatus::Pending.as_str();
    let sql = format!(
        "WITH ranked AS ( \
             SELECT d.webhook_id, d.event_id, d.next_attempt_at, \
                 ROW_NUMBER() OVER (PARTITION BY d.webhook_id \
                     ORDER BY d.next_attempt_at, d.event_id) + COALESCE(b.value, 0) AS slot \
             FROM webhooks AS w CROSS JOIN webhook_deliveries AS d ON d.rowid IN ( \
                 SELECT c.rowid FROM webhook_deliveries AS c WHERE {} LIMIT $4) \
             LEFT JOIN json_each($6) AS b ON b.key = w.id \
             WHERE w.status = '{}'), \
         picked AS ( \
             SELECT d.webhook_id, d.event_id FROM ranked AS r \
             CROSS JOIN webhook_deliveries AS d \
                 ON d.webhook_id = r.webhook_id AND d.event_id = r.event_id \
             WHERE r.slot <= $4 AND d.status = '{pending}' \
                 AND (d.lease_expires_at IS NULL OR d.lease_expires_at <= $1) \
             ORDER BY r.next_attempt_at LIMIT $5) \
         {LEASE} WHERE (webhook_id, event_id) IN (SELECT webhook_id, event_id FROM picked) \
         RETURNING webhook_deliveries.webhook_id, webhook_deliveries.event_id",
        due("c"),
        WebhookStatus::Enabled.as_str()
    );
    with_terms(sql, c)
}

/// PostgreSQL's claim in one statement: the leases taken (see
/// [`with_terms`]), then what a sender needs of each delivery leased, every
/// table looked up by key on its own (lateral subqueries kept apart by
/// `OFFSET 0`), so the plan cannot turn into scans of the events or the
/// emails when their statistics are stale. Rows as [`claimed_row`] reads.
pub fn claim_and_read(c: &DeliveryClaim) -> Statement {
    let sql = format!(
        "WITH d AS ({}) SELECT {} FROM d \
         CROSS JOIN LATERAL (SELECT * FROM webhooks AS w WHERE w.id = d.webhook_id OFFSET 0) AS w \
         LEFT JOIN LATERAL (SELECT * FROM email_events AS ev \
             WHERE ev.id = d.event_id OFFSET 0) AS ev ON true \
         LEFT JOIN LATERAL (SELECT * FROM emails AS e WHERE e.id = ev.email_id OFFSET 0) AS e ON true \
         LEFT JOIN LATERAL (SELECT * FROM email_contents AS c \
             WHERE c.email_id = ev.email_id OFFSET 0) AS c ON true \
         LEFT JOIN LATERAL (SELECT * FROM account_events AS ae \
             WHERE ev.id IS NULL AND ae.id = d.event_id OFFSET 0) AS ae ON true \
         WHERE {EVENT_FOUND}",
        claim_postgres(),
        claimed_columns(Dialect::Postgres)
    );
    with_terms(sql, c)
}

/// A claimed delivery whose event is still there: an email event with its
/// email, or an account event. (A delivery whose email retention took
/// meanwhile is left to its lease.)
const EVENT_FOUND: &str = "(c.email_id IS NOT NULL OR ae.id IS NOT NULL)";

/// What a sender needs of each claimed delivery `d`. A payload tells the
/// email's envelope, subject, tags and headers, never its body, so
/// PostgreSQL leaves the body out of the content it writes as text (the
/// text of a 2 KiB body cost more than the rest of a claim's row).
fn claimed_columns(d: Dialect) -> String {
    let content = match d {
        Dialect::Postgres => "(c.content - 'text' - 'html')::text AS content",
        Dialect::Sqlite => d.content(),
    };
    format!(
        "d.webhook_id, d.attempts, w.endpoint, w.signing_secret, w.previous_secrets, \
         ev.id, ev.email_id, ev.type, ev.created_at, {} AS data, \
         e.message_id, e.created_at AS email_created_at, e.priority, e.scheduled_at, {content}, \
         {ACCOUNT_EVENT_COLUMNS}",
        d.json_text("ev.data"),
    )
}

/// SQLite: what a sender needs of the deliveries `holder` just claimed
/// (by [`claim_sqlite`]), found by key.
pub fn claimed_sqlite(holder: &str, keys: &[(WebhookId, EventId)]) -> Statement {
    let mut st = Statement::new("");
    let holder = st.param(Param::Text(holder.into()));
    let pairs: Vec<String> = keys
        .iter()
        .map(|(w, e)| {
            let w = st.param(Param::Uuid(w.0));
            let e = st.param(Param::Uuid(e.0));
            format!("({w}, {e})")
        })
        .collect();
    st.sql = format!(
        "SELECT {} \
         FROM webhook_deliveries AS d \
         JOIN webhooks AS w ON w.id = d.webhook_id \
         LEFT JOIN email_events AS ev ON ev.id = d.event_id \
         LEFT JOIN emails AS e ON e.id = ev.email_id \
         LEFT JOIN email_contents AS c ON c.email_id = e.id \
         LEFT JOIN account_events AS ae ON ae.id = d.event_id \
         WHERE d.lease_holder = {holder} AND (d.webhook_id, d.event_id) IN (VALUES {}) \
             AND {EVENT_FOUND}",
        claimed_columns(Dialect::Sqlite),
        pairs.join(", ")
    );
    st
}

/// A row of [`claim_and_read`] or [`claimed_sqlite`], with the secrets
/// that sign at `now`.
pub fn claimed_row(
    row: &impl RowReader,
    now: DateTime<Utc>,
) -> Result<ClaimedDelivery, StoreError> {
    let current = SigningSecret::parse(&row.text("signing_secret")?)
        .map_err(corrupt("a stored signing secret"))?;
    let previous = decode_previous_secrets(row.opt_text("previous_secrets")?)?;
    let secrets = signing_secrets(&current, &previous, now);
    Ok(ClaimedDelivery {
        webhook_id: WebhookId(row.uuid("webhook_id")?),
        event: outbox_event(row, event_email)?,
        attempt: row.int("attempts")? as u32,
        endpoint: Endpoint::parse(&row.text("endpoint")?).map_err(corrupt("a stored endpoint"))?,
        secrets,
    })
}

/// The event of a delivery's row: an account event (stored with its
/// payload), or an email's event with what `email` reads of the email.
fn outbox_event<R: RowReader, E>(
    row: &R,
    email: impl FnOnce(&R) -> Result<E, StoreError>,
) -> Result<OutboxEvent<E>, StoreError> {
    Ok(match row.opt_text("account_event_payload")? {
        Some(payload) => OutboxEvent::Account(account_event(row, &payload)?),
        None => OutboxEvent::Email {
            event: rows::event(row)?,
            email: email(row)?,
        },
    })
}

/// What a claimed delivery's payload tells of its email.
fn event_email(row: &impl RowReader) -> Result<EventEmail, StoreError> {
    let (email, _) = decode_content(
        &row.text("content")?,
        rows::priority(row)?.rank(),
        row.opt_time("scheduled_at")?,
    )?;
    Ok(EventEmail::new(
        &email,
        &row.text("message_id")?,
        row.time("email_created_at")?,
    ))
}

fn account_event(row: &impl RowReader, payload: &str) -> Result<AccountEvent, StoreError> {
    Ok(AccountEvent {
        id: EventId(row.uuid("account_event_id")?),
        event_type: row
            .text("account_event_type")?
            .parse()
            .map_err(corrupt("an account event's type"))?,
        created_at: row.time("account_event_created_at")?,
        payload: serde_json::from_str(payload)
            .map_err(|e| corrupt("an account event's payload")(e.to_string()))?,
    })
}

fn opt_text(st: &mut Statement, v: &Option<String>) -> String {
    match v {
        Some(s) => st.param(Param::Text(s.clone())),
        None => "NULL".into(),
    }
}

fn opt_code(st: &mut Statement, v: Option<u16>) -> String {
    match v {
        Some(c) => st.param(Param::Int(i64::from(c))),
        None => "NULL".into(),
    }
}

/// Moves the delivery on, if `holder` still holds it at this attempt, and
/// leaves the attempt on the delivery row as its latest try.
pub fn record_delivery(holder: &str, r: &DeliveryReport) -> Statement {
    let mut st = Statement::new("");
    let (status, next) = match r.outcome {
        DeliveryOutcome::Delivered => (DeliveryStatus::Delivered, "NULL".to_string()),
        DeliveryOutcome::Failed => (DeliveryStatus::Failed, "NULL".to_string()),
        DeliveryOutcome::RetryAt(at) => (DeliveryStatus::Pending, st.param(Param::Time(at))),
    };
    let code = opt_code(&mut st, r.status_code);
    let error = opt_text(&mut st, &r.error);
    let at = st.param(Param::Time(r.attempted_at));
    let duration = st.param(Param::Int(i64::from(r.duration_ms)));
    st.sql = format!(
        "UPDATE webhook_deliveries SET status = '{}', next_attempt_at = {next}, \
         lease_holder = NULL, lease_expires_at = NULL, last_status_code = {code}, \
         last_error = {error}, last_attempted_at = {at}, last_duration_ms = {duration} \
         WHERE webhook_id = {} AND event_id = {} AND lease_holder = {} AND attempts = {}",
        status.as_str(),
        st.param(Param::Uuid(r.webhook_id.0)),
        st.param(Param::Uuid(r.event_id.0)),
        st.param(Param::Text(holder.into())),
        st.param(Param::Int(i64::from(r.attempt))),
    );
    st
}

/// Whether an attempt needs a row of its own: one that did not deliver, or
/// one whose report no longer moved its delivery (`moved`: the lease had
/// passed to another holder), since the delivery row describes only the
/// try that moved it.
pub fn attempt_row_needed(r: &DeliveryReport, moved: bool) -> bool {
    !moved || !matches!(r.outcome, DeliveryOutcome::Delivered)
}

/// The attempt's line in the history, while its delivery exists (written
/// when [`attempt_row_needed`]).
pub fn record_attempt(d: Dialect, r: &DeliveryReport) -> Statement {
    let mut st = Statement::new("");
    let webhook = st.param(Param::Uuid(r.webhook_id.0));
    let event = st.param(Param::Uuid(r.event_id.0));
    st.params.push(Param::Time(r.attempted_at));
    let at = d.time_param(st.params.len());
    let code = opt_code(&mut st, r.status_code);
    let duration = st.param(Param::Int(i64::from(r.duration_ms)));
    let error = opt_text(&mut st, &r.error);
    let (code, error) = match d {
        Dialect::Postgres => (format!("{code}::integer"), format!("{error}::text")),
        Dialect::Sqlite => (code, error),
    };
    let (webhook_cast, event_cast, duration_cast) = match d {
        Dialect::Postgres => (
            format!("{webhook}::uuid"),
            format!("{event}::uuid"),
            format!("{duration}::integer"),
        ),
        Dialect::Sqlite => (webhook.clone(), event.clone(), duration),
    };
    st.sql = format!(
        "INSERT INTO webhook_attempts (webhook_id, event_id, attempted_at, status_code, \
         duration_ms, error) \
         SELECT {webhook_cast}, {event_cast}, {at}, {code}, {duration_cast}, {error} \
         WHERE EXISTS (SELECT 1 FROM webhook_deliveries \
             WHERE webhook_id = {webhook} AND event_id = {event})"
    );
    st
}

/// Leaves the webhook's failing streak as a batch of reports ends it (see
/// [`health_changes`](mailqueue_core::webhooks::health_changes)).
pub fn record_streak(c: &HealthChange) -> Statement {
    let id = Param::Uuid(c.webhook_id.0);
    match c.streak {
        StreakChange::Ended => Statement::new(
            "UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
        )
        .with(id),
        StreakChange::Continued { first_failure } => Statement::new(
            "UPDATE webhooks SET failing_since = $2 WHERE id = $1 AND failing_since IS NULL",
        )
        .with(id)
        .with(Param::Time(first_failure)),
        StreakChange::Restarted { first_failure } => {
            Statement::new("UPDATE webhooks SET failing_since = $2 WHERE id = $1")
                .with(id)
                .with(Param::Time(first_failure))
        }
    }
}

/// The statements that leave each webhook's streak (and status) as
/// `reports` end them: its streak, then the disable check if it is failing.
pub fn record_health(reports: &[DeliveryReport], policy: &DisablePolicy) -> Vec<Statement> {
    let mut steps = Vec::new();
    for c in health_changes(reports) {
        steps.push(record_streak(&c));
        if let Some(at) = c.check_disable_at {
            steps.push(disable_if_failing(c.webhook_id, policy, at));
        }
    }
    steps
}

/// Disables the webhook if it has failed for the policy's whole period.
pub fn disable_if_failing(id: WebhookId, policy: &DisablePolicy, now: DateTime<Utc>) -> Statement {
    Statement::new(format!(
        "UPDATE webhooks SET status = '{}', disabled_reason = $2 \
         WHERE id = $1 AND status = '{}' AND failing_since <= $3",
        WebhookStatus::Disabled.as_str(),
        WebhookStatus::Enabled.as_str()
    ))
    .with(Param::Uuid(id.0))
    .with(Param::Text(policy.reason()))
    .with(Param::Time(policy.cutoff(now)))
}

/// Pending deliveries of existing webhooks (one written for a webhook
/// deleted meanwhile waits only for retention).
pub fn outbox_stats() -> Statement {
    Statement::new(format!(
        "SELECT COUNT(*) AS n, MIN(d.created_at) AS oldest FROM webhook_deliveries AS d \
         JOIN webhooks AS w ON w.id = d.webhook_id WHERE d.status = '{}'",
        DeliveryStatus::Pending.as_str()
    ))
}

pub fn outbox_row(row: &impl RowReader) -> Result<OutboxStats, StoreError> {
    Ok(OutboxStats {
        pending: row.int("n")? as u64,
        oldest_pending_at: row.opt_time("oldest")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: DeliveryOutcome) -> DeliveryReport {
        DeliveryReport {
            webhook_id: WebhookId(uuid::Uuid::nil()),
            event_id: EventId(uuid::Uuid::nil()),
            attempt: 1,
            attempted_at: DateTime::UNIX_EPOCH,
            duration_ms: 3,
            status_code: Some(200),
            error: None,
            outcome,
        }
    }

    #[test]
    fn only_a_delivering_try_that_moved_its_delivery_goes_without_a_row() {
        let later = DateTime::UNIX_EPOCH + chrono::Duration::seconds(5);
        assert!(!attempt_row_needed(
            &report(DeliveryOutcome::Delivered),
            true
        ));
        assert!(attempt_row_needed(
            &report(DeliveryOutcome::Delivered),
            false
        ));
        assert!(attempt_row_needed(&report(DeliveryOutcome::Failed), true));
        assert!(attempt_row_needed(
            &report(DeliveryOutcome::RetryAt(later)),
            true
        ));
    }
}
