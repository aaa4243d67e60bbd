//! Readiness follows writes: a store that still answers `SELECT 1` while
//! every write fails (corrupt pages, a read-only database) is not ready,
//! and it is ready again, without a restart, once writes succeed.

use crate::helpers::*;
use mailqueue_testkit::{wait_until, StoreKind};
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Connection, PgPool, SqliteConnection};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

async fn get_json(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `/readyz` answers 503 in Resend's error shape; `/healthz` stays 200
/// (the process lives; only its store cannot take writes).
async fn assert_not_ready_but_alive(app: &TestApp) {
    let (status, body) = get_json(app, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["statusCode"], 503, "{body}");
    assert_eq!(body["name"], "service_unavailable", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not ready") && m.contains("cannot take writes")),
        "{body}"
    );
    assert_eq!(get_json(app, "/healthz").await.0, 200);
}

/// Checkpoints the write-ahead log of the live database at `db` into the
/// main file, then overwrites the root page of the `emails` table and of
/// each of its indexes with garbage. Every insert into `emails` reads those
/// pages, and after the checkpoint no copy of them is left in the log, so
/// inserts fail with "database disk image is malformed"; `SELECT 1` reads
/// no page and still succeeds. (The checkpoint restarts the log, which
/// makes the app's connections drop their cached pages.)
async fn corrupt_the_emails_btrees(db: &Path) {
    let options = SqliteConnectOptions::new()
        .filename(db)
        .journal_mode(SqliteJournalMode::Wal);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint ran to the end");
    let (page_size,): (i64,) = sqlx::query_as("PRAGMA page_size")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let roots: Vec<(String, i64)> = sqlx::query_as(
        "SELECT name, rootpage FROM sqlite_master WHERE tbl_name = 'emails' AND rootpage > 0",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert!(roots.len() >= 3, "the table and its indexes: {roots:?}");
    let page_size = usize::try_from(page_size).unwrap();
    let mut file = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    for (_, root) in &roots {
        let offset = u64::try_from(root - 1).unwrap() * page_size as u64;
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(&vec![0xA5; page_size]).unwrap();
    }
    file.sync_all().unwrap();
}

#[tokio::test]
async fn corrupt_pages_make_the_embedded_store_unready_while_health_stays_ok() {
    let app = spawn_app(StoreKind::Sqlite).await;
    // Scheduled emails: delivery writes nothing while the pages are replaced.
    let mut scheduled = minimal_email();
    scheduled["scheduled_at"] = json!("in 1 hour");
    for _ in 0..3 {
        app.send(&scheduled).await;
    }
    assert_eq!(get_json(&app, "/readyz").await.0, 200);
    corrupt_the_emails_btrees(&app.data_dir.path().join("mailqueue.db")).await;

    let r = app.post_email(&minimal_email()).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_server_error(), "{status}: {body}");
    assert_eq!(body["statusCode"], status.as_u16(), "{body}");
    // The store's own words go to the log, not to the client.
    assert!(
        !body["message"].as_str().unwrap().contains("malformed"),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("log"), "{body}");
    assert_not_ready_but_alive(&app).await;
    // Still not ready on the next look: the probe write fails again.
    assert_eq!(get_json(&app, "/readyz").await.0, 503);
}

/// Admin connections to the test server, outside the app's database.
async fn admin() -> PgPool {
    let url = std::env::var("MAILQUEUE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    PgPool::connect(&url).await.unwrap()
}

/// Makes new sessions of database `name` read-only (or writable again),
/// then ends its open sessions and waits until they are gone, so every
/// connection the app uses from then on has the new default.
async fn set_read_only(admin: &PgPool, name: &str, read_only: bool) {
    let change = if read_only {
        format!("ALTER DATABASE {name} SET default_transaction_read_only = on")
    } else {
        format!("ALTER DATABASE {name} RESET default_transaction_read_only")
    };
    sqlx::query(&change).execute(admin).await.unwrap();
    let (ended,): (Vec<i32>,) = sqlx::query_as(
        "WITH sessions AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE datname = $1) \
         SELECT coalesce(array_agg(pid), '{}') FROM sessions WHERE pg_terminate_backend(pid)",
    )
    .bind(name)
    .fetch_one(admin)
    .await
    .unwrap();
    wait_until(
        "the ended sessions to be gone",
        Duration::from_secs(10),
        || async {
            let (left,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                    .bind(&ended)
                    .fetch_one(admin)
                    .await
                    .unwrap();
            (left == 0).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn postgres_readiness_follows_writes_failing_and_recovering_without_a_restart() {
    let app = spawn_app(StoreKind::Postgres).await;
    let name = app.db.as_ref().unwrap().name.clone();
    let admin = admin().await;
    app.send(&minimal_email()).await;

    set_read_only(&admin, &name, true).await;
    let r = app.post_email(&minimal_email()).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(status.is_server_error(), "{status}: {body}");
    assert!(
        !body["message"].as_str().unwrap().contains("read-only"),
        "the store's own words go to the log: {body}"
    );
    assert_not_ready_but_alive(&app).await;

    set_read_only(&admin, &name, false).await;
    wait_until("/readyz to answer 200", Duration::from_secs(10), || async {
        (get_json(&app, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    app.send(&minimal_email()).await;
    assert_eq!(app.stored_count().await, 2);
}
