//! Plan checks: every statement of the hot path (claims, outcomes, lease
//! renewals and rescues, the reconciler's pages, the queue metrics, the
//! reads of one email) and of retention is planned on a store with a long
//! history and no statistics (never analysed, autovacuum off), and must
//! reach `emails`, `email_attempts` and `email_events` through an index.
//! A plan that scans one of them would make each send cost more as the
//! store grows, so it fails here.

use super::{bound, PgSettings, PgStore};
use crate::shared::{interrupted, retention, statements, Dialect, Statement};
use chrono::{DateTime, Duration, Utc};
use mailqueue_core::delivery::FailureClass;
use mailqueue_core::store::{AttemptOutcome, AttemptResult, Claim, ListQuery};
use mailqueue_core::{DeliveryError, EmailId, EmailStatus, SmtpReply};
use mailqueue_scratch::TestDatabase;
use serde_json::Value;
use sqlx::Row;

const EXPLAIN: &str = "EXPLAIN (FORMAT JSON) ";
const WATCHED: [&str; 3] = ["emails", "email_attempts", "email_events"];
const HISTORY: i64 = 100_000;

/// A migrated store whose tables hold `HISTORY` finished emails (with
/// contents, an attempt and two events each) and a small backlog, inserted
/// in bulk, never analysed.
async fn store_with_history() -> (TestDatabase, PgStore) {
    let db = TestDatabase::create().await;
    let store = PgStore::connect(&PgSettings {
        url: db.url.clone(),
        max_connections: 2,
        acquire_timeout: std::time::Duration::from_secs(5),
    })
    .await
    .expect("connect");
    store.migrate().await.expect("migrate");
    let history = format!(
        "ALTER TABLE emails SET (autovacuum_enabled = false); \
         ALTER TABLE email_attempts SET (autovacuum_enabled = false); \
         ALTER TABLE email_events SET (autovacuum_enabled = false); \
         ALTER TABLE email_contents SET (autovacuum_enabled = false); \
         INSERT INTO emails (id, status, message_id, created_at, updated_at, attempts, sent_at) \
           SELECT gen_random_uuid(), CASE WHEN g % 50 = 0 THEN 'failed' ELSE 'sent' END, '<' || g || '@h>', \
                  now() - interval '60 days' + g * interval '10 ms', \
                  now() - interval '60 days' + g * interval '10 ms', 1, now() - interval '60 days' \
           FROM generate_series(1, {HISTORY}) AS g; \
         INSERT INTO emails (id, status, message_id, created_at, updated_at, next_attempt_at, attempts) \
           SELECT gen_random_uuid(), CASE WHEN g % 10 = 0 THEN 'scheduled' ELSE 'queued' END, '<p' || g || '@h>', \
                  now(), now(), now() + (g % 10) * interval '1 minute', 0 \
           FROM generate_series(1, 500) AS g; \
         INSERT INTO emails (id, status, message_id, created_at, updated_at, attempts, lease_holder, lease_expires_at) \
           SELECT gen_random_uuid(), 'sending', '<s' || g || '@h>', now(), now(), 1, 'w' || (g % 4), \
                  now() + interval '5 minutes' \
           FROM generate_series(1, 50) AS g; \
         INSERT INTO email_contents (email_id, content) \
           SELECT id, '{{\"from\": \"a@acme.test\", \"to\": [\"b@example.com\"], \"subject\": \"s\", \"text\": \"t\"}}' \
           FROM emails; \
         INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, detail) \
           SELECT id, 1, updated_at, updated_at, 'sent', '250 ok' FROM emails WHERE status IN ('sent', 'failed'); \
         INSERT INTO email_events (id, email_id, type, created_at) \
           SELECT gen_random_uuid(), id, t, updated_at FROM emails, \
                  (VALUES ('email.sent'), ('email.delivered')) AS v(t);"
    );
    sqlx::raw_sql(&history)
        .execute(store.pool())
        .await
        .expect("insert the history");
    (db, store)
}

async fn ids_of(store: &PgStore, status: EmailStatus, n: i64) -> Vec<EmailId> {
    sqlx::query("SELECT id FROM emails WHERE status = $1 LIMIT $2")
        .bind(status.as_str())
        .bind(n)
        .fetch_all(store.pool())
        .await
        .expect("pick emails")
        .iter()
        .map(|r| EmailId(r.get("id")))
        .collect()
}

