use crate::helpers::*;
use mailqueue_testkit::StoreKind;
use serde_json::{json, Value};

fn batch(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                let mut e = minimal_email();
                e["subject"] = json!(format!("item {i}"));
                e
            })
            .collect(),
    )
}

async fn post_batch(app: &TestApp, body: &Value, mode: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = mode
        .map(|m| ("x-batch-validation", m))
        .into_iter()
        .collect();
    app.call(reqwest::Method::POST, "/v1/emails/batch", &headers, body)
        .await
}

async fn a_valid_batch_is_committed_together(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (status, body) = post_batch(&app, &batch(3), None).await;
    assert_eq!(status, 202, "{body}");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        body.get("errors").is_none(),
        "strict mode has no errors list"
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(app.email(id).await["subject"], format!("item {i}"));
    }
}

#[tokio::test]
async fn a_valid_batch_is_committed_together_sqlite() {
    a_valid_batch_is_committed_together(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_valid_batch_is_committed_together_postgres() {
    a_valid_batch_is_committed_together(StoreKind::Postgres).await;
}

#[tokio::test]
async fn strict_mode_rejects_the_whole_batch_naming_the_index() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let mut b = batch(4);
    b[2]["to"] = json!("broken");
    let (status, body) = post_batch(&app, &b, Some("strict")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["index"], 2);
    assert_eq!(body["field"], "to");
    assert!(
        body["message"].as_str().unwrap().contains("item 2"),
        "{body}"
    );
    assert_eq!(app.stored_count().await, 0);
}

#[tokio::test]
async fn permissive_mode_accepts_the_valid_items_and_lists_the_rest() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let mut b = batch(4);
    b[1]["subject"] = Value::Null;
    b[3]["unknown"] = json!(1);
    let (status, body) = post_batch(&app, &b, Some("permissive")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let indexes: Vec<u64> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![1, 3]);
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("subject"));
    assert_eq!(app.stored_count().await, 2);
}

#[tokio::test]
async fn batch_limits_and_bad_modes_are_refused() {
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_MAX_BATCH", "5")]).await;
    let (status, body) = post_batch(&app, &batch(6), None).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (422, Some("validation_error")),
        "{body}"
    );
    let (status, _) = post_batch(&app, &json!([]), None).await;
    assert_eq!(status, 422);
    let (status, _) = post_batch(&app, &minimal_email(), None).await;
    assert_eq!(status, 422, "an object is not a batch");
    let (status, body) = post_batch(&app, &batch(2), Some("lenient")).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("x-batch-validation"))
    );
    assert_eq!(app.stored_count().await, 0);
}
