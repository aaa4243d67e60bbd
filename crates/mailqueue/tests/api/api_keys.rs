//! API key permissions and `/v1/api-keys`, in Resend's dialect.

use crate::helpers::*;
use mailqueue_core::api_key::ApiKeyPermission;
use mailqueue_testkit::StoreKind;
use reqwest::Method;
use serde_json::{json, Value};

const RESTRICTED: &str = "This API key is restricted to only send emails.";

/// Creates a key through `POST /v1/api-keys`; returns `(id, token)`.
async fn create_over_http(app: &TestApp, body: Value) -> (String, String) {
    let (status, created) = app.call(Method::POST, "/v1/api-keys", &[], &body).await;
    assert_eq!(status, 201, "{created}");
    let fields: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["id", "token"], "Resend's shape: {created}");
    (
        created["id"].as_str().unwrap().to_string(),
        created["token"].as_str().unwrap().to_string(),
    )
}

async fn list_keys(app: &TestApp, query: &str) -> Value {
    let (status, listed) = app.get(&format!("/v1/api-keys{query}")).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["object"], "list");
    listed
}

fn names(listed: &Value) -> Vec<&str> {
    listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect()
}

/// Every route but sending, with a body each accepts from a full key.
fn full_access_routes(email: &str, key: &str) -> Vec<(Method, String, Value)> {
    vec![
        (Method::GET, format!("/v1/emails/{email}"), Value::Null),
        (Method::GET, "/v1/emails".into(), Value::Null),
        (
            Method::PATCH,
            format!("/v1/emails/{email}"),
            json!({"scheduled_at": "in 2 hours"}),
        ),
        (
            Method::GET,
            format!("/v1/emails/{email}/attempts"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/v1/emails/{email}/events"),
            Value::Null,
        ),
        (Method::POST, format!("/v1/emails/{email}/retry"), json!({})),
        (Method::GET, "/v1/suppressions".into(), Value::Null),
        (
            Method::POST,
            "/v1/suppressions".into(),
            json!({"email": "stop@example.com"}),
        ),
        (
            Method::POST,
            "/v1/scheduled-jobs/requeue-all".into(),
            json!({}),
        ),
        (Method::GET, "/v1/api-keys".into(), Value::Null),
        (Method::POST, "/v1/api-keys".into(), json!({"name": "made"})),
        (
            Method::POST,
            format!("/v1/emails/{email}/cancel"),
            json!({}),
        ),
        (Method::DELETE, format!("/v1/api-keys/{key}"), Value::Null),
    ]
}

async fn a_sending_key_may_only_send(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (sending_id, sending) = create_over_http(
        &app,
        json!({"name": "sender", "permission": "sending_access"}),
    )
    .await;
    let (status, body) = app
        .call_as(&sending, Method::POST, "/v1/emails", &[], &minimal_email())
        .await;
    assert_eq!(status, 202, "{body}");
    let mut later = minimal_email();
    later["scheduled_at"] = json!("in 1 hour");
    let (status, body) = app
        .call_as(&sending, Method::POST, "/v1/emails", &[], &later)
        .await;
    assert_eq!(status, 202, "{body}");
    let scheduled = body["id"].as_str().unwrap().to_string();
    let (status, body) = app
        .call_as(
            &sending,
            Method::POST,
            "/v1/emails/batch",
            &[],
            &json!([minimal_email(), minimal_email()]),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);

    for (method, path, body) in full_access_routes(&scheduled, &sending_id) {
        let (status, answer) = app
            .call_as(&sending, method.clone(), &path, &[], &body)
            .await;
        assert_eq!(
            answer,
            json!({"statusCode": 403, "name": "restricted_api_key", "message": RESTRICTED}),
            "{method} {path}"
        );
        assert_eq!(status, 403, "{method} {path}");
    }
    // Nothing the refused requests asked for happened.
    let email = app.email(&scheduled).await;
    assert_eq!(email["status"], "scheduled");
    assert_eq!(app.stored_count().await, 4);
    assert_eq!(names(&list_keys(&app, "").await), ["sender", "test"]);

    // The full key reaches every one of those routes.
    for (method, path, body) in full_access_routes(&scheduled, &sending_id) {
        let (status, answer) = app.call(method.clone(), &path, &[], &body).await;
        let expected = if path.ends_with("/retry") {
            // A scheduled email is not `failed`: the route's own answer.
            409
        } else if method == Method::POST
            && ["/v1/api-keys", "/v1/suppressions"].contains(&path.as_str())
        {
            201
        } else {
            200
        };
        assert_eq!(status, expected, "{method} {path}: {answer}");
    }
    assert_eq!(app.email(&scheduled).await["status"], "cancelled");
    let (status, answer) = app
        .call_as(&sending, Method::POST, "/v1/emails", &[], &minimal_email())
        .await;
    assert_eq!(
        (status, answer["name"].as_str()),
        (403, Some("invalid_api_key")),
        "the deleted sending key"
    );
}

#[tokio::test]
async fn a_sending_key_may_only_send_on_sqlite() {
    a_sending_key_may_only_send(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_sending_key_may_only_send_on_postgres() {
    a_sending_key_may_only_send(StoreKind::Postgres).await;
}

async fn keys_are_created_listed_and_deleted(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let (id, token) = create_over_http(&app, json!({"name": "  ci  "})).await;
    assert!(token.starts_with("mq_"), "{token}");

    let listed = list_keys(&app, "").await;
    assert_eq!(listed["has_more"], false);
    assert!(
        !listed.to_string().contains(&token),
        "tokens are shown once"
    );
    let ci = &listed["data"][0];
    let fields: Vec<&String> = ci.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        ["created_at", "id", "last_used_at", "name", "permission"],
        "{ci}"
    );
    assert_eq!(
        (ci["id"].as_str(), ci["name"].as_str()),
        (Some(id.as_str()), Some("ci"))
    );
    assert_eq!(ci["permission"], "full_access", "the default permission");
    assert_eq!(ci["last_used_at"], Value::Null);
    assert!(
        chrono::DateTime::parse_from_rfc3339(ci["created_at"].as_str().unwrap()).is_ok(),
        "{ci}"
    );
    assert_eq!(listed["data"][1]["name"], "test");

    // The new key works, and is now in this process's auth cache.
    let (status, _) = app
        .call_as(&token, Method::GET, "/v1/emails", &[], &Value::Null)
        .await;
    assert_eq!(status, 200);
    let (status, deleted) = app
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            &[],
            &Value::Null,
        )
        .await;
    assert_eq!(
        (status, deleted),
        (200, json!({"object": "api_key", "id": id, "deleted": true}))
    );
    // Refused at once, although the cache would trust it for 10 s.
    let (status, refused) = app
        .call_as(&token, Method::GET, "/v1/emails", &[], &Value::Null)
        .await;
    assert_eq!(
        (status, refused["name"].as_str()),
        (403, Some("invalid_api_key"))
    );
    assert_eq!(names(&list_keys(&app, "").await), ["test"]);
    let stored = app.store.list_api_keys().await.unwrap();
    assert!(stored
        .iter()
        .any(|k| k.name == "ci" && k.revoked_at.is_some()));

    let (status, again) = app
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{id}"),
            &[],
            &Value::Null,
        )
        .await;
    assert_eq!(
        (status, again),
        (
            404,
            json!({"statusCode": 404, "name": "not_found", "message": "API key not found"})
        ),
        "a deleted key is gone"
    );

    // A key may delete itself; its next request is refused.
    let own = app.api_key.clone();
    let listed = list_keys(&app, "").await;
    let own_id = listed["data"][0]["id"].as_str().unwrap();
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{own_id}"),
            &[],
            &Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .call_as(&own, Method::GET, "/v1/api-keys", &[], &Value::Null)
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn keys_are_created_listed_and_deleted_on_sqlite() {
    keys_are_created_listed_and_deleted(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn keys_are_created_listed_and_deleted_on_postgres() {
    keys_are_created_listed_and_deleted(StoreKind::Postgres).await;
}

/// Revoked by another process (here: straight in the store, as the CLI
/// does), a key stops working once this process's cache entry expires.
#[tokio::test]
async fn a_key_revoked_elsewhere_stops_within_the_cache_time() {
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_AUTH_CACHE_SECONDS", "1")]).await;
    let token = create_api_key_with(app.store.as_ref(), "cli", ApiKeyPermission::FullAccess).await;
    let use_key = || async {
        app.call_as(&token, Method::GET, "/v1/api-keys", &[], &Value::Null)
            .await
            .0
    };
    assert_eq!(use_key().await, 200);
    app.store
        .revoke_api_key(
            &mailqueue_core::store::ApiKeySelector::Name("cli".into()),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    mailqueue_testkit::wait_until(
        "the revoked key to be refused",
        std::time::Duration::from_secs(10),
        || async { (use_key().await == 403).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn bad_key_requests_get_precise_errors_and_store_nothing() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let long = "k".repeat(51);
    let cases = [
        (
            json!({"name": "x", "permission": "admin"}),
            422,
            "validation_error",
            "permission",
        ),
        (
            json!({"name": "x", "permission": 1}),
            422,
            "validation_error",
            "permission",
        ),
        (json!({"name": ""}), 422, "validation_error", "name"),
        (json!({"name": "   "}), 422, "validation_error", "name"),
        (json!({"name": long}), 422, "validation_error", "name"),
        (
            json!({"name": "two\nlines"}),
            422,
            "validation_error",
            "name",
        ),
        (json!({"name": 7}), 422, "validation_error", "name"),
        (json!({}), 422, "missing_required_field", "name"),
        (
            json!({"permission": "sending_access"}),
            422,
            "missing_required_field",
            "name",
        ),
        (
            json!({"name": "x", "permission": "sending_access", "domain_id": "d91cd9bd-1176-453e-8fc1-35364d380206"}),
            404,
            "not_found",
            "",
        ),
        (
            json!({"name": "x", "permission": "full_access", "domain_id": "d91cd9bd-1176-453e-8fc1-35364d380206"}),
            422,
            "validation_error",
            "domain_id",
        ),
        (
            json!({"name": "x", "permission": "sending_access", "domain_id": "acme.test"}),
            422,
            "validation_error",
            "domain_id",
        ),
        (
            json!({"name": "x", "scopes": ["all"]}),
            422,
            "validation_error",
            "scopes",
        ),
        (json!(["x"]), 422, "validation_error", ""),
    ];
    for (body, status, name, field) in cases {
        let (got, answer) = app.call(Method::POST, "/v1/api-keys", &[], &body).await;
        assert_eq!(
            (got, answer["name"].as_str(), answer["statusCode"].as_u64()),
            (status, Some(name), Some(status as u64)),
            "{body}: {answer}"
        );
        if !field.is_empty() {
            assert_eq!(answer["field"], field, "{body}: {answer}");
        }
        assert!(!answer["message"].as_str().unwrap().is_empty());
    }
    for raw in ["not json", "{\"name\": ", ""] {
        let r = app
            .client
            .post(app.url("/v1/api-keys"))
            .bearer_auth(&app.api_key)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{raw:?}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["name"], "validation_error", "{raw:?}");
    }
    let keys = app.store.list_api_keys().await.unwrap();
    assert_eq!(keys.len(), 1, "nothing was stored: {keys:?}");

    let unknown = "00000000-0000-0000-0000-000000000000";
    let (status, answer) = app
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{unknown}"),
            &[],
            &Value::Null,
        )
        .await;
    assert_eq!((status, answer["name"].as_str()), (404, Some("not_found")));
    let (status, answer) = app
        .call(Method::DELETE, "/v1/api-keys/not-a-uuid", &[], &Value::Null)
        .await;
    assert_eq!(
        answer,
        json!({"statusCode": 422, "name": "validation_error",
               "message": "The `api_key_id` must be a valid UUID.", "field": "api_key_id"})
    );
    assert_eq!(status, 422);
    for query in ["?limit=0", "?limit=101", "?after=nope", "?page=2"] {
        let (status, answer) = app.get(&format!("/v1/api-keys{query}")).await;
        assert_eq!(
            (status, answer["name"].as_str()),
            (422, Some("validation_error")),
            "{query}: {answer}"
        );
    }
    assert_eq!(app.store.list_api_keys().await.unwrap().len(), 1);
    assert!(
        app.store.list_api_keys().await.unwrap()[0]
            .revoked_at
            .is_none(),
        "the key survived the bad deletes"
    );

    // The longest name Resend allows is fine.
    let (id, _) = create_over_http(&app, json!({"name": "k".repeat(50)})).await;
    assert!(!id.is_empty());
}

#[tokio::test]
async fn the_key_list_pages_newest_first() {
    let app = spawn_app(StoreKind::Sqlite).await;
    for name in ["a", "b", "c"] {
        create_over_http(&app, json!({"name": name})).await;
    }
    // Newest first means by id (UUIDv7); keys made in one millisecond may
    // fall in any order among themselves, so the expected order is read
    // from the ids.
    let mut all: Vec<(String, String)> = app
        .store
        .list_api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.id.to_string(), k.name))
        .collect();
    all.sort_by(|a, b| b.0.cmp(&a.0));
    let order: Vec<&str> = all.iter().map(|(_, name)| name.as_str()).collect();

    let first = list_keys(&app, "?limit=2").await;
    assert_eq!(
        (names(&first), &first["has_more"]),
        (order[..2].to_vec(), &json!(true))
    );
    let rest = list_keys(&app, &format!("?limit=2&after={}", all[1].0)).await;
    assert_eq!(
        (names(&rest), &rest["has_more"]),
        (order[2..].to_vec(), &json!(false))
    );
    let newer = list_keys(&app, &format!("?limit=2&before={}", all[3].0)).await;
    assert_eq!(
        (names(&newer), &newer["has_more"]),
        (order[1..3].to_vec(), &json!(true))
    );
    let everything = list_keys(&app, "?limit=100").await;
    assert_eq!(
        (names(&everything), &everything["has_more"]),
        (order, &json!(false))
    );
}
