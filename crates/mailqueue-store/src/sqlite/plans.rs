//! Plan checks, as for PostgreSQL (`postgres/plans.rs`): every hot and
//! retention statement is planned on a database holding a long history,
//! never analysed, and must not scan `emails`, its contents, attempts or
//! events (`EXPLAIN QUERY PLAN` says `SEARCH`, never `SCAN`, for them).

use super::emails::{claim_query, outcome_history, outcome_update};
use super::{bound, SqliteSettings, SqliteStore};
use crate::outcome::OutcomeRows;
use crate::shared::{retention, statements, Dialect, Statement};
use chrono::{Duration, Utc};
use mailqueue_core::store::{AttemptOutcome, AttemptResult, Claim, ListQuery};
use mailqueue_core::{EmailId, EmailStatus, SmtpReply};
use mailqueue_scratch::TempDir;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

const EXPLAIN: &str = "EXPLAIN QUERY PLAN ";
/// The tables (and the aliases the statements give them) that must never
/// be scanned.
const WATCHED: [&str; 8] = [
    "emails",
    "e",
    "email_contents",
    "c",
    "email_attempts",
    "email_events",
    "ev",
    "a",
];

async fn store_with_history() -> (TempDir, SqliteStore) {
    let dir = TempDir::new("plans");
    let store = SqliteStore::open(&SqliteSettings {
        path: dir.path().join("mailqueue.db"),
        readers: 1,
    })
    .await
    .expect("open SQLite");
    let id = "printf('00000000-0000-7000-8000-%012d', n)";
    let history = format!(
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 100000) \
         INSERT INTO emails (id, status, message_id, created_at, updated_at, attempts, sent_at) \
           SELECT {id}, CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'sent' END, '<' || n || '@h>', \
                  n * 10, n * 10, 1, n * 10 FROM g; \
         WITH RECURSIVE g(n) AS (SELECT 100001 UNION ALL SELECT n + 1 FROM g WHERE n < 100500) \
         INSERT INTO emails (id, status, message_id, created_at, updated_at, next_attempt_at, attempts) \
           SELECT {id}, CASE WHEN n % 10 = 0 THEN 'scheduled' ELSE 'queued' END, '<' || n || '@h>', \
                  n * 10, n * 10, n * 10, 0 FROM g; \
         WITH RECURSIVE g(n) AS (SELECT 100501 UNION ALL SELECT n + 1 FROM g WHERE n < 100550) \
         INSERT INTO emails (id, status, message_id, created_at, updated_at, attempts, lease_holder, lease_expires_at) \
           SELECT {id}, 'sending', '<' || n || '@h>', n * 10, n * 10, 1, 'w' || (n % 4), n * 10 FROM g; \
         INSERT INTO email_contents (email_id, content) \
           SELECT id, '{{\"from\": \"a@acme.test\", \"to\": [\"b@example.com\"], \"subject\": \"s\"}}' FROM emails; \
         INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, detail) \
           SELECT id, 1, updated_at, updated_at, 'sent', '250 ok' FROM emails WHERE status IN ('sent', 'failed'); \
         INSERT INTO email_events (id, email_id, type, created_at, data) \
           SELECT lower(hex(randomblob(16))), id, 'email.delivered', updated_at, '{{}}' FROM emails;"
    );
    {
        let mut w = store.writer.acquire().await.expect("the writer");
        let done = sqlx::raw_sql(&history).execute(&mut *w).await;
        w.settle(done.map_err(|e| crate::errors::store_error("history", e)))
            .expect("insert the history");
    }
    (dir, store)
}

async fn ids_of(store: &SqliteStore, status: EmailStatus, n: i64) -> Vec<EmailId> {
    sqlx::query("SELECT id FROM emails WHERE status = $1 LIMIT $2")
        .bind(status.as_str())
        .bind(n)
        .fetch_all(&store.readers)
        .await
        .expect("pick emails")
        .iter()
        .map(|r| EmailId(r.get::<String, _>("id").parse().expect("a UUID")))
        .collect()
}

fn assert_searched(name: &str, rows: &[SqliteRow]) {
    let details: Vec<String> = rows.iter().map(|r| r.get("detail")).collect();
    let scans: Vec<&String> = details
        .iter()
        .filter(|d| {
            WATCHED.iter().any(|t| {
                let scan = format!("SCAN {t}");
                **d == scan || d.starts_with(&format!("{scan} "))
            })
        })
        .collect();
    assert!(scans.is_empty(), "{name} scans: {details:#?}");
}

async fn explain_built(store: &SqliteStore, name: &str, mut qb: QueryBuilder<'static, Sqlite>) {
    let mut w = store.writer.acquire().await.expect("the writer");
    let rows = qb.build().fetch_all(&mut *w).await;
    let rows = w
        .settle(rows.map_err(|e| crate::errors::store_error(name, e)))
        .unwrap_or_else(|e| panic!("explaining {name}: {e}"));
    assert_searched(name, &rows);
}

