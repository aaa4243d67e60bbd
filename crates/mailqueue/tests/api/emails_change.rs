use crate::helpers::*;
use mailqueue_testkit::StoreKind;
use serde_json::{json, Value};
use std::time::Duration;

async fn patch(app: &TestApp, id: &str, body: &Value) -> (u16, Value) {
    app.call(
        reqwest::Method::PATCH,
        &format!("/v1/emails/{id}"),
        &[],
        body,
    )
    .await
}

fn scheduled_in_an_hour() -> Value {
    let mut e = minimal_email();
    e["scheduled_at"] = json!("in 1 hour");
    e
}

#[tokio::test]
async fn reschedule_moves_a_scheduled_email() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let id = app.send(&scheduled_in_an_hour()).await;
    let at = "2099-01-01T00:00:00Z";
    let (status, body) = patch(&app, &id, &json!({"scheduled_at": at})).await;
    assert_eq!(
        (status, &body),
        (200, &json!({"object": "email", "id": id}))
    );
    let email = app.email(&id).await;
    assert_eq!(email["scheduled_at"], "2099-01-01T00:00:00.000+00:00");
    assert_eq!(email["status"], "scheduled");
    // The Python SDK repeats the id in the body; a different one is refused.
    let (status, _) = patch(&app, &id, &json!({"id": id, "scheduled_at": "in 2 hours"})).await;
    assert_eq!(status, 200);
    let (status, body) = patch(
        &app,
        &id,
        &json!({"id": "other", "scheduled_at": "in 2 hours"}),
    )
    .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("id")));
    let (status, body) = patch(&app, &id, &json!({"subject": "x"})).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (422, Some("validation_error"))
    );
    let (status, body) = patch(&app, &id, &json!({})).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (422, Some("missing_required_field"))
    );
}

#[tokio::test]
async fn rescheduling_to_now_sends_at_once() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let id = app.send(&scheduled_in_an_hour()).await;
    let (status, _) = patch(
        &app,
        &id,
        &json!({"scheduled_at": chrono::Utc::now().to_rfc3339()}),
    )
    .await;
    assert_eq!(status, 200);
    app.wait_for_status(&id, "sent", Duration::from_secs(10))
        .await;
}

#[tokio::test]
async fn cancel_stops_an_email_and_is_refused_once_sent() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let id = app.send(&scheduled_in_an_hour()).await;
    let (status, body) = {
        let r = app
            .client
            .post(app.url(&format!("/v1/emails/{id}/cancel")))
            .bearer_auth(&app.api_key)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(
        (status, &body),
        (200, &json!({"object": "email", "id": id}))
    );
    let email = app.email(&id).await;
    assert_eq!(
        (email["status"].as_str(), email["last_event"].as_str()),
        (Some("cancelled"), Some("canceled"))
    );
    let (status, body) = patch(&app, &id, &json!({"scheduled_at": "in 1 min"})).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (409, Some("invalid_email_state"))
    );

    let sent = app.send(&minimal_email()).await;
    app.wait_for_status(&sent, "sent", Duration::from_secs(10))
        .await;
    let r = app
        .client
        .post(app.url(&format!("/v1/emails/{sent}/cancel")))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = app
        .client
        .post(app.url(&format!("/v1/emails/{sent}/cancel")))
        .bearer_auth(&app.api_key)
        .json(&json!({"now": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "an unexpected field is not ignored");
    let r = app
        .client
        .post(app.url(&format!("/v1/emails/{}/cancel", uuid::Uuid::now_v7())))
        .bearer_auth(&app.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
