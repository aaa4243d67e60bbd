//! "A 202 means the email is stored", under stores that refuse: a NUL
//! character, a row a trigger refuses, a commit killed by
//! `statement_timeout`, a full disk. Each request that is answered 202 is
//! readable at once and after a restart; each that is not stored says so,
//! and never drags the other requests of its group commit down with it.

use crate::helpers::*;
use mailqueue_core::api_key::ApiKeyPermission;
use mailqueue_testkit::{
    wait_until, SinkOptions, SmallDisk, SmtpSink, StoreKind, TestDatabase, TestTablespace,
};
use serde_json::{json, Value};
use sqlx::Connection;
use std::time::Duration;

/// Posts every body at once (each from its own key), as independent clients would.
async fn post_all(app: &TestApp, requests: Vec<(String, Value)>) -> Vec<(u16, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (key, body)) in requests.into_iter().enumerate() {
        let client = app.client.clone();
        let url = app.url("/v1/emails");
        tasks.spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .expect("request sent");
            let status = r.status().as_u16();
            (i, status, r.json::<Value>().await.unwrap_or(Value::Null))
        });
    }
    let mut answers = vec![(0, Value::Null); tasks.len()];
    while let Some(done) = tasks.join_next().await {
        let (i, status, body) = done.unwrap();
        answers[i] = (status, body);
    }
    answers
}

fn email_with_subject(subject: &str) -> Value {
    let mut e = minimal_email();
    e["subject"] = json!(subject);
    e
}

/// Asserts every 202 among `answers` names an email that is stored.
async fn accepted_are_stored(app: &TestApp, answers: &[(u16, Value)]) -> usize {
    let mut n = 0;
    for (status, body) in answers {
        if *status == 202 {
            let id = body["id"].as_str().expect("a 202 names its email");
            let (found, email) = app.get(&format!("/v1/emails/{id}")).await;
            assert_eq!(
                found, 200,
                "accepted {id} must be readable at once: {email}"
            );
            n += 1;
        }
    }
    n
}

async fn a_nul_character_is_refused_on_both_stores(kind: StoreKind) {
    let app = spawn_app(kind).await;
    let mut e = minimal_email();
    e["text"] = json!("a\u{0}b");
    let (status, body) = app.call(reqwest::Method::POST, "/v1/emails", &[], &e).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("text")),
        "{body}"
    );
    let mut items = vec![minimal_email(), minimal_email(), minimal_email()];
    items[1]["html"] = json!("<p>\u{0}</p>");
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/v1/emails/batch",
            &[("x-batch-validation", "permissive")],
            &Value::Array(items),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["errors"][0]["index"], 1);
    assert_eq!(app.stored_count().await, 2);
}

