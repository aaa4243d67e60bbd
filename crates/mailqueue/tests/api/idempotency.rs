use crate::helpers::*;
use chrono::Utc;
use mailqueue_core::store::{IdempotencyScope, IdempotencyWindow};
use mailqueue_testkit::StoreKind;
use serde_json::{json, Value};
use std::time::Duration;

async fn post_with_key(app: &TestApp, path: &str, key: &str, body: &Value) -> (u16, Value) {
    app.call(
        reqwest::Method::POST,
        path,
        &[("Idempotency-Key", key)],
        body,
    )
    .await
}

async fn a_retried_request_returns_the_original_answer(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (s1, first) = post_with_key(&app, "/v1/emails", "order-42", &minimal_email()).await;
    let (s2, second) = post_with_key(&app, "/v1/emails", "order-42", &minimal_email()).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(first, second, "same id, same answer");
    assert_eq!(app.stored_count().await, 1);
    let mut other = minimal_email();
    other["subject"] = json!("different");
    let (s3, body) = post_with_key(&app, "/v1/emails", "order-42", &other).await;
    assert_eq!(
        (s3, body["name"].as_str()),
        (409, Some("invalid_idempotent_request")),
        "{body}"
    );
    assert_eq!(app.stored_count().await, 1);
}

#[tokio::test]
async fn a_retried_request_returns_the_original_answer_sqlite() {
    a_retried_request_returns_the_original_answer(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_retried_request_returns_the_original_answer_postgres() {
    a_retried_request_returns_the_original_answer(StoreKind::Postgres).await;
}

#[tokio::test]
async fn keys_are_scoped_per_api_key_and_per_endpoint() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let (_, first) = post_with_key(&app, "/v1/emails", "k", &minimal_email()).await;
    let other_key = create_api_key(app.store.as_ref(), "other").await;
    let r = app
        .client
        .post(app.url("/v1/emails"))
        .bearer_auth(&other_key)
        .header("Idempotency-Key", "k")
        .json(&minimal_email())
        .send()
        .await
        .unwrap();
    let second: Value = r.json().await.unwrap();
    assert_ne!(
        first["id"], second["id"],
        "another API key's key is another key"
    );
    let (status, _) = post_with_key(&app, "/v1/emails/batch", "k", &json!([minimal_email()])).await;
    assert_eq!(
        status, 409,
        "the same key on another endpoint is a different request"
    );
}

#[tokio::test]
async fn a_batch_is_idempotent_too() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let b = json!([minimal_email(), minimal_email()]);
    let (_, first) = post_with_key(&app, "/v1/emails/batch", "batch-1", &b).await;
    let (_, second) = post_with_key(&app, "/v1/emails/batch", "batch-1", &b).await;
    assert_eq!(first, second);
    assert_eq!(app.stored_count().await, 2);
}

#[tokio::test]
async fn a_key_in_progress_gets_409_concurrent() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let body = minimal_email();
    let bytes = serde_json::to_vec(&body).unwrap();
    let key = app
        .store
        .find_api_key(&mailqueue_core::api_key::TokenHash::of(&app.api_key))
        .await
        .unwrap()
        .unwrap();
    // A first request with this key has started and not finished.
    let now = Utc::now();
    let scope = IdempotencyScope {
        api_key_id: key.id,
        key: "slow".into(),
    };
    let hash = mailqueue_api::request_fingerprint(&[b"POST /v1/emails", &bytes]);
    let window = IdempotencyWindow {
        now,
        stale_before: now - chrono::Duration::seconds(60),
        expired_before: now - chrono::Duration::hours(24),
    };
    app.store
        .begin_idempotent_request(
            &scope,
            &hash,
            &window,
            mailqueue_core::IdempotencyFence::generate(now),
        )
        .await
        .unwrap();
    let r = app
        .client
        .post(app.url("/v1/emails"))
        .bearer_auth(&app.api_key)
        .header("Idempotency-Key", "slow")
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["name"],
        "concurrent_idempotent_requests"
    );
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn concurrent_duplicates_store_one_email() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let req = app
            .client
            .post(app.url("/v1/emails"))
            .bearer_auth(&app.api_key)
            .header("Idempotency-Key", "burst")
            .json(&minimal_email());
        requests.spawn(async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        });
    }
    let answers = requests.join_all().await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .filter(|(s, _)| *s == 202)
        .map(|(_, b)| b["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    for (status, body) in &answers {
        assert!(
            *status == 202 || (*status == 409 && body["name"] == "concurrent_idempotent_requests"),
            "{status} {body}"
        );
    }
    assert_eq!(app.stored_count().await, 1);
}

/// Requests of the app's database waiting for a lock.
async fn waiting_on_locks(admin: &mut sqlx::PgConnection, db: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
    )
    .bind(db)
    .fetch_one(admin)
    .await
    .unwrap()
}

/// A first request stalled in its commit (a table lock held for longer
/// than the in-progress timeout, as a failover or an I/O stall would) and
/// a retry with the same key after that timeout: one email is stored and
/// sent, and both answers name it (or the stalled one is told that another
/// request has the key); a later replay agrees.
#[tokio::test]
async fn a_retry_after_the_in_progress_timeout_cannot_store_a_second_email_postgres() {
    use mailqueue_core::ManualClock;
    use std::sync::Arc;
    let clock = ManualClock::new(Utc::now());
    let app = spawn_app_with_clock(StoreKind::Postgres, &[], Arc::new(clock.clone())).await;
    let db = app.db.as_ref().unwrap();
    let mut admin = db.connect().await;
    let mut locker = db.connect().await;
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE emails IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let post = || {
        let mut body = minimal_email();
        body["subject"] = json!("order 7");
        app.client
            .post(app.url("/v1/emails"))
            .bearer_auth(&app.api_key)
            .header("Idempotency-Key", "order-7")
            .json(&body)
            .send()
    };
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    };
    let first = tokio::spawn(post());
    mailqueue_testkit::wait_until(
        "the first request to stall",
        Duration::from_secs(10),
        || async { (waiting_on_locks(&mut db.connect().await, &db.name).await >= 1).then_some(()) },
    )
    .await;
    clock.advance(chrono::Duration::seconds(63));
    let second = tokio::spawn(post());
    mailqueue_testkit::wait_until("the retry to wait too", Duration::from_secs(10), || async {
        (waiting_on_locks(&mut db.connect().await, &db.name).await >= 2).then_some(())
    })
    .await;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let (s1, a1) = answer(first.await.unwrap().unwrap()).await;
    let (s2, a2) = answer(second.await.unwrap().unwrap()).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM emails")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(stored, 1, "{s1} {a1} / {s2} {a2}");
    let ids: Vec<&Value> = [(s1, &a1), (s2, &a2)]
        .iter()
        .filter(|(s, _)| *s == 202)
        .map(|(_, a)| &a["id"])
        .collect();
    assert!(!ids.is_empty(), "{s1} {a1} / {s2} {a2}");
    assert!(ids.iter().all(|id| *id == ids[0]), "{a1} / {a2}");
    for (status, body) in [(s1, &a1), (s2, &a2)] {
        assert!(
            status == 202 || (status == 409 && body["name"] == "concurrent_idempotent_requests"),
            "{status} {body}"
        );
    }
    let (s3, replay) = answer(post().await.unwrap()).await;
    assert_eq!((s3, &replay["id"]), (202, ids[0]));
}
