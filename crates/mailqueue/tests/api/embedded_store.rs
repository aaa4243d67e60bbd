//! The embedded store after a clean stop: the write-ahead log has been
//! checkpointed, so `mailqueue.db` copied alone holds every accepted email.

use crate::helpers::*;
use crate::processes::{clean_command, succeeded, Server, BIN};
use mailqueue_core::store::{EmailReads, ListQuery};
use mailqueue_store::{SqliteSettings, SqliteStore};
use mailqueue_testkit::{StoreKind, TempDir};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;

const EMAILS: usize = 10;

/// Asserts that the log next to `data_dir/mailqueue.db` is gone or empty,
/// and that a copy of `mailqueue.db` alone, opened elsewhere, holds `ids`.
async fn assert_the_main_file_alone_holds(data_dir: &Path, ids: &HashSet<String>) {
    let wal = data_dir.join("mailqueue.db-wal");
    if let Ok(meta) = std::fs::metadata(&wal) {
        assert_eq!(meta.len(), 0, "{} still holds writes", wal.display());
    }
    let copy = TempDir::new("copied-store");
    let path = copy.path().join("mailqueue.db");
    std::fs::copy(data_dir.join("mailqueue.db"), &path).unwrap();
    let store = SqliteStore::open(&SqliteSettings { path, readers: 1 })
        .await
        .expect("the copied file opens");
    let found: HashSet<String> = store
        .list_emails(&ListQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(&found, ids, "every accepted email is in the copied file");
}

/// The app's store stays open after the stop (the test holds it), as in a
/// process that exits without closing its connections: only the shutdown's
/// own checkpoint can have moved the log into the main file.
#[tokio::test]
async fn a_clean_stop_checkpoints_so_mailqueue_db_alone_holds_every_email() {
    let data = TempDir::new("stopped-store");
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[("MAILQUEUE_DATA_DIR", data.path().to_str().unwrap())],
    )
    .await;
    let mut ids = HashSet::new();
    for _ in 0..EMAILS {
        ids.insert(app.send(&minimal_email()).await);
    }
    let store = app.store.clone();
    app.stop().await.expect("a clean stop");
    assert_the_main_file_alone_holds(data.path(), &ids).await;
    drop(store);
}

/// The same through the real binary and SIGTERM, as the README tells
/// operators to stop the server before copying the file.
#[tokio::test]
async fn after_sigterm_the_binary_leaves_every_email_in_mailqueue_db() {
    let dir = TempDir::new("sigterm-store");
    let command = || {
        let mut c = clean_command(BIN);
        c.env("MAILQUEUE_DATA_DIR", dir.path());
        c
    };
    let out = command()
        .args(["api-keys", "create", "--name", "copy"])
        .output()
        .unwrap();
    let key = succeeded(out, "api-keys create")
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let mut server = Server::start(command()).await;
    let client = reqwest::Client::new();
    let mut ids = HashSet::new();
    for _ in 0..EMAILS {
        let r = client
            .post(format!("{}/v1/emails", server.base))
            .bearer_auth(&key)
            .json(&json!({"from": "app@acme.test", "to": "user@example.com", "subject": "s", "text": "t"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let body: Value = r.json().await.unwrap();
        ids.insert(body["id"].as_str().unwrap().to_string());
    }
    let status = server.terminate();
    assert!(status.success(), "SIGTERM stops cleanly, got {status}");
    assert_the_main_file_alone_holds(dir.path(), &ids).await;
}
