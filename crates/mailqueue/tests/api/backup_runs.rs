//! What happens around a backup: the guide's script and its flags,
//! retention, metrics and Slack notifications.

use crate::backup_postgres::{seeded_database, Ops};
use crate::processes::backup_script;
use mailqueue_testkit::{HttpReceiver, Pushgateway};

/// One of the guide's scripts, in `ops`'s environment.
fn run_named(ops: &Ops, name: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = backup_script(name);
    for (k, v) in ops.env() {
        cmd.env(k, v);
    }
    cmd.args(args).output().unwrap()
}

fn run_script(ops: &Ops, args: &[&str]) -> std::process::Output {
    run_named(ops, "pg-backup.sh", args)
}

#[tokio::test]
async fn the_script_keeps_the_guides_flags_and_reports_every_run() {
    let db = seeded_database().await;
    let slack = HttpReceiver::start(200).await;
    let ops = Ops::new(&db).with("SLACK_WEBHOOK_URL", slack.url());
    let textfile = ops.dir.path().join("textfile/mailqueue_backup.prom");
    let ops = ops.with("MAILQUEUE_METRICS_TEXTFILE", textfile.display().to_string());
    let out = run_script(&ops, &["-c", "gzip", "-n", "-r", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        ops.stored_files().iter().any(|f| f.ends_with(".dump.gz")),
        "{:?}",
        ops.stored_files()
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("keep   postgres mailqueue_") && said.contains("newest backup"),
        "retention explains itself: {said}"
    );
    let bodies = slack.bodies();
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].contains("succeeded"), "{}", bodies[0]);
    let metrics = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        metrics.contains("mailqueue_backup_success_total{kind=\"postgres\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailqueue_backup_failure_total{kind=\"postgres\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailqueue_backup_last_success_timestamp_seconds{kind=\"postgres\"}"),
        "{metrics}"
    );
    // What retention kept, for the storage quota alert.
    let stored = ops.catalog("file")[0]["size_bytes"].as_u64().unwrap();
    assert!(
        metrics.contains(&format!(
            "mailqueue_backup_storage_bytes{{kind=\"postgres\"}} {stored}"
        )),
        "{metrics}"
    );
    // A failing run: non-zero exit, no manifest, a failure counted and announced.
    let broken = ops.with("DATABASE_URL", format!("{}_missing", db.url));
    let out = run_script(&broken, &["-n"]);
    assert!(!out.status.success());
    assert_eq!(
        broken.catalog("file").len(),
        1,
        "only the first backup exists"
    );
    let bodies = slack.bodies();
    assert!(bodies[1].contains("FAILED"), "{}", bodies[1]);
    let metrics = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        metrics.contains("mailqueue_backup_success_total{kind=\"postgres\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailqueue_backup_failure_total{kind=\"postgres\"} 1"),
        "{metrics}"
    );
    // Flags outside the guide's are refused before anything runs.
    let out = run_script(&ops, &["-x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option -x"));
    let out = run_script(&ops, &["-c", "brotli"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("brotli"));
}

#[tokio::test]
async fn a_slack_outage_never_fails_the_backup() {
    let db = seeded_database().await;
    let slack = HttpReceiver::start(500).await;
    let ops = Ops::new(&db).with("SLACK_WEBHOOK_URL", slack.url());
    ops.ok(&["backup", "postgres", "-n"]);
    assert_eq!(slack.bodies().len(), 1, "it was tried");
    let ops = ops.with("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/unreachable");
    ops.ok(&["backup", "postgres", "-n"]);
    assert_eq!(ops.catalog("file").len(), 2);
}

