use crate::helpers::*;
use chrono::Utc;
use mailqueue_core::store::{IdempotencyScope, IdempotencyWindow};
use mailqueue_testkit::StoreKind;
use serde_json::{json, Value};

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
        .begin_idempotent_request(&scope, &hash, &window, mailqueue_core::IdempotencyFence::generate(now))
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
