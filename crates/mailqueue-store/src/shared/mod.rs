//! What the two stores share: the statements that differ between
//! PostgreSQL and SQLite only in how they write a time, an id or a
//! function (`statements.rs`, over the [`Dialect`]), and the decoding of
//! rows whose columns differ only in those encodings (`rows.rs`). Each
//! store binds the parameters in its own encoding and runs the statement;
//! the batch insert, the claim and the outcome writes stay in the stores,
//! where their dialects truly differ (`UNNEST` and `FOR UPDATE SKIP LOCKED`
//! against multi-row `VALUES`). Status names in SQL come from the core's
//! [`EmailStatus`](mailqueue_core::EmailStatus), never from literals.

pub mod account_events;
pub mod domains;
pub mod email_store;
pub mod event_rows;
pub mod executor;
pub mod interrupted;
pub mod keys;
pub mod leases;
pub mod reports;
pub mod retention;
pub mod retention_store;
pub mod rows;
pub mod statements;
pub mod suppressions;
pub mod webhook_store;
pub mod webhooks;

use chrono::{DateTime, Utc};
use mailqueue_core::events::EventType;
use mailqueue_core::suppression::SuppressionOrigin;
use mailqueue_core::webhooks::{DeliveryStatus, WebhookStatus};
use mailqueue_core::{EmailAddress, EmailId, EmailStatus};
use std::sync::LazyLock;

/// The statuses a claim, a reschedule or a cancel applies to, as an SQL list.
pub static PENDING: LazyLock<String> = LazyLock::new(|| sql_list(&EmailStatus::PENDING));

/// `'queued', 'scheduled'`: status names are fixed identifiers, safe inline.
pub fn sql_list(statuses: &[EmailStatus]) -> String {
    statuses
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One status as an SQL literal.
pub fn sql_status(status: EmailStatus) -> String {
    sql_list(&[status])
}

/// Fills `{queued}`, `{sending}`, … (every status by name) and `{pending}`
/// with the SQL literals of the core's statuses, and the other names the
/// statements compare with: `{webhook_enabled}`, `{delivery_pending}`,
/// `{origin_bounce}` and `{event_sent}`. A store's own statements name
/// these through this, never as literals.
pub fn with_names(template: &str) -> String {
    let names = [
        ("{webhook_enabled}", WebhookStatus::Enabled.as_str()),
        ("{delivery_pending}", DeliveryStatus::Pending.as_str()),
        ("{origin_bounce}", SuppressionOrigin::Bounce.as_str()),
        ("{event_sent}", EventType::Sent.as_str()),
    ];
    let named = names.iter().fold(
        template.replace("{pending}", &PENDING),
        |sql, (name, value)| sql.replace(name, &format!("'{value}'")),
    );
    EmailStatus::ALL.iter().fold(named, |sql, status| {
        sql.replace(&format!("{{{}}}", status.as_str()), &sql_status(*status))
    })
}

/// The fence of an outcome, as an SQL condition on the email row `e` and
/// the outcome row `u` (whose `claim` and new `status` it reads): the
/// outcome applies while its claim still holds the email, and a delivery
/// applies to an email that does not show one yet (its lease was lost, but
/// the message went out).
pub fn outcome_applies(e: &str, u: &str) -> String {
    with_names(&format!(
        "(({e}.status = {{sending}} AND {e}.claims = {u}.claim) \
         OR ({u}.status = {{sent}} AND {e}.status <> {{sent}}))"
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    /// The larger of two values.
    pub fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Postgres => format!("GREATEST({a}, {b})"),
            Dialect::Sqlite => format!("max({a}, {b})"),
        }
    }

    /// A time parameter where its type cannot be inferred (a `RETURNING`
    /// column, say).
    pub fn time_param(self, n: usize) -> String {
        match self {
            Dialect::Postgres => format!("${n}::timestamptz"),
            Dialect::Sqlite => format!("${n}"),
        }
    }

    /// The column that orders events as they were written: PostgreSQL's
    /// identity column, SQLite's rowid.
    pub fn event_order(self) -> &'static str {
        match self {
            Dialect::Postgres => "seq",
            Dialect::Sqlite => "rowid",
        }
    }

    /// A JSON column as text.
    pub fn json_text(self, col: &str) -> String {
        match self {
            Dialect::Postgres => format!("{col}::text"),
            Dialect::Sqlite => col.to_string(),
        }
    }

    /// The email content as text.
    pub fn content(self) -> &'static str {
        match self {
            Dialect::Postgres => "c.content::text AS content",
            Dialect::Sqlite => "c.content",
        }
    }
}

/// A parameter, bound by each store in its own encoding (PostgreSQL: uuid
/// and timestamptz; SQLite: text and Unix milliseconds).
#[derive(Clone, Debug)]
pub enum Param {
    Id(EmailId),
    /// Any other id (a suppression's, …), encoded as an email id is.
    Uuid(uuid::Uuid),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    Text(String),
    OptText(Option<String>),
    OptUuid(Option<uuid::Uuid>),
    Bytes(Vec<u8>),
    Int(i64),
}

/// SQL with its parameters, in order (`$1`, `$2`, …).
#[derive(Clone, Debug)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Statement {
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// Appends a parameter; returns its placeholder (`$n`).
    pub fn param(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    pub fn with(mut self, p: Param) -> Self {
        self.params.push(p);
        self
    }
}

/// The suppression keys of `addresses`, each with the address it came from.
pub fn suppression_keys(addresses: &[EmailAddress]) -> Vec<(String, EmailAddress)> {
    addresses
        .iter()
        .map(|a| (mailqueue_core::suppression::suppression_key(a), a.clone()))
        .collect()
}

/// The hot and retention statements both stores' plan checks explain,
/// over email `id` at `now`.
#[cfg(test)]
pub fn planned_statements(
    d: Dialect,
    id: EmailId,
    now: DateTime<Utc>,
) -> Vec<(&'static str, Statement)> {
    let month = now - chrono::Duration::days(30);
    let week = now - chrono::Duration::days(7);
    vec![
        ("pending emails", statements::pending_emails(None, 1000)),
        (
            "pending emails after",
            statements::pending_emails(Some(id), 1000),
        ),
        ("count unfinished", statements::count_unfinished()),
        ("oldest due", statements::oldest_due(now)),
        ("renew leases", statements::renew_leases("w1", now, now)),
        ("get email", statements::get_email(d, id)),
        ("list attempts", statements::list_attempts(id)),
        ("list events", statements::list_events(d, id)),
        ("status of", statements::status_of(id)),
        ("cancel", statements::cancel(d, id, now)),
        ("reschedule", statements::reschedule(d, id, now, now)),
        ("retry", statements::retry_failed(id, now)),
        (
            "purge finished emails",
            retention::purge_finished_emails(d, month, 500),
        ),
        (
            "mark contents purged",
            retention::mark_contents_purged(d, week, 500, now),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_statuses_by_the_core() {
        assert_eq!(
            with_names("status IN ({pending}) OR status = {sending}"),
            "status IN ('queued', 'scheduled') OR status = 'sending'"
        );
        assert_eq!(
            with_names("w.status = {webhook_enabled} AND ev.type = {event_sent}"),
            "w.status = 'enabled' AND ev.type = 'email.sent'"
        );
    }
}