#[tokio::test]
async fn metrics_reach_a_pushgateway() {
    let db = seeded_database().await;
    let gateway = Pushgateway::start();
    let ops = Ops::new(&db).with("MAILQUEUE_PUSHGATEWAY_URL", gateway.url());
    ops.ok(&["backup", "postgres"]);
    let text = reqwest::get(format!("{}/metrics", gateway.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("mailqueue_backup_success_total{"))
        .unwrap_or_else(|| panic!("no success metric in {text}"));
    assert!(
        line.contains("job=\"mailqueue_backup\"")
            && line.contains("kind=\"postgres\"")
            && line.ends_with(" 1"),
        "{line}"
    );
    assert!(text.contains("mailqueue_backup_size_bytes{"), "{text}");
}

/// Moves a backup's manifest `days` into the past.
fn age(ops: &Ops, id: &str, days: i64) {
    let dir = ops.backups_dir();
    let file = ops
        .stored_files()
        .into_iter()
        .find(|f| f.contains(id) && f.ends_with(".manifest.json"))
        .unwrap();
    let path = dir.join(file);
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let then = chrono::Utc::now() - chrono::Duration::days(days);
    m["started_at"] = serde_json::json!(then.to_rfc3339());
    m["finished_at"] = serde_json::json!(then.to_rfc3339());
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
}

#[tokio::test]
async fn retention_prunes_what_no_rule_keeps_but_never_the_newest() {
    let db = seeded_database().await;
    let ops = Ops::new(&db).with("MAILQUEUE_BACKUP_POSTGRES_KEEP", "0,0,0");
    for _ in 0..3 {
        ops.ok(&["backup", "postgres", "-r", "3650"]);
    }
    let ids: Vec<String> = ops
        .catalog("file")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    age(&ops, &ids[0], 200);
    age(&ops, &ids[1], 100);
    let said = ops.ok(&[
        "backups",
        "prune",
        "--kind",
        "postgres",
        "-r",
        "30",
        "--dry-run",
    ]);
    assert!(
        said.contains(&format!("would delete postgres {}", ids[0])),
        "{said}"
    );
    assert!(
        said.contains(&format!("would delete postgres {}", ids[1])),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "keep   postgres {}: newest backup, within 30 days",
            ids[2]
        )),
        "{said}"
    );
    assert_eq!(ops.stored_files().len(), 6, "a dry run deletes nothing");
    // The monthly rule would keep both: one backup per month.
    let monthly = ops.with("MAILQUEUE_BACKUP_POSTGRES_KEEP", "0,0,12");
    let said = monthly.ok(&[
        "backups",
        "prune",
        "--kind",
        "postgres",
        "-r",
        "30",
        "--dry-run",
    ]);
    assert!(!said.contains("would delete"), "{said}");
    ops.ok(&["backups", "prune", "--kind", "postgres", "-r", "30"]);
    let left = ops.stored_files();
    assert_eq!(left.len(), 2, "object and manifest of the newest: {left:?}");
    assert!(left.iter().all(|f| f.contains(&ids[2])));
    // Only old backups left: the newest of them stays.
    age(&ops, &ids[2], 400);
    ops.ok(&["backups", "prune", "--kind", "postgres", "-r", "30"]);
    assert_eq!(ops.catalog("file").len(), 1);
}

#[tokio::test]
async fn verification_exits_3_when_the_newest_backup_is_stale_or_odd_sized() {
    let db = seeded_database().await;
    let ops = Ops::new(&db);
    ops.ok(&["backup", "postgres"]);
    let sound = run_named(&ops, "verify-backups.sh", &[]);
    let said = String::from_utf8_lossy(&sound.stdout).to_string();
    assert_eq!(sound.status.code(), Some(0), "{said}");
    assert!(said.contains(": OK") && !said.contains("WARNING"), "{said}");

    let id = ops.catalog("file")[0]["id"].as_str().unwrap().to_string();
    age(&ops, &id, 2);
    let stale = run_named(&ops, "verify-backups.sh", &[]);
    let said = String::from_utf8_lossy(&stale.stdout).to_string();
    assert_eq!(stale.status.code(), Some(3), "{said}");
    assert!(said.contains(&format!("postgres {id}: OK")), "{said}");
    assert!(
        said.contains(&format!(
            "WARNING: the newest postgres backup ({id}) is 48 hours old"
        )),
        "{said}"
    );

    // A newest backup far smaller than the ones before it.
    let db = seeded_database().await;
    let shrunk = Ops::new(&db);
    shrunk.ok(&["backup", "postgres"]);
    let usual = shrunk.catalog("file")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    age(&shrunk, &usual, 1);
    let empty = mailqueue_testkit::TestDatabase::create().await;
    let small = shrunk.with("DATABASE_URL", empty.url.clone());
    small.ok(&["backup", "postgres"]);
    let odd = run_named(&small, "verify-backups.sh", &[]);
    let said = String::from_utf8_lossy(&odd.stdout).to_string();
    assert_eq!(odd.status.code(), Some(3), "{said}");
    assert!(said.contains("from the median"), "{said}");
}

#[tokio::test]
async fn verifying_one_backup_by_id_checks_only_that_backup() {
    let db = seeded_database().await;
    let redis = mailqueue_testkit::RedisServer::start(false);
    redis.fill(20);
    let ops = Ops::new(&db).with("REDIS_URL", redis.url());
    ops.ok(&["backup", "postgres"]);
    ops.ok(&["backup", "redis", "-m", "rdb"]);
    let catalog = ops.catalog("file");
    assert_eq!(catalog.len(), 2);
    let postgres = catalog.iter().find(|m| m["kind"] == "postgres").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let said = ops.ok(&["verify", &postgres]);
    assert_eq!(said.trim(), format!("postgres {postgres}: OK"));
    let (code, said) = ops.fails(&["verify", "mailqueue_19990101_000000"]);
    assert_eq!(code, 1);
    assert!(
        said.contains("no backup matches `mailqueue_19990101_000000`"),
        "{said}"
    );
}

