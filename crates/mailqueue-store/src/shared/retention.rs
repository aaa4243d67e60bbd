//! The retention statements of both stores. Each works on one small batch
//! of the oldest finished emails, found through the partial indexes of
//! migration 0006 (SQLite uses them only when the statement repeats their
//! condition exactly, hence `FINISHED` spelled once here from the core).

use super::{sql_list, Dialect, Param, Statement};
use chrono::{DateTime, Utc};
use mailqueue_core::EmailStatus;
use std::sync::LazyLock;

/// `status IN ('sent', 'failed', 'cancelled')`, as the indexes say it.
static FINISHED: LazyLock<String> =
    LazyLock::new(|| format!("status IN ({})", sql_list(&EmailStatus::TERMINAL)));

fn skip_locked(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        Dialect::Sqlite => "",
    }
}

/// The ids of the oldest finished emails (with their contents still kept,
/// if `contents_kept`), finished before `$1`, at most `limit` (`$2`).
fn oldest_finished(d: Dialect, contents_kept: bool) -> String {
    let kept = if contents_kept {
        " AND content_purged_at IS NULL"
    } else {
        ""
    };
    format!(
        "SELECT id FROM emails WHERE {}{kept} AND updated_at < $1 \
         ORDER BY updated_at LIMIT $2{}",
        *FINISHED,
        skip_locked(d)
    )
}

/// Deletes a batch of finished emails and returns their ids; the foreign
/// keys delete what hangs off them, and on PostgreSQL the same statement
/// deletes their events' webhook outbox (which has no foreign keys there,
/// see migration 0010). The condition is repeated on the deleted rows, so
/// an email retried since it was picked stays.
pub fn purge_finished_emails(d: Dialect, before: DateTime<Utc>, limit: u32) -> Statement {
    let ids = match d {
        Dialect::Postgres => format!("id = ANY (ARRAY({}))", oldest_finished(d, false)),
        Dialect::Sqlite => format!("id IN ({})", oldest_finished(d, false)),
    };
    let delete = format!(
        "DELETE FROM emails WHERE {ids} AND {} AND updated_at < $1",
        *FINISHED
    );
    Statement::new(match d {
        Dialect::Postgres => format!(
            "WITH gone AS ({delete} RETURNING id), \
             outbox AS (DELETE FROM webhook_deliveries WHERE event_id = ANY (ARRAY( \
                 SELECT ev.id FROM email_events AS ev \
                 WHERE ev.email_id = ANY (ARRAY(SELECT id FROM gone))))) \
             SELECT id FROM gone"
        ),
        Dialect::Sqlite => format!("{delete} RETURNING id"),
    })
    .with(Param::Time(before))
    .with(Param::Int(i64::from(limit)))
}

/// Marks a batch of finished emails as purged of their contents at `$3`;
/// returns their ids (PostgreSQL does the rest in the same statement, see
/// the store).
pub fn mark_contents_purged(
    d: Dialect,
    before: DateTime<Utc>,
    limit: u32,
    now: DateTime<Utc>,
) -> Statement {
    let ids = match d {
        Dialect::Postgres => format!("id = ANY (ARRAY({}))", oldest_finished(d, true)),
        Dialect::Sqlite => format!("id IN ({})", oldest_finished(d, true)),
    };
    Statement::new(format!(
        "UPDATE emails SET content_purged_at = $3 WHERE {ids} RETURNING id"
    ))
    .with(Param::Time(before))
    .with(Param::Int(i64::from(limit)))
    .with(Param::Time(now))
}

/// The creation time of the oldest email kept (ids sort by creation time).
/// A batch of unclassified reports received before `before`, oldest first.
pub fn purge_unclassified_reports(before: DateTime<Utc>, limit: u32) -> Statement {
    Statement::new(
        "DELETE FROM unclassified_reports WHERE id IN \
         (SELECT id FROM unclassified_reports WHERE received_at < $1 ORDER BY received_at LIMIT $2)",
    )
    .with(Param::Time(before))
    .with(Param::Int(i64::from(limit)))
}

pub fn oldest_email() -> Statement {
    Statement::new("SELECT created_at FROM emails ORDER BY id LIMIT 1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_condition_is_the_partial_indexes_word_for_word() {
        let st = purge_finished_emails(Dialect::Sqlite, Utc::now(), 10);
        assert!(
            st.sql
                .contains("WHERE status IN ('sent', 'failed', 'cancelled') AND updated_at < $1"),
            "{}",
            st.sql
        );
        let pg = mark_contents_purged(Dialect::Postgres, Utc::now(), 10, Utc::now());
        assert!(pg.sql.contains("content_purged_at IS NULL"), "{}", pg.sql);
        assert!(pg.sql.contains("SKIP LOCKED"), "{}", pg.sql);
    }
}
