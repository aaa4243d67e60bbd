//! Faults met by the real binary, as an attacker or an unlucky operator
//! would bring them: a relay stripped of STARTTLS, a forwarding proxy in
//! the environment, a crash on a full disk.

use crate::binary::{command, create_key, serve, WAIT};
use crate::faults_store::bulky_email;
use crate::processes::Server;
use mailqueue_testkit::{
    wait_until, ForwardProxy, ReceiverAnswers, RelayOptions, SinkOptions, SmallDisk, SmtpSink,
    TempDir, TestDatabase, TestRelay, WebhookReceiver,
};
use serde_json::{json, Value};
use sqlx::{Connection, SqliteConnection};
use std::time::Duration;

async fn get(server: &Server, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{}{path}", server.base))
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A relay that offers no STARTTLS (an attacker on the path stripped it)
/// gets neither the password nor a message; the email waits, and readiness
/// says why.
#[tokio::test]
async fn a_relay_stripped_of_starttls_gets_nothing_in_clear_and_readiness_says_why() {
    let relay = TestRelay::start(RelayOptions {
        auth: Some(("relay-user".into(), "relay-secret".into())),
        ..Default::default()
    })
    .await;
    let dir = TempDir::new("stripped");
    let env = [(
        "MAILQUEUE_SMTP_URL",
        format!("smtp://relay-user:relay-secret@127.0.0.1:{}", relay.port),
    )];
    let key = create_key(&dir, &env);
    let server = serve(&dir, &env).await;
    let id = server.send(&key, "not in clear").await;
    let email = wait_until("a failed attempt", WAIT, || async {
        let v = server.email(&key, &id).await;
        (v["last_event"] == "delivery_delayed").then_some(v)
    })
    .await;
    assert!(
        email["last_error"].as_str().unwrap().contains("STARTTLS"),
        "{email}"
    );
    let said: Vec<String> = relay.commands().into_iter().map(|c| c.line).collect();
    assert!(
        said.iter().all(|l| l.starts_with("EHLO") || l == "QUIT"),
        "{said:?}"
    );
    assert!(relay.messages().is_empty());
    let (status, body) = get(&server, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("STARTTLS"),
        "{body}"
    );
    assert!(!body.to_string().contains("relay-secret"));
}

/// With `HTTP_PROXY` set, webhook deliveries still connect directly, so
/// the rule on addresses sees the host's real address: a host that comes
/// to resolve to loopback gets nothing, through the proxy or not, and the
/// error does not name the address.
#[tokio::test]
async fn a_proxy_in_the_environment_does_not_carry_webhooks_past_the_address_rule() {
    let proxy = ForwardProxy::start();
    let receiver = WebhookReceiver::start(ReceiverAnswers::Statuses(vec![]));
    let dir = TempDir::new("proxied");
    let env = [
        ("HTTP_PROXY", proxy.url()),
        ("http_proxy", proxy.url()),
        ("HTTPS_PROXY", proxy.url()),
        ("ALL_PROXY", proxy.url()),
    ];
    let key = create_key(&dir, &env);
    let server = serve(&dir, &env).await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/v1/webhooks", server.base))
        .bearer_auth(&key)
        .json(&json!({"endpoint": "https://hooks.example.com/mq", "events": ["email.sent"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook = created["id"].as_str().unwrap().to_string();
    // The endpoint's name now resolves to loopback (a changed DNS record).
    let db = dir.path().join("data/mailqueue.db");
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE webhooks SET endpoint = $1 WHERE id = $2")
        .bind(format!("http://localhost:{}/hooks", receiver.port))
        .bind(&webhook)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    server.send(&key, "an event").await;
    let delivery = wait_until("a failed webhook attempt", WAIT, || async {
        let page = server
            .read(&key, &format!("/v1/webhooks/{webhook}/events"))
            .await;
        let d = page["data"][0].clone();
        d["last_error"].is_string().then_some(d)
    })
    .await;
    let error = delivery["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("internal addresses"), "{delivery}");
    for address in ["127.0.0.1", "::1"] {
        assert!(!error.contains(address), "the address is named: {error}");
    }
    assert!(receiver.received().is_empty(), "the hook was delivered");
    assert!(
        proxy.connections().is_empty(),
        "the proxy was used: {:?}",
        proxy.connections()
    );
}

/// Killed on a full disk, the server starts again on the same full disk:
/// it serves reads, health and metrics and reports not ready, and is ready
/// without a restart once there is room.
#[tokio::test]
async fn after_a_crash_on_a_full_disk_the_server_starts_and_reports_not_ready() {
    let Some(disk) = SmallDisk::mount("crash-full", 3 * 1024 * 1024) else {
        return;
    };
    // A slow relay keeps emails `sending` when the process is killed.
    let sink = SmtpSink::start(SinkOptions {
        delay: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let dir = TempDir::new("crash-full");
    let env = [
        ("MAILQUEUE_DATA_DIR", disk.path().display().to_string()),
        ("MAILQUEUE_SMTP_URL", sink.url()),
        ("MAILQUEUE_WORKER_CONCURRENCY", "4".into()),
    ];
    let key = create_key(&dir, &env);
    let mut server = serve(&dir, &env).await;
    let client = reqwest::Client::new();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..400 {
        let email = bulky_email(i);
        let r = client
            .post(format!("{}/v1/emails", server.base))
            .bearer_auth(&key)
            .json(&email)
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            202 => accepted.push(
                r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            507 | 503 => refused += 1,
            other => panic!("{other} on a filling disk"),
        }
        if refused == 5 {
            break;
        }
    }
    assert!(refused == 5 && !accepted.is_empty(), "the disk filled up");
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let server = serve(&dir, &env).await;
    for id in &accepted {
        assert_eq!(server.email(&key, id).await["id"], id.as_str());
    }
    assert_eq!(get(&server, "/metrics").await.0, 200);
    let (status, body) = get(&server, "/readyz").await;
    assert_eq!(status, 503, "ready on a full disk: {body}");
    disk.resize(64 * 1024 * 1024);
    wait_until("/readyz to answer 200", WAIT, || async {
        (get(&server, "/readyz").await.0 == 200).then_some(())
    })
    .await;
    server.send(&key, "room again").await;
}

/// Killed while the store cannot record outcomes, a worker has sent at
/// most twice its concurrency of emails that it had not yet recorded:
/// those are the only ones sent twice after the restart. (Each send holds
/// a record permit until its outcome is written.)
#[tokio::test]
async fn kill_9_sends_again_at_most_twice_the_concurrency() {
    const CONCURRENCY: usize = 4;
    const BOUND: usize = CONCURRENCY * mailqueue_delivery::UNRECORDED_PER_SLOT;
    const EMAILS: usize = 40;
    let db = TestDatabase::create().await;
    let relay = TestRelay::start(RelayOptions::default()).await;
    let dir = TempDir::new("dup-bound");
    let env = [
        ("DATABASE_URL", db.url.clone()),
        ("MAILQUEUE_SMTP_URL", relay.url()),
        ("MAILQUEUE_WORKER_CONCURRENCY", CONCURRENCY.to_string()),
        ("MAILQUEUE_LEASE_SECONDS", "3".into()),
        ("MAILQUEUE_SEND_TIMEOUT_SECONDS", "2".into()),
        ("MAILQUEUE_RESCUE_INTERVAL_SECONDS", "0.2".into()),
    ];
    let out = command(&dir, &env).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = create_key(&dir, &env);
    // Outcomes cannot be written while this lock is held; claims can.
    let mut locker = db.connect().await;
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE email_attempts IN EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let mut server = serve(&dir, &env).await;
    let mut ids = Vec::new();
    for i in 0..EMAILS {
        ids.push(server.send(&key, &format!("bound-{i}")).await);
    }
    relay.wait_for_messages(BOUND, WAIT).await;
    // Give the worker every chance to send more than it could record.
    let more = tokio::time::timeout(
        Duration::from_secs(2),
        relay.wait_for_messages(BOUND + 1, Duration::from_secs(5)),
    )
    .await;
    assert!(more.is_err(), "sent more than {BOUND} before recording any");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let unrecorded = relay.messages().len();
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    let server = serve(&dir, &env).await;
    for id in &ids {
        wait_until(
            &format!("{id} to be sent"),
            Duration::from_secs(60),
            || async { (server.status(&key, id).await == "sent").then_some(()) },
        )
        .await;
    }
    let delivered = relay.messages().len();
    assert!(
        unrecorded <= BOUND && delivered <= EMAILS + BOUND,
        "{delivered} deliveries of {EMAILS} emails, {unrecorded} unrecorded at the kill"
    );
}
