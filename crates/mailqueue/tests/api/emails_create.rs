use crate::helpers::*;
use mailqueue_testkit::StoreKind;
use serde_json::json;
use std::time::Duration;

async fn accepts_an_email_and_commits_it_before_answering(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let r = app.post_email(&minimal_email()).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "queued");
    let id: mailqueue_core::EmailId = body["id"].as_str().unwrap().parse().unwrap();
    // The 202 means committed: the row is readable straight from the store.
    let stored = app
        .store
        .get_email(id)
        .await
        .unwrap()
        .expect("committed before 202");
    assert_eq!(stored.email.subject, "Hello");
}

#[tokio::test]
async fn accepts_an_email_and_commits_it_before_answering_sqlite() {
    accepts_an_email_and_commits_it_before_answering(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn accepts_an_email_and_commits_it_before_answering_postgres() {
    accepts_an_email_and_commits_it_before_answering(StoreKind::Postgres).await;
}

#[tokio::test]
async fn a_future_scheduled_at_answers_scheduled() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let mut e = minimal_email();
    e["scheduled_at"] = json!("in 2 hours");
    let r = app.post_email(&e).await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "scheduled");
    let email = app.email(body["id"].as_str().unwrap()).await;
    assert_eq!(email["last_event"], "scheduled");
    assert!(email["scheduled_at"].is_string());
}

#[tokio::test]
async fn without_a_relay_emails_land_in_the_outbox() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let id = app.send(&minimal_email()).await;
    let email = app
        .wait_for_status(&id, "sent", Duration::from_secs(10))
        .await;
    let path = app.data_dir.path().join("outbox").join(format!("{id}.eml"));
    let eml = std::fs::read_to_string(&path).expect("the outbox holds the message");
    assert!(eml.contains("Subject: Hello"));
    assert!(email["last_smtp_reply"]
        .as_str()
        .unwrap()
        .starts_with("250 written to"));
}

#[tokio::test]
async fn a_large_attachment_within_the_limit_is_accepted() {
    let app = spawn_app(StoreKind::Sqlite).await;
    use base64::Engine;
    let bytes = vec![7u8; 3 * 1024 * 1024];
    let mut e = minimal_email();
    e["attachments"] = json!([{"filename": "big.bin", "content": base64::engine::general_purpose::STANDARD.encode(&bytes)}]);
    let id = app.send(&e).await;
    let email = app.email(&id).await;
    assert_eq!(email["attachments"][0]["size"], 3 * 1024 * 1024);
    assert_eq!(
        email["attachments"][0]["content_type"],
        "application/octet-stream"
    );
}