/// The relations a plan reads with a sequential scan.
fn seq_scans(plan: &Value, found: &mut Vec<String>) {
    match plan {
        Value::Object(node) => {
            if node.get("Node Type") == Some(&Value::String("Seq Scan".into())) {
                if let Some(Value::String(rel)) = node.get("Relation Name") {
                    found.push(rel.clone());
                }
            }
            node.values().for_each(|v| seq_scans(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| seq_scans(v, found)),
        _ => {}
    }
}

fn assert_indexed(name: &str, rows: &[sqlx::postgres::PgRow]) {
    let plan: Value = rows[0].get(0);
    let mut scans = Vec::new();
    seq_scans(&plan, &mut scans);
    scans.retain(|r| WATCHED.contains(&r.as_str()));
    assert!(scans.is_empty(), "{name} scans {scans:?}: {plan:#}");
}

async fn explain(store: &PgStore, name: &str, st: Statement) {
    let st = Statement {
        sql: format!("{EXPLAIN}{}", st.sql),
        params: st.params,
    };
    let rows = bound(&st)
        .fetch_all(store.pool())
        .await
        .unwrap_or_else(|e| panic!("explaining {name}: {e}"));
    assert_indexed(name, &rows);
}

fn outcomes(ids: &[EmailId], now: DateTime<Utc>) -> Vec<AttemptOutcome> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| AttemptOutcome {
            email_id: *id,
            attempt: 1,
            claim: 1,
            started_at: now,
            finished_at: now,
            result: match i % 3 {
                0 => AttemptResult::Sent(SmtpReply {
                    code: 250,
                    message: "ok".into(),
                }),
                1 => AttemptResult::RetryAt(
                    DeliveryError::transient(FailureClass::Timeout, None, "slow"),
                    now + Duration::minutes(1),
                ),
                _ => AttemptResult::Failed(DeliveryError::permanent(
                    FailureClass::Reply5xx,
                    Some(550),
                    "gone",
                )),
            },
            rejected: vec![],
            suppressed: vec![],
        })
        .collect()
}

#[tokio::test]
async fn hot_statements_use_indexes_on_a_store_with_history_and_no_statistics() {
    let (_db, store) = store_with_history().await;
    let now = Utc::now();
    let queued = ids_of(&store, EmailStatus::Queued, 32).await;
    let sending = ids_of(&store, EmailStatus::Sending, 32).await;
    let claim = Claim {
        holder: "w1".into(),
        now,
        lease_expires_at: now + Duration::minutes(5),
    };
    let plan = store.claim_rows(&queued, &claim, EXPLAIN).await.unwrap();
    assert_indexed("the claim", &plan);
    let plan = store
        .record_rows(&outcomes(&sending, now), EXPLAIN)
        .await
        .unwrap();
    assert_indexed("the outcomes", &plan);
    let rescue = interrupted::expired_leases(Dialect::Postgres, now);
    explain(&store, "the rescue", rescue).await;
    let release = interrupted::leases_of(Dialect::Postgres, "w1");
    explain(&store, "the release", release).await;
    let id = queued[0];
    let d = Dialect::Postgres;
    let walks = [
        (
            "list emails",
            statements::list_emails(
                d,
                &ListQuery {
                    limit: 100,
                    ..Default::default()
                },
            ),
        ),
        ("oldest email", retention::oldest_email()),
    ];
    for (name, st) in crate::shared::planned_statements(d, id, now)
        .into_iter()
        .chain(walks)
    {
        explain(&store, name, st).await;
    }
}

/// The check itself fails on a scan: a statement on an unindexed
/// condition over the same history is caught.
#[tokio::test]
async fn a_scan_of_emails_is_caught() {
    let (_db, store) = store_with_history().await;
    let st = Statement::new("SELECT count(*) FROM emails WHERE message_id = $1")
        .with(crate::shared::Param::Text("<1@h>".into()));
    let result =
        tokio::spawn(async move { explain(&store, "an unindexed lookup", st).await }).await;
    let panic = result.expect_err("the scan is reported");
    assert!(panic.is_panic());
}

/// Rows each scan of `relation` produced, over all its loops.
fn rows_read(plan: &Value, relation: &str) -> f64 {
    match plan {
        Value::Object(node) => {
            let own = if node.get("Relation Name").and_then(Value::as_str) == Some(relation) {
                // Rows returned and rows a filter threw away were all read.
                let rows = ["Actual Rows", "Rows Removed by Filter"]
                    .iter()
                    .filter_map(|k| node.get(*k).and_then(Value::as_f64))
                    .sum::<f64>();
                let loops = node
                    .get("Actual Loops")
                    .and_then(Value::as_f64)
                    .unwrap_or(1.0);
                rows * loops
            } else {
                0.0
            };
            own + node.values().map(|v| rows_read(v, relation)).sum::<f64>()
        }
        Value::Array(items) => items.iter().map(|v| rows_read(v, relation)).sum(),
        _ => 0.0,
    }
}

