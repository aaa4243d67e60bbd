use crate::helpers::*;
use mailqueue_testkit::StoreKind;
use serde_json::json;

#[tokio::test]
async fn get_answers_resends_email_object_and_ours() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let mut e = minimal_email();
    e["to"] = json!(["a@example.com", "B <b@example.com>"]);
    e["cc"] = json!("cc@example.com");
    e["html"] = json!("<b>hi</b>");
    e["tags"] = json!([{"name": "kind", "value": "welcome"}]);
    e["metadata"] = json!({"user_id": 7});
    e["headers"] = json!({"X-Ref": "abc"});
    let id = app.send(&e).await;
    let v = app.email(&id).await;
    assert_eq!(v["object"], "email");
    assert_eq!(v["id"], id);
    assert_eq!(v["from"], "Acme <noreply@acme.test>");
    assert_eq!(v["to"], json!(["a@example.com", "B <b@example.com>"]));
    assert_eq!(v["cc"], json!(["cc@example.com"]));
    assert_eq!(v["bcc"], json!(null));
    assert_eq!(v["html"], "<b>hi</b>");
    assert_eq!(v["text"], "Hi there");
    assert_eq!(v["tags"], json!([{"name": "kind", "value": "welcome"}]));
    assert_eq!(v["metadata"], json!({"user_id": 7}));
    assert_eq!(v["headers"], json!({"X-Ref": "abc"}));
    assert!(v["message_id"].as_str().unwrap().ends_with("@acme.test>"));
    assert!(["queued", "sending", "sent"].contains(&v["status"].as_str().unwrap()));
    for field in ["created_at", "updated_at", "last_event", "attempts"] {
        assert!(!v[field].is_null(), "{field}");
    }
    let (status, body) = app
        .get(&format!("/v1/emails/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!((status, body["name"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn list_pages_newest_first() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut e = minimal_email();
        e["subject"] = json!(format!("n{i}"));
        ids.push(app.send(&e).await);
    }
    let (_, page1) = app.get("/v1/emails?limit=2").await;
    assert_eq!(page1["object"], "list");
    assert_eq!(page1["has_more"], true);
    let got: Vec<_> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, vec![ids[4].clone(), ids[3].clone()]);
    assert!(
        page1["data"][0].get("html").is_none(),
        "listings leave the bodies out"
    );
    let (_, page2) = app
        .get(&format!("/v1/emails?limit=2&after={}", ids[3]))
        .await;
    let got: Vec<_> = page2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, vec![ids[2].clone(), ids[1].clone()]);
    let (_, last) = app
        .get(&format!("/v1/emails?limit=2&after={}", ids[1]))
        .await;
    assert_eq!(last["has_more"], false);
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
    let (_, back) = app
        .get(&format!("/v1/emails?limit=2&before={}", ids[1]))
        .await;
    let got: Vec<_> = back["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, vec![ids[3].clone(), ids[2].clone()]);
    assert_eq!(back["has_more"], true);
}

#[tokio::test]
async fn list_filters_by_status_and_refuses_bad_parameters() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let mut e = minimal_email();
    e["scheduled_at"] = json!("in 1 hour");
    let scheduled = app.send(&e).await;
    app.send(&minimal_email()).await;
    let (_, list) = app.get("/v1/emails?status=scheduled").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], scheduled);
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("status=lost", "status"),
        ("after=nope", "after"),
        ("page=2", "query"),
    ] {
        let (status, body) = app.get(&format!("/v1/emails?{query}")).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some(field)),
            "{query}: {body}"
        );
    }
    let id = uuid::Uuid::now_v7();
    let (status, _) = app.get(&format!("/v1/emails?after={id}&before={id}")).await;
    assert_eq!(status, 422);
}
