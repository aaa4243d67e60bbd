//! The real `mailqueue` binary, started as a user would.

use crate::processes::{clean_command, succeeded, Server, BIN};
use mailqueue_testkit::{
    free_port, wait_until, SinkOptions, SinkTls, SmtpSink, TempDir, TestCertificate, TestDatabase,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(30);

pub fn command(dir: &TempDir, env: &[(&str, String)]) -> Command {
    let mut c = clean_command(BIN);
    c.current_dir(dir.path())
        .env("MAILQUEUE_DATA_DIR", dir.path().join("data"));
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

pub fn create_key(dir: &TempDir, env: &[(&str, String)]) -> String {
    let out = command(dir, env)
        .args(["api-keys", "create", "--name", "e2e"])
        .output()
        .unwrap();
    succeeded(out, "api-keys create")
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

pub async fn serve(dir: &TempDir, env: &[(&str, String)]) -> Server {
    Server::start(command(dir, env)).await
}

impl Server {
    pub async fn send(&self, key: &str, subject: &str) -> String {
        let body = json!({"from": "app@acme.test", "to": "user@example.com", "subject": subject, "text": "body"});
        let r = reqwest::Client::new()
            .post(format!("{}/v1/emails", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn email(&self, key: &str, id: &str) -> Value {
        self.read(key, &format!("/v1/emails/{id}")).await
    }

    /// The types of the email's events, oldest first.
    pub async fn events(&self, key: &str, id: &str) -> Vec<String> {
        let body = self.read(key, &format!("/v1/emails/{id}/events")).await;
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn read(&self, key: &str, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn status(&self, key: &str, id: &str) -> String {
        self.email(key, id).await["status"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

async fn sends_and_drains(env: Vec<(&'static str, String)>) {
    let dir = TempDir::new("bin");
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let mut env = env;
    env.push(("MAILQUEUE_SMTP_URL", sink.url()));
    let key = create_key(&dir, &env);
    assert!(key.starts_with("mq_"));
    let mut server = serve(&dir, &env).await;
    let id = server.send(&key, "from the binary").await;
    wait_until("the email to be sent", WAIT, || async {
        (server.status(&key, &id).await == "sent").then_some(())
    })
    .await;
    let m = sink.wait_for_messages(1, WAIT).await;
    assert_eq!(m[0].parsed().subject(), Some("from the binary"));
    let status = server.terminate();
    assert!(status.success(), "SIGTERM drains and exits 0, got {status}");
}

#[tokio::test]
async fn the_binary_sends_and_drains_on_the_embedded_store() {
    sends_and_drains(vec![]).await;
}

#[tokio::test]
async fn the_binary_sends_and_drains_on_postgres() {
    let db = TestDatabase::create().await;
    let dir = TempDir::new("migrate");
    let env = vec![("DATABASE_URL", db.url.clone())];
    let out = command(&dir, &env).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sends_and_drains(env).await;
}

/// kill -9 while emails are `sending`; after a restart every accepted email
/// is sent (at least once) and none is lost.
async fn survives_kill_9(env: Vec<(&'static str, String)>) {
    let dir = TempDir::new("crash");
    let sink = SmtpSink::start(SinkOptions {
        delay: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let mut env = env;
    env.push(("MAILQUEUE_SMTP_URL", sink.url()));
    env.push(("MAILQUEUE_WORKER_CONCURRENCY", "4".into()));
    env.push(("MAILQUEUE_LEASE_SECONDS", "3".into()));
    env.push(("MAILQUEUE_SEND_TIMEOUT_SECONDS", "2".into()));
    env.push(("MAILQUEUE_RESCUE_INTERVAL_SECONDS", "0.2".into()));
    let key = create_key(&dir, &env);
    let mut server = serve(&dir, &env).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(server.send(&key, &format!("crash-{i}")).await);
    }
    wait_until("emails in flight", WAIT, || async {
        let mut sending = 0;
        for id in &ids {
            if server.status(&key, id).await == "sending" {
                sending += 1;
            }
        }
        (sending > 0).then_some(())
    })
    .await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = serve(&dir, &env).await;
    for id in &ids {
        wait_until(
            &format!("{id} to be sent after the restart"),
            Duration::from_secs(90),
            || async { (server.status(&key, id).await == "sent").then_some(()) },
        )
        .await;
    }
    let subjects: HashSet<String> = sink
        .messages()
        .iter()
        .filter_map(|m| m.parsed().subject().map(str::to_string))
        .collect();
    for i in 0..12 {
        assert!(
            subjects.contains(&format!("crash-{i}")),
            "crash-{i} was delivered"
        );
    }
    // The history agrees with the status: accepted once, delivered once
    // and last, and an interrupted attempt in between at most.
    for id in &ids {
        let events = server.events(&key, id).await;
        let middle = &events[1..events.len() - 1];
        assert!(
            events.first().map(String::as_str) == Some("email.sent")
                && events.last().map(String::as_str) == Some("email.delivered")
                && middle.iter().all(|e| e == "email.delivery_delayed"),
            "{id}: {events:?}"
        );
    }
    let delivered = sink.messages().len();
    assert!(
        delivered <= 12 + 4,
        "{delivered} deliveries of 12 emails: only the 4 sends in flight at the kill may repeat"
    );
}

#[tokio::test]
async fn kill_9_loses_nothing_on_the_embedded_store() {
    survives_kill_9(vec![]).await;
}

#[tokio::test]
async fn kill_9_loses_nothing_on_postgres() {
    let db = TestDatabase::create().await;
    survives_kill_9(vec![("DATABASE_URL", db.url.clone())]).await;
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = TempDir::new("lock");
    let _first = serve(&dir, &[]).await;
    let out = command(
        &dir,
        &[("MAILQUEUE_LISTEN", format!("127.0.0.1:{}", free_port()))],
    )
    .arg("serve")
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another mailqueue is already serving"),
        "{err}"
    );
}

#[test]
fn bad_configuration_exits_with_one_clear_line() {
    let dir = TempDir::new("config");
    let out = command(&dir, &[("MAILQUEUE_WORKER_CONCURENCY", "4".into())])
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("MAILQUEUE_WORKER_CONCURENCY"), "{err}");
    let out = command(&dir, &[("MAILQUEUE_SMTP_URL", "http://relay".into())])
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("smtp://"), "{err}");
}

#[test]
fn api_keys_are_listed_without_tokens_and_revoked_by_name() {
    let dir = TempDir::new("keys");
    let first = create_key(&dir, &[]);
    let run = |args: &[&str]| command(&dir, &[]).args(args).output().unwrap();
    let second = succeeded(run(&["api-keys", "create", "--name", "ops"]), "create ops");
    let second = second.lines().last().unwrap().trim().to_string();
    let listed = succeeded(run(&["api-keys", "list", "--json"]), "list");
    assert!(
        !listed.contains(&first) && !listed.contains(&second),
        "tokens never shown again: {listed}"
    );
    let keys: Vec<Value> = serde_json::from_str(&listed).unwrap();
    let names: Vec<&str> = keys.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(names.contains(&"e2e") && names.contains(&"ops"), "{listed}");
    assert!(keys.iter().all(|k| k["revoked_at"].is_null()));
    let said = succeeded(run(&["api-keys", "revoke", "ops"]), "revoke");
    assert!(said.contains("Revoked 1 API key"), "{said}");
    let keys: Vec<Value> =
        serde_json::from_str(&succeeded(run(&["api-keys", "list", "--json"]), "list")).unwrap();
    for k in &keys {
        assert_eq!(k["revoked_at"].is_null(), k["name"] == "e2e", "{k}");
    }
    let out = run(&["api-keys", "revoke", "ops"]);
    assert!(!out.status.success(), "an already revoked key");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no active API key has the id or name `ops`")
    );
}

#[tokio::test]
async fn api_keys_are_created_with_a_permission() {
    let dir = TempDir::new("perm");
    let run = |args: &[&str]| command(&dir, &[]).args(args).output().unwrap();
    let made = succeeded(
        run(&[
            "api-keys",
            "create",
            "--name",
            "sender",
            "--permission",
            "sending_access",
        ]),
        "create sending",
    );
    assert!(made.contains("with sending_access"), "{made}");
    let sending = made.lines().last().unwrap().trim().to_string();
    let full = create_key(&dir, &[]);
    let keys: Vec<Value> =
        serde_json::from_str(&succeeded(run(&["api-keys", "list", "--json"]), "list")).unwrap();
    let permissions: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap(),
                k["permission"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        permissions,
        [("sender", "sending_access"), ("e2e", "full_access")]
    );
    let table = succeeded(run(&["api-keys", "list"]), "list");
    assert!(
        table.lines().next().unwrap().contains("PERMISSION"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("sending_access") && l.ends_with("sender")),
        "{table}"
    );

    for (args, says) in [
        (
            &["--name", "x", "--permission", "admin"][..],
            "sending_access",
        ),
        (&["--name", "  "][..], "must not be empty"),
        (&["--name", &"n".repeat(51)][..], "at most 50"),
    ] {
        let out = command(&dir, &[])
            .args(["api-keys", "create"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let keys: Vec<Value> =
        serde_json::from_str(&succeeded(run(&["api-keys", "list", "--json"]), "list")).unwrap();
    assert_eq!(keys.len(), 2, "refused keys are not stored");

    let server = serve(&dir, &[]).await;
    let id = server.send(&sending, "from a sending key").await;
    let r = reqwest::Client::new()
        .get(format!("{}/v1/emails/{id}", server.base))
        .bearer_auth(&sending)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["name"],
        "restricted_api_key"
    );
    assert_eq!(server.email(&full, &id).await["id"], id.as_str());
}

/// A relay that requires TLS and AUTH, with a certificate the server is
/// told to trust (`SSL_CERT_FILE`) or not.
async fn tls_relay(implicit: bool, trusted: bool) -> (SmtpSink, Server, String, TempDir) {
    let certificate = TestCertificate::generate();
    let sink = SmtpSink::start(SinkOptions {
        tls: Some(SinkTls {
            certificate: certificate.clone(),
            implicit,
        }),
        auth: Some(("relay-user".into(), "relay-secret".into())),
        ..Default::default()
    })
    .await;
    let scheme = if implicit { "smtps" } else { "smtp" };
    let mut env = vec![(
        "MAILQUEUE_SMTP_URL",
        format!("{scheme}://relay-user:relay-secret@127.0.0.1:{}", sink.port),
    )];
    if trusted {
        env.push(("SSL_CERT_FILE", certificate.ca.display().to_string()));
    }
    let dir = TempDir::new("tls");
    let key = create_key(&dir, &env);
    let server = serve(&dir, &env).await;
    (sink, server, key, dir)
}

async fn delivers_encrypted_and_logged_in(implicit: bool) {
    let (sink, server, key, _dir) = tls_relay(implicit, true).await;
    let id = server.send(&key, "over TLS").await;
    wait_until("the email to be sent", WAIT, || async {
        (server.status(&key, &id).await == "sent").then_some(())
    })
    .await;
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls, "the session was encrypted");
    assert_eq!(received[0].login.as_deref(), Some("relay-user"));
}

#[tokio::test]
async fn starttls_with_auth_delivers_encrypted() {
    delivers_encrypted_and_logged_in(false).await;
}

#[tokio::test]
async fn implicit_tls_with_auth_delivers_encrypted() {
    delivers_encrypted_and_logged_in(true).await;
}

#[tokio::test]
async fn an_untrusted_relay_certificate_sends_nothing_and_retries() {
    let (sink, server, key, _dir) = tls_relay(true, false).await;
    let id = server.send(&key, "not to an impostor").await;
    let email = wait_until("a failed attempt", WAIT, || async {
        let v = server.email(&key, &id).await;
        (v["last_event"] == "delivery_delayed").then_some(v)
    })
    .await;
    let error = email["last_error"].as_str().unwrap().to_lowercase();
    assert!(
        error.contains("tls") || error.contains("certificate"),
        "{email}"
    );
    assert!(sink.messages().is_empty());
}
