//! The statements both stores run alike, written once over the dialect.

use super::{sql_list, sql_status, with_names, Dialect, Param, Statement, PENDING};
use chrono::{DateTime, Utc};
use mailqueue_core::store::{HeldClaim, ListQuery};
use mailqueue_core::{EmailId, EmailStatus};

/// Records a request's answer on its idempotency key, only while the key
/// carries the request's fence and no answer yet ($1 API key, $2 key,
/// $3 status, $4 body, $5 fence). One row changed, or the key was taken over.
pub const RECORD_IDEMPOTENT_ANSWER: &str =
    "UPDATE idempotency_keys SET response_status = $3, response_body = $4 \
     WHERE api_key_id = $1 AND key = $2 AND fence = $5 AND response_status IS NULL";

/// The readiness probe's write (see `crate::health`), three statements
/// for one transaction: a row of `emails` inserted and deleted, and the
/// padded row of `write_probe` rewritten.
pub fn write_probe(d: Dialect, now: DateTime<Utc>) -> [Statement; 3] {
    const ID: &str = "ffffffff-ffff-7fff-bfff-ffffffffffff";
    let (created, pad) = match d {
        Dialect::Postgres => ("now()", "decode(repeat('00', $2::int), 'hex')"),
        Dialect::Sqlite => ("0", "zeroblob($2)"),
    };
    [
        Statement::new(with_names(&format!(
            "INSERT INTO emails (id, status, message_id, created_at, updated_at) \
             VALUES ('{ID}', {{cancelled}}, '<probe>', {created}, {created})"
        ))),
        Statement::new(format!("DELETE FROM emails WHERE id = '{ID}'")),
        Statement::new(format!(
            "INSERT INTO write_probe (id, written_at, pad) VALUES (1, $1, {pad}) \
             ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at, pad = excluded.pad"
        ))
        .with(Param::Time(now))
        .with(Param::Int(crate::health::PROBE_PAD_BYTES)),
    ]
}

/// The columns `rows::record` reads.
fn record_select(d: Dialect) -> String {
    format!(
        "SELECT e.id, e.status, e.priority, e.message_id, {}, e.created_at, e.updated_at, \
         e.scheduled_at, e.next_attempt_at, e.attempts, e.last_attempt_at, e.last_error, \
         e.last_smtp_reply, e.sent_at, e.lease_expires_at, e.content_purged_at, \
         (SELECT ev.type FROM email_events AS ev WHERE ev.email_id = e.id \
          ORDER BY ev.{} DESC LIMIT 1) AS last_event \
         FROM emails AS e JOIN email_contents AS c ON c.email_id = e.id",
        d.content(),
        d.event_order()
    )
}

pub fn get_email(d: Dialect, id: EmailId) -> Statement {
    Statement::new(format!("{} WHERE e.id = $1", record_select(d))).with(Param::Id(id))
}

/// Newest first; `before` pages towards newer emails (walk up, then flip).
pub fn list_emails(d: Dialect, query: &ListQuery) -> Statement {
    let mut st = Statement::new("");
    let mut sql = format!("{} WHERE 1 = 1", record_select(d));
    if let Some(status) = query.status {
        sql += &format!(
            " AND e.status = {}",
            st.param(Param::Text(status.as_str().into()))
        );
    }
    if let Some(after) = query.after {
        sql += &format!(" AND e.id < {}", st.param(Param::Id(after)));
    }
    if let Some(before) = query.before {
        sql += &format!(" AND e.id > {}", st.param(Param::Id(before)));
    }
    let order = if query.before.is_some() {
        "ASC"
    } else {
        "DESC"
    };
    sql += &format!(
        " ORDER BY e.id {order} LIMIT {}",
        st.param(Param::Int(i64::from(query.limit)))
    );
    st.sql = sql;
    st
}

/// An email's events, oldest first.
pub fn list_events(d: Dialect, id: EmailId) -> Statement {
    Statement::new(format!(
        "SELECT id, email_id, type, created_at, {} AS data FROM email_events \
         WHERE email_id = $1 ORDER BY {}",
        d.json_text("data"),
        d.event_order()
    ))
    .with(Param::Id(id))
}

/// Which of these addresses (in suppression-key form) are suppressed.
pub fn suppressed_among(keys: &[String]) -> Statement {
    let mut st = Statement::new("");
    let list: Vec<String> = keys
        .iter()
        .map(|k| st.param(Param::Text(k.clone())))
        .collect();
    st.sql = format!(
        "SELECT email, origin FROM suppressions WHERE email IN ({})",
        list.join(", ")
    );
    st
}

pub fn list_attempts(id: EmailId) -> Statement {
    Statement::new(
        "SELECT attempt, started_at, finished_at, outcome, smtp_code, detail FROM email_attempts \
         WHERE email_id = $1 ORDER BY id",
    )
    .with(Param::Id(id))
}

/// Why a conditional change touched no row: the email's status, if any.
pub fn status_of(id: EmailId) -> Statement {
    Statement::new("SELECT status FROM emails WHERE id = $1").with(Param::Id(id))
}

/// The single-row changes return `rows::due`'s columns, and the status
/// they left, when they apply.
const CHANGED: &str = "RETURNING id, next_attempt_at, priority, status";