/// The Pushgateway's text exposition, the lines of one metric.
async fn pushed(gateway: &Pushgateway, metric: &str) -> Vec<String> {
    reqwest::get(format!("{}/metrics", gateway.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .map(String::from)
        .collect()
}

/// The value of a metric line's sample for `kind`.
fn value_for(lines: &[String], kind: &str) -> Option<f64> {
    lines
        .iter()
        .find(|l| l.contains(&format!("kind=\"{kind}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// As Kubernetes CronJobs run them: every run in a fresh pod with no state
/// of its own, one destination, one Pushgateway. A Redis run leaves the
/// PostgreSQL metrics in place (each kind has its own group), and a failed
/// PostgreSQL run keeps the last success, read from the catalog.
#[tokio::test]
async fn pods_that_share_no_state_keep_each_kinds_metrics_on_the_pushgateway() {
    let db = seeded_database().await;
    let gateway = Pushgateway::start();
    let redis = mailqueue_testkit::RedisServer::start(false);
    redis.fill(20);
    let shared = Ops::new(&db).with("MAILQUEUE_PUSHGATEWAY_URL", gateway.url());
    let pod = |n: usize| {
        let locks = shared.dir.path().join(format!("pod-{n}"));
        shared.with("MAILQUEUE_BACKUP_LOCK_DIR", locks.display().to_string())
    };
    pod(1).ok(&["backup", "postgres"]);
    let last = "mailqueue_backup_last_success_timestamp_seconds";
    let postgres_success = value_for(&pushed(&gateway, last).await, "postgres").unwrap();
    assert!(postgres_success > 0.0);

    pod(2)
        .with("REDIS_URL", redis.url())
        .ok(&["backup", "redis", "-m", "rdb"]);
    let lines = pushed(&gateway, last).await;
    assert_eq!(
        value_for(&lines, "postgres"),
        Some(postgres_success),
        "{lines:?}"
    );
    assert!(value_for(&lines, "redis_rdb").is_some(), "{lines:?}");

    pod(3)
        .with("DATABASE_URL", "postgres://postgres@127.0.0.1:9/nothing")
        .fails(&["backup", "postgres"]);
    let lines = pushed(&gateway, last).await;
    assert_eq!(
        value_for(&lines, "postgres"),
        Some(postgres_success),
        "a failed run keeps the last success: {lines:?}"
    );
    let failures = pushed(&gateway, "mailqueue_backup_failure_total").await;
    assert_eq!(value_for(&failures, "postgres"), Some(1.0), "{failures:?}");
}

/// A local backup holds every email: its files are readable by their owner
/// and group only (0640, folders 0750), whatever the umask.
#[tokio::test]
async fn local_backups_are_not_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let db = seeded_database().await;
    let ops = Ops::new(&db);
    ops.ok(&["backup", "postgres"]);
    let root = ops.backups_dir();
    let files = ops.stored_files();
    assert!(files.len() >= 2, "{files:?}");
    for file in files {
        let path = root.join(&file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{file}: {mode:o}");
        let folder = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(folder, 0o750, "{file}: folder {folder:o}");
    }
}

/// `wal-push` runs on the PostgreSQL server and `wal check` in another pod:
/// each has its own group on the Pushgateway, so a check (with no state of
/// its own) never resets the push counters.
#[tokio::test]
async fn a_wal_check_in_another_pod_leaves_the_push_counters_on_the_pushgateway() {
    let gateway = Pushgateway::start();
    let ops = Ops::for_url("postgres://unused").with("MAILQUEUE_PUSHGATEWAY_URL", gateway.url());
    let pod = |n: usize| {
        let locks = ops.dir.path().join(format!("pod-{n}"));
        ops.with("MAILQUEUE_BACKUP_LOCK_DIR", locks.display().to_string())
    };
    let wal = mailqueue_testkit::TempDir::new("pg_wal");
    let segment = wal.path().join("000000010000000000000003");
    std::fs::write(&segment, vec![7u8; 4096]).unwrap();
    pod(1).ok(&["wal-push", segment.to_str().unwrap()]);
    // No base backup yet: the check fails, and still publishes its metrics.
    pod(2).with("DATABASE_URL", "").fails(&["wal", "check"]);
    let pushes = pushed(&gateway, "mailqueue_wal_pushed_total").await;
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert!(
        pushes[0].contains("source=\"archive\"") && pushes[0].ends_with(" 1"),
        "{pushes:?}"
    );
    let missing = pushed(&gateway, "mailqueue_wal_missing_segments").await;
    assert!(
        missing.len() == 1 && missing[0].contains("source=\"check\""),
        "{missing:?}"
    );
}
