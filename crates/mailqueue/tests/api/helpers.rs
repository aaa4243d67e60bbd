//! `spawn_app`: the application built from a config, on port 0, with its
//! own data directory (and PostgreSQL database when asked).

use chrono::{DurationRound, Utc};
use mailqueue::{Application, Config};
use mailqueue_core::api_key::{ApiKeyName, ApiKeyPermission};
use mailqueue_core::store::{ListQuery, Store};
use mailqueue_core::{Clock, SystemClock};
use mailqueue_testkit::{wait_until, StoreKind, TempDir, TestDatabase};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:<port>` of `MAILQUEUE_HEALTH_LISTEN`, when set.
    pub health_address: Option<String>,
    /// The SMTP submission ports, as `Application::submission_ports`.
    pub submission_ports: Vec<u16>,
    /// The bounce domain's MX port, as `Application::inbound_port`.
    pub inbound_port: Option<u16>,
    pub api_key: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub data_dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub db: Option<TestDatabase>,
}

/// Settings that keep retries and rescues fast enough for tests.
fn base_env(data_dir: &TempDir) -> HashMap<String, String> {
    [
        ("MAILQUEUE_LISTEN", "127.0.0.1:0"),
        ("MAILQUEUE_DATA_DIR", data_dir.path().to_str().unwrap()),
        ("MAILQUEUE_RETRY_INITIAL_SECONDS", "0.2"),
        ("MAILQUEUE_RETRY_MAX_DELAY_SECONDS", "1"),
        ("MAILQUEUE_RESCUE_INTERVAL_SECONDS", "0.2"),
        ("MAILQUEUE_SMTP_TIMEOUT_SECONDS", "5"),
        ("MAILQUEUE_SHUTDOWN_GRACE_SECONDS", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

pub async fn spawn_app(kind: StoreKind) -> TestApp {
    spawn_app_with(kind, &[]).await
}

pub async fn spawn_app_with(kind: StoreKind, extra: &[(&str, &str)]) -> TestApp {
    spawn_app_with_clock(kind, extra, Arc::new(SystemClock)).await
}

/// [`spawn_app_with`] on a clock the test controls.
pub async fn spawn_app_with_clock(
    kind: StoreKind,
    extra: &[(&str, &str)],
    clock: Arc<dyn Clock>,
) -> TestApp {
    let data_dir = TempDir::new("app");
    let mut env = base_env(&data_dir);
    let db = match kind {
        StoreKind::Postgres => {
            let db = TestDatabase::create().await;
            env.insert("DATABASE_URL".into(), db.url.clone());
            Some(db)
        }
        StoreKind::Sqlite => None,
    };
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_env(&env).expect("valid test config");
    let app = Application::build(config, clock)
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let health_address = app
        .health_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let submission_ports = app.submission_ports();
    let inbound_port = app.inbound_port();
    let store = app.store();
    let api_key = create_api_key(store.as_ref(), "test").await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        health_address,
        submission_ports,
        inbound_port,
        api_key,
        client: reqwest::Client::new(),
        store,
        data_dir,
        stop: Some(stop),
        task: Some(task),
        db,
    }
}

/// A full-access key named `name`; returns its token.
pub async fn create_api_key(store: &dyn Store, name: &str) -> String {
    create_api_key_with(store, name, ApiKeyPermission::FullAccess).await
}

pub async fn create_api_key_with(
    store: &dyn Store,
    name: &str,
    permission: ApiKeyPermission,
) -> String {
    let now = Utc::now()
        .duration_trunc(chrono::Duration::milliseconds(1))
        .unwrap();
    let name = ApiKeyName::parse(name).expect("a valid key name");
    let (_, token) =
        mailqueue_service::api_keys::create_api_key(store, &name, permission, None, now)
            .await
            .expect("store an API key");
    token.expose().to_string()
}

pub fn minimal_email() -> Value {
    json!({"from": "Acme <noreply@acme.test>", "to": "user@example.com", "subject": "Hello", "text": "Hi there"})
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Sends `body` as JSON with the API key and extra headers; returns the
    /// status and the JSON answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> (u16, Value) {
        self.call_as(&self.api_key, method, path, headers, body)
            .await
    }

    /// [`Self::call`] with another API key.
    pub async fn call_as(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(key)
            .json(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_email(&self, body: &Value) -> reqwest::Response {
        self.post("/v1/emails", body).await
    }

    /// Posts an email that must be accepted; returns its id.
    pub async fn send(&self, body: &Value) -> String {
        let r = self.post_email(body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 202, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// What `/metrics` answers now.
    pub async fn metrics(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    pub async fn email(&self, id: &str) -> Value {
        let (status, v) = self.get(&format!("/v1/emails/{id}")).await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Waits until the email has `status`; returns the email object.
    pub async fn wait_for_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        wait_until(&format!("email {id} to be {status}"), timeout, || async {
            let e = self.email(id).await;
            (e["status"] == status).then_some(e)
        })
        .await
    }

    pub async fn stored_count(&self) -> usize {
        self.store
            .list_emails(&ListQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    }

    /// Stops the app like SIGTERM would and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown().await
    }

    async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("the app task does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Runs `tests/compat/{script}` (Python) with `input` as JSON on stdin;
/// returns its JSON output.
pub async fn run_compat(script: &str, input: &Value) -> Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(script);
    let out = run_with_input(
        "python3",
        vec![script.to_str().expect("a UTF-8 path").to_string()],
        input.to_string(),
    )
    .await;
    serde_json::from_slice(&out).expect("the client prints JSON")
}

/// Runs `program` with `args` and `input` on its stdin, off the runtime's
/// threads; returns what it printed, having checked that it succeeded.
pub async fn run_with_input(program: &str, args: Vec<String>, input: String) -> Vec<u8> {
    let program = program.to_string();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(&program)
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"));
        child
            .stdin
            .take()
            .expect("a piped stdin")
            .write_all(input.as_bytes())
            .expect("the input is written");
        child.wait_with_output().expect("the process ends")
    })
    .await
    .expect("the process was waited for");
    assert!(
        out.status.success(),
        "the client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