pub fn reschedule(d: Dialect, id: EmailId, at: DateTime<Utc>, now: DateTime<Utc>) -> Statement {
    Statement::new(format!(
        "UPDATE emails SET scheduled_at = $2, next_attempt_at = {}, updated_at = $3, \
             status = CASE WHEN $2 > $3 AND attempts = 0 THEN {} ELSE {} END \
         WHERE id = $1 AND status IN ({}) {CHANGED}",
        d.greatest("$2", "$3"),
        sql_status(EmailStatus::Scheduled),
        sql_status(EmailStatus::Queued),
        *PENDING,
    ))
    .with(Param::Id(id))
    .with(Param::Time(at))
    .with(Param::Time(now))
}

pub fn cancel(d: Dialect, id: EmailId, now: DateTime<Utc>) -> Statement {
    Statement::new(format!(
        "UPDATE emails SET status = {}, next_attempt_at = NULL, updated_at = $2 \
         WHERE id = $1 AND status IN ({}) RETURNING id, {} AS next_attempt_at, priority, status",
        sql_status(EmailStatus::Cancelled),
        *PENDING,
        d.time_param(2),
    ))
    .with(Param::Id(id))
    .with(Param::Time(now))
}

pub fn retry_failed(id: EmailId, now: DateTime<Utc>) -> Statement {
    Statement::new(format!(
        "UPDATE emails SET status = {}, next_attempt_at = $2, first_attempt_at = NULL, updated_at = $2 \
         WHERE id = $1 AND status = {} AND content_purged_at IS NULL {CHANGED}",
        sql_status(EmailStatus::Queued),
        sql_status(EmailStatus::Failed),
    ))
    .with(Param::Id(id))
    .with(Param::Time(now))
}

/// Defers claims `holder` still holds under their numbers: each email goes
/// back to the queue, due at `due_at`, with nothing else changed (a claim
/// counts no attempt). Returns the emails moved.
pub fn defer_claims(
    holder: &str,
    claims: &[HeldClaim],
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Statement {
    let mut st = Statement::new("");
    let holder = st.param(Param::Text(holder.into()));
    let due = st.param(Param::Time(due_at));
    let now = st.param(Param::Time(now));
    let held: Vec<String> = claims
        .iter()
        .map(|c| {
            let id = st.param(Param::Id(c.id));
            let claim = st.param(Param::Int(i64::from(c.claim)));
            format!("({id}, {claim})")
        })
        .collect();
    st.sql = with_names(&format!(
        "UPDATE emails SET status = {{queued}}, lease_holder = NULL, lease_expires_at = NULL, \
             next_attempt_at = {due}, updated_at = {now} \
         WHERE status = {{sending}} AND lease_holder = {holder} \
           AND (id, claims) IN (VALUES {}) \
         RETURNING id, next_attempt_at, priority",
        held.join(", ")
    ));
    st
}

/// Leases of `holder` not yet expired at `now`, extended to `until`.
pub fn renew_leases(holder: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> Statement {
    Statement::new(format!(
        "UPDATE emails SET lease_expires_at = $3 \
         WHERE status = {} AND lease_holder = $1 AND lease_expires_at >= $2 RETURNING id",
        sql_status(EmailStatus::Sending)
    ))
    .with(Param::Text(holder.into()))
    .with(Param::Time(now))
    .with(Param::Time(until))
}

/// Pending emails in id order after `after`: one index range per status,
/// merged, so neither store scans the finished ones.
pub fn pending_emails(after: Option<EmailId>, limit: u32) -> Statement {
    let mut st = Statement::new("");
    let after = match after {
        Some(id) => format!("AND id > {}", st.param(Param::Id(id))),
        None => String::new(),
    };
    let limit = st.param(Param::Int(i64::from(limit)));
    let part = |status: EmailStatus| {
        format!(
            "SELECT * FROM (SELECT id, next_attempt_at, priority FROM emails \
             WHERE status = {} {after} ORDER BY id LIMIT {limit}) AS p",
            sql_status(status)
        )
    };
    let parts: Vec<String> = EmailStatus::PENDING.iter().map(|s| part(*s)).collect();
    st.sql = format!(
        "SELECT * FROM ({}) AS pending ORDER BY id LIMIT {limit}",
        parts.join(" UNION ALL ")
    );
    st
}

/// Emails waiting or in flight, by status.
pub fn count_unfinished() -> Statement {
    let mut unfinished = EmailStatus::PENDING.to_vec();
    unfinished.push(EmailStatus::Sending);
    Statement::new(format!(
        "SELECT status, count(*) AS n FROM emails WHERE status IN ({}) GROUP BY status",
        sql_list(&unfinished)
    ))
}

/// The due time of the oldest email that is due and not yet claimed.
pub fn oldest_due(now: DateTime<Utc>) -> Statement {
    Statement::new(format!(
        "SELECT min(next_attempt_at) AS oldest FROM emails WHERE status = {} AND next_attempt_at <= $1",
        sql_status(EmailStatus::Queued)
    ))
    .with(Param::Time(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_come_from_the_core() {
        let st = cancel(Dialect::Sqlite, EmailId::generate(Utc::now()), Utc::now());
        assert!(
            st.sql.contains("status IN ('queued', 'scheduled')"),
            "{}",
            st.sql
        );
        assert!(st.sql.contains("status = 'cancelled'"));
    }

    #[test]
    fn placeholders_follow_the_parameters() {
        let st = list_emails(
            Dialect::Postgres,
            &ListQuery {
                status: Some(EmailStatus::Sent),
                before: Some(EmailId::generate(Utc::now())),
                limit: 10,
                ..Default::default()
            },
        );
        assert_eq!(st.params.len(), 3);
        assert!(st.sql.contains("e.status = $1") && st.sql.contains("e.id > $2"));
        assert!(st.sql.ends_with("ORDER BY e.id ASC LIMIT $3"), "{}", st.sql);
    }
}
