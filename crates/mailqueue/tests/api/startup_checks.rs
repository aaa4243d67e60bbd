//! Settings are checked before the store is touched: a `serve` that will
//! be refused leaves no database behind in a fresh data directory, and
//! says in one line which setting is wrong.

use crate::processes::{clean_command, BIN};
use mailqueue_testkit::TempDir;
use std::process::Stdio;
use std::time::Duration;

/// Runs `mailqueue serve` with `env` on a fresh data directory and expects
/// it to exit non-zero on its own, with one line on stderr naming `setting`
/// and no `mailqueue.db` created.
async fn serve_is_refused_naming(setting: &str, env: &[(&str, &str)]) {
    let dir = TempDir::new("refused");
    let data = dir.path().join("data");
    let mut command = clean_command(BIN);
    command
        .env("MAILQUEUE_DATA_DIR", &data)
        .env("MAILQUEUE_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("serve with {env:?} kept running"))
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{env:?} exited 0: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line for {env:?}: {stderr}");
    assert!(lines[0].contains(setting), "{setting} named: {stderr}");
    for file in ["mailqueue.db", "mailqueue.db-wal"] {
        assert!(
            !data.join(file).exists(),
            "{file} was created before {setting} was checked"
        );
    }
}

#[tokio::test]
async fn an_invalid_relay_url_is_refused_before_the_store_is_created() {
    serve_is_refused_naming("MAILQUEUE_SMTP_URL", &[("MAILQUEUE_SMTP_URL", "http://x")]).await;
}

#[tokio::test]
async fn a_lease_shorter_than_a_send_is_refused_before_the_store_is_created() {
    serve_is_refused_naming(
        "MAILQUEUE_LEASE_SECONDS",
        &[("MAILQUEUE_LEASE_SECONDS", "0")],
    )
    .await;
}