/// A webhook delivery claim on an outbox holding a long history of
/// delivered events (each once pending and leased, so the partial index
/// of pending deliveries holds their dead entries, as it does between
/// vacuums), a backlog of thousands of pending ones and a few under lease,
/// never analysed: it reads only the deliveries it may take (per webhook,
/// at most `per_webhook`), and the pages it touches do not follow the
/// outbox's length either.
#[tokio::test]
async fn a_webhook_claim_reads_only_what_it_may_take() {
    let (_db, store) = store_with_history().await;
    sqlx::raw_sql(
        "ALTER TABLE webhook_deliveries SET (autovacuum_enabled = false); \
         INSERT INTO webhooks (id, endpoint, events, status, signing_secret, created_at) \
           SELECT gen_random_uuid(), 'https://hooks.example.com/' || g, ARRAY['email.sent', 'email.delivered'], \
                  'enabled', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', now() \
           FROM generate_series(1, 3) AS g; \
         INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at, \
                                         lease_holder, lease_expires_at) \
           SELECT w.id, ev.id, 'pending', 0, ev.created_at, ev.created_at, \
                  CASE WHEN ev.seq % 20 = 0 THEN NULL ELSE 'old' END, \
                  CASE WHEN ev.seq % 20 = 0 THEN NULL ELSE ev.created_at + interval '1 minute' END \
           FROM email_events AS ev CROSS JOIN webhooks AS w; \
         UPDATE webhook_deliveries SET status = 'delivered', attempts = 1 WHERE lease_holder = 'old'; \
         UPDATE webhook_deliveries SET lease_holder = 'w2', lease_expires_at = now() + interval '1 minute' \
           WHERE ctid IN (SELECT ctid FROM webhook_deliveries WHERE status = 'pending' LIMIT 5);",
    )
    .execute(store.pool())
    .await
    .expect("insert the outbox's history");
    let (per_webhook, limit) = (16, 32);
    let plan = explain_claim(&store, limit, per_webhook).await;
    let read = rows_read(&plan, "webhook_deliveries");
    // Each candidate is read a few times (picked, locked, updated); what
    // matters is that the bound does not grow with the outbox's 30,000
    // pending rows.
    let bound = f64::from(3 * (3 * per_webhook + limit));
    assert!(
        read <= bound,
        "the claim read {read} outbox rows to take at most {limit} (bound {bound}): {plan:#}"
    );
    let pages = pages_touched(&plan);
    // Crossing the dead entries of delivered rows costs a few hundred
    // pages per webhook until a vacuum; joining back by key cost thousands.
    assert!(
        pages <= 2000.0,
        "the claim touched {pages} pages to take at most {limit}: {plan:#}"
    );
}

/// Runs `claim_and_read` for `holder` under `EXPLAIN (ANALYZE, BUFFERS)`,
/// in a transaction rolled back after, and returns the plan.
async fn explain_claim(store: &PgStore, limit: u32, per_webhook: u32) -> Value {
    let now = Utc::now();
    let claim = crate::shared::webhooks::claim_and_read(&mailqueue_core::webhooks::DeliveryClaim {
        holder: "w1".into(),
        now,
        lease_expires_at: now + Duration::minutes(1),
        limit,
        per_webhook,
        held: Vec::new(),
    });
    let st = Statement {
        sql: format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}", claim.sql),
        params: claim.params,
    };
    let mut tx = store.pool().begin().await.expect("begin");
    let rows = bound(&st).fetch_all(&mut *tx).await.expect("explain");
    tx.rollback().await.expect("rollback");
    rows[0].get(0)
}

/// Shared buffers the whole statement hit or read.
fn pages_touched(plan: &Value) -> f64 {
    let top = &plan[0]["Plan"];
    ["Shared Hit Blocks", "Shared Read Blocks"]
        .iter()
        .filter_map(|k| top.get(*k).and_then(Value::as_f64))
        .sum()
}

/// Reading what was just claimed, on the same unanalysed store with an
/// outbox of 200,000 pending deliveries: every table is reached by key,
/// never scanned, so the read costs the same whatever the events and the
/// outbox hold.
#[tokio::test]
async fn reading_claimed_webhook_deliveries_goes_by_key() {
    let (_db, store) = store_with_history().await;
    sqlx::raw_sql(
        "ALTER TABLE webhook_deliveries SET (autovacuum_enabled = false); \
         INSERT INTO webhooks (id, endpoint, events, status, signing_secret, created_at) \
           VALUES (gen_random_uuid(), 'https://hooks.example.com/', ARRAY['email.sent'], \
                   'enabled', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', now()); \
         INSERT INTO webhook_deliveries (webhook_id, event_id, status, attempts, next_attempt_at, created_at) \
           SELECT w.id, ev.id, 'pending', 0, ev.created_at, ev.created_at \
           FROM email_events AS ev CROSS JOIN webhooks AS w;",
    )
    .execute(store.pool())
    .await
    .expect("insert the outbox");
    let plan = explain_claim(&store, 64, 64).await;
    // The webhooks are read once more, by the claim itself; each claimed
    // delivery is read to be locked, then updated, never looked up again.
    for (table, most) in [
        ("webhook_deliveries", 3.0 * 64.0),
        ("email_events", 64.0),
        ("emails", 64.0),
        ("email_contents", 64.0),
        ("webhooks", 65.0),
    ] {
        let read = rows_read(&plan, table);
        assert!(
            read <= most,
            "reading 64 claimed deliveries read {read} rows of {table}: {plan:#}"
        );
    }
}