#[tokio::test]
async fn a_nul_character_is_refused_on_both_stores_sqlite() {
    a_nul_character_is_refused_on_both_stores(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_nul_character_is_refused_on_both_stores_postgres() {
    a_nul_character_is_refused_on_both_stores(StoreKind::Postgres).await;
}

#[tokio::test]
async fn one_tenants_nul_bytes_never_fail_another_tenants_requests() {
    let app = spawn_app(StoreKind::Postgres).await;
    let other =
        create_api_key_with(app.store.as_ref(), "other", ApiKeyPermission::SendingAccess).await;
    let mut requests = Vec::new();
    for i in 0..160 {
        if i % 8 == 0 {
            let mut e = minimal_email();
            e["text"] = json!(format!("bad {i}\u{0}"));
            requests.push((app.api_key.clone(), e));
        } else {
            requests.push((other.clone(), email_with_subject(&format!("good {i}"))));
        }
    }
    let answers = post_all(&app, requests).await;
    for (i, (status, body)) in answers.iter().enumerate() {
        let expected = if i % 8 == 0 { 422 } else { 202 };
        assert_eq!(*status, expected, "request {i}: {body}");
    }
    assert_eq!(accepted_are_stored(&app, &answers).await, 140);
    assert_eq!(app.stored_count().await, 140);
}

/// Makes the store refuse any email whose subject is `refuse-me`.
async fn refuse_marked_emails(app: &TestApp) {
    match &app.db {
        Some(db) => {
            let mut conn = db.connect().await;
            for statement in [
                "CREATE FUNCTION refuse_marked() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.content->>'subject' = 'refuse-me' THEN \
                 RAISE EXCEPTION 'this email is refused by the test trigger'; END IF; RETURN NEW; END $$",
                "CREATE TRIGGER refuse_marked BEFORE INSERT ON email_contents \
                 FOR EACH ROW EXECUTE FUNCTION refuse_marked()",
            ] {
                sqlx::query(statement).execute(&mut conn).await.unwrap();
            }
        }
        None => {
            let path = app.data_dir.path().join("mailqueue.db");
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(
                "CREATE TRIGGER refuse_marked BEFORE INSERT ON email_contents \
                 WHEN json_extract(NEW.content, '$.subject') = 'refuse-me' \
                 BEGIN SELECT RAISE(ABORT, 'this email is refused by the test trigger'); END",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}

async fn a_row_the_store_refuses_fails_only_its_own_request(kind: StoreKind) {
    let app = spawn_app(kind).await;
    refuse_marked_emails(&app).await;
    let requests: Vec<(String, Value)> = (0..120)
        .map(|i| {
            let subject = if i % 20 == 7 {
                "refuse-me".to_string()
            } else {
                format!("fine {i}")
            };
            (app.api_key.clone(), email_with_subject(&subject))
        })
        .collect();
    let answers = post_all(&app, requests).await;
    for (i, (status, body)) in answers.iter().enumerate() {
        if i % 20 == 7 {
            assert_eq!(*status, 422, "request {i}: {body}");
            assert!(
                body["message"].as_str().unwrap().contains("refused"),
                "{body}"
            );
        } else {
            assert_eq!(*status, 202, "request {i}: {body}");
        }
    }
    assert_eq!(accepted_are_stored(&app, &answers).await, 114);
    assert_eq!(app.stored_count().await, 114);
    let (ready, body) = app.get("/readyz").await;
    assert_eq!(
        ready, 200,
        "refused rows say nothing about the store: {body}"
    );
}

#[tokio::test]
async fn a_row_the_store_refuses_fails_only_its_own_request_sqlite() {
    a_row_the_store_refuses_fails_only_its_own_request(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_row_the_store_refuses_fails_only_its_own_request_postgres() {
    a_row_the_store_refuses_fails_only_its_own_request(StoreKind::Postgres).await;
}

/// PostgreSQL's `statement_timeout` is switched off before COMMIT runs its
/// deferred triggers, so a commit is cancelled here the way an operator or
/// a watchdog would cancel it: `pg_cancel_backend` while it runs.
#[tokio::test]
async fn a_commit_cancelled_while_it_runs_is_never_answered_202() {
    let app = spawn_app(StoreKind::Postgres).await;
    let db = app.db.as_ref().unwrap();
    let mut conn = db.connect().await;
    for statement in [
        // Runs at COMMIT (a deferred constraint trigger), so the commit
        // itself is what takes long.
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.content->>'subject' = 'slow-commit' THEN PERFORM pg_sleep(10); END IF; RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON email_contents \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    let client = app.client.clone();
    let (url, key) = (app.url("/v1/emails"), app.api_key.clone());
    let request = tokio::spawn(async move {
        let r = client
            .post(url)
            .bearer_auth(key)
            .json(&email_with_subject("slow-commit"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    });
    let committing = format!(
        "SELECT pid FROM pg_stat_activity WHERE datname = '{}' AND state = 'active' AND query = 'COMMIT'",
        db.name
    );
    let pid: i32 =
        mailqueue_testkit::wait_until("the commit to be running", Duration::from_secs(10), || {
            let url = db.url.clone();
            let committing = committing.clone();
            async move {
                let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                sqlx::query_scalar(&committing)
                    .fetch_optional(&mut conn)
                    .await
                    .ok()?
            }
        })
        .await;
    sqlx::query("SELECT pg_cancel_backend($1)")
        .bind(pid)
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, body) = request.await.unwrap();
    assert_eq!(
        (status, body["name"].as_str()),
        (503, Some("service_unavailable")),
        "{body}"
    );
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM email_contents WHERE content->>'subject' = 'slow-commit'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(stored, 0, "the cancelled commit stored nothing");
    let id = app.send(&email_with_subject("quick")).await;
    assert_eq!(app.email(&id).await["subject"], "quick");
}

/// A 200 kB email of text that does not compress, to fill a small disk quickly.
pub fn bulky_email(i: usize) -> Value {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (i as u64 + 1);
    let text: String = (0..200 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect();
    let mut e = email_with_subject(&format!("bulky {i}"));
    e["text"] = json!(text);
    e
}

/// Posts bulky emails until the store answers `full_status` `misses` times in
/// a row; asserts every 202 is readable at once. Returns the accepted ids.
async fn fill_until_full(app: &TestApp, misses: usize) -> Vec<String> {
    let mut accepted = Vec::new();
    let mut in_a_row = 0;
    for i in 0..400 {
        let (status, body) = app
            .call(reqwest::Method::POST, "/v1/emails", &[], &bulky_email(i))
            .await;
        match status {
            202 => {
                let id = body["id"].as_str().unwrap().to_string();
                let (found, email) = app.get(&format!("/v1/emails/{id}")).await;
                assert_eq!(found, 200, "a 202 on a full disk must be stored: {email}");
                accepted.push(id);
                in_a_row = 0;
            }
            507 | 503 => {
                assert!(
                    ["insufficient_storage", "service_unavailable"]
                        .contains(&body["name"].as_str().unwrap_or("")),
                    "{body}"
                );
                in_a_row += 1;
                if in_a_row == misses {
                    return accepted;
                }
            }
            other => panic!("unexpected answer {other} on a filling disk: {body}"),
        }
    }
    panic!("the disk never filled up");
}

/// While writes fail for lack of space, `/readyz` answers 503 on every
/// look (its probe is a committed write, which a full disk refuses too);
/// once `make_room` has run, it is ready again without a restart.
async fn stays_unready_until_writes_fit(app: &TestApp, make_room: impl FnOnce()) {
    for _ in 0..3 {
        let (status, body) = app.get("/readyz").await;
        assert_eq!(status, 503, "ready while the disk is full: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("out of space"),
            "{body}"
        );
    }
    make_room();
    wait_until("/readyz to answer 200", Duration::from_secs(10), || async {
        (app.get("/readyz").await.0 == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_full_disk_never_loses_an_accepted_email_sqlite() {
    let Some(disk) = SmallDisk::mount("full-sqlite", 3 * 1024 * 1024) else {
        return;
    };
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let env = [
        ("MAILQUEUE_DATA_DIR", disk.path().to_str().unwrap()),
        ("MAILQUEUE_SMTP_URL", &sink.url()),
    ];
    let app = spawn_app_with(StoreKind::Sqlite, &env).await;
    let mut accepted = fill_until_full(&app, 10).await;
    assert!(
        !accepted.is_empty(),
        "some emails fit before the disk filled"
    );
    stays_unready_until_writes_fit(&app, || disk.resize(64 * 1024 * 1024)).await;
    // Room again: the same process accepts and delivers without a restart.
    for i in 0..5 {
        accepted.push(app.send(&bulky_email(1000 + i)).await);
    }
    for id in &accepted {
        app.wait_for_status(id, "sent", Duration::from_secs(30))
            .await;
    }
    app.stop().await.expect("a clean stop");
    let again = spawn_app_with(StoreKind::Sqlite, &env).await;
    for id in &accepted {
        assert_eq!(
            again.email(id).await["status"],
            "sent",
            "{id} after a restart"
        );
    }
    assert_eq!(again.stored_count().await, accepted.len());
}

#[tokio::test]
async fn a_full_tablespace_never_loses_an_accepted_email_postgres() {
    let probe = TestDatabase::create().await;
    let mut admin = probe.admin().await;
    let local: Option<String> = sqlx::query_scalar("SELECT host(inet_server_addr())")
        .fetch_one(&mut admin)
        .await
        .unwrap_or(None);
    if !matches!(local.as_deref(), None | Some("127.0.0.1") | Some("::1")) {
        eprintln!("skipped: PostgreSQL is not on this machine, so it cannot use a local tmpfs");
        return;
    }
    // CREATE DATABASE copies the template (about 8 MB) into the tablespace.
    let Some(disk) = SmallDisk::mount("full-pg", 24 * 1024 * 1024) else {
        return;
    };
    let chown = std::process::Command::new("chown")
        .arg("postgres")
        .arg(disk.path())
        .status();
    if !chown.is_ok_and(|s| s.success()) {
        eprintln!("skipped: the tmpfs cannot be given to the postgres user");
        return;
    }
    let space = TestTablespace::create(disk.path()).await;
    let db = TestDatabase::create_with(&format!("TABLESPACE {}", space.name)).await;
    let app = spawn_app_with(StoreKind::Sqlite, &[("DATABASE_URL", &db.url)]).await;
    let mut accepted = fill_until_full(&app, 5).await;
    assert!(!accepted.is_empty());
    stays_unready_until_writes_fit(&app, || disk.resize(256 * 1024 * 1024)).await;
    for i in 0..3 {
        accepted.push(app.send(&bulky_email(1000 + i)).await);
    }
    assert_eq!(app.stored_count().await, accepted.len());
    app.stop().await.expect("a clean stop");
}