async fn explain(store: &SqliteStore, name: &str, st: Statement) {
    let st = Statement {
        sql: format!("{EXPLAIN}{}", st.sql),
        params: st.params,
    };
    let rows = bound(&st)
        .fetch_all(&store.readers)
        .await
        .unwrap_or_else(|e| panic!("explaining {name}: {e}"));
    assert_searched(name, &rows);
}

#[tokio::test]
async fn hot_statements_search_indexes_on_a_store_with_history_and_no_statistics() {
    let (_dir, store) = store_with_history().await;
    let now = Utc::now();
    let queued = ids_of(&store, EmailStatus::Queued, 32).await;
    let sending = ids_of(&store, EmailStatus::Sending, 32).await;
    let claim = Claim {
        holder: "w1".into(),
        now,
        lease_expires_at: now + Duration::minutes(5),
    };
    explain_built(&store, "the claim", claim_query(EXPLAIN, &queued, &claim)).await;
    let outcomes: Vec<AttemptOutcome> = sending
        .iter()
        .map(|id| AttemptOutcome {
            email_id: *id,
            attempt: 1,
            claim: 1,
            started_at: now,
            finished_at: now,
            result: AttemptResult::Sent(SmtpReply {
                code: 250,
                message: "ok".into(),
            }),
            rejected: vec![],
            suppressed: vec![],
        })
        .collect();
    let rows = OutcomeRows::from(outcomes.as_slice());
    let chunk: Vec<usize> = (0..sending.len()).collect();
    explain_built(
        &store,
        "the outcomes",
        outcome_update(EXPLAIN, &chunk, &rows),
    )
    .await;
    explain_built(
        &store,
        "the attempts",
        outcome_history(EXPLAIN, &chunk, &rows),
    )
    .await;
    let id = queued[0];
    let d = Dialect::Sqlite;
    for (name, st) in crate::shared::planned_statements(d, id, now) {
        explain(&store, name, st).await;
    }
    // A page of the listing, and the oldest email, walk the primary key
    // in order and stop at their limit: full-index walks that cost no more
    // as emails add up.
    let page = statements::list_emails(
        d,
        &ListQuery {
            limit: 100,
            ..Default::default()
        },
    );
    explain_ordered_walk(&store, "list emails", page, "e").await;
    explain_ordered_walk(&store, "oldest email", retention::oldest_email(), "emails").await;
}

/// Asserts that a statement walks the primary key of `emails` (as `alias`)
/// in order, and searches everything else.
async fn explain_ordered_walk(store: &SqliteStore, name: &str, st: Statement, alias: &str) {
    let rows = bound(&Statement {
        sql: format!("{EXPLAIN}{}", st.sql),
        params: st.params,
    })
    .fetch_all(&store.readers)
    .await
    .unwrap_or_else(|e| panic!("explaining {name}: {e}"));
    let walk: String = rows[0].get("detail");
    assert_eq!(
        walk,
        format!("SCAN {alias} USING INDEX sqlite_autoindex_emails_1"),
        "{name}"
    );
    assert_searched(name, &rows[1..]);
}

#[tokio::test]
async fn a_scan_of_emails_is_caught() {
    let (_dir, store) = store_with_history().await;
    let st = Statement::new("SELECT count(*) FROM emails WHERE message_id = $1")
        .with(crate::shared::Param::Text("<1@h>".into()));
    let result =
        tokio::spawn(async move { explain(&store, "an unindexed lookup", st).await }).await;
    assert!(result.expect_err("the scan is reported").is_panic());
}

/// A webhook delivery claim searches the outbox by webhook through
/// `webhook_deliveries_claim_idx` (at most `per_webhook` rows each) and
/// finds the rest by rowid or key: it never walks the whole outbox.
#[tokio::test]
async fn a_webhook_claim_searches_the_outbox_by_webhook() {
    let (_dir, store) = store_with_history().await;
    let now = chrono::Utc::now();
    let claim = crate::shared::webhooks::claim_sqlite(&mailqueue_core::webhooks::DeliveryClaim {
        holder: "w1".into(),
        now,
        lease_expires_at: now + chrono::Duration::minutes(1),
        limit: 32,
        per_webhook: 16,
        held: vec![(mailqueue_core::WebhookId(uuid::Uuid::nil()), 3)],
    });
    let st = Statement {
        sql: format!("{EXPLAIN}{}", claim.sql),
        params: claim.params,
    };
    let rows = bound(&st)
        .fetch_all(&store.readers)
        .await
        .expect("explain the claim");
    let details: Vec<String> = rows.iter().map(|r| r.get("detail")).collect();
    let outbox_scans: Vec<&String> = details
        .iter()
        .filter(|d| {
            ["SCAN webhook_deliveries", "SCAN c", "SCAN d"]
                .iter()
                .any(|s| d.starts_with(s))
        })
        .collect();
    assert!(
        outbox_scans.is_empty(),
        "the claim scans the outbox: {details:#?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("webhook_deliveries_claim_idx")),
        "{details:#?}"
    );
}
