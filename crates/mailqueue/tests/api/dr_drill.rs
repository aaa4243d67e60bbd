//! The disaster-recovery drill against real backups: a clean set passes
//! and its report holds the durations it measured; a damaged backup fails
//! the drill with a report that names the damage.

use crate::backup_postgres::Ops;
use crate::pitr::{Archived, Place};
use crate::pitr_faults::delete_segment;
use crate::processes::succeeded;
use mailqueue_testkit::RedisServer;
use serde_json::Value;
use std::path::PathBuf;

/// A cluster with mailqueue's schema and emails in every state, archived,
/// with a base backup, a dump, WAL after both, and a Redis backup.
fn production_like() -> (Archived, RedisServer, Ops) {
    let db = Archived::start(Place::File);
    succeeded(db.ops.run(&["migrate"]), "migrate");
    db.cluster.psql(
        "INSERT INTO emails (id, status, priority, message_id, created_at, updated_at, next_attempt_at, lease_expires_at) \
         SELECT gen_random_uuid(), (ARRAY['queued','scheduled','sending','sent','failed','cancelled'])[1 + i % 6], 1, \
                '<m' || i || '@acme.test>', now(), now(), \
                CASE WHEN i % 6 IN (0, 1) THEN now() END, CASE WHEN i % 6 = 2 THEN now() END \
         FROM generate_series(1, 600) i",
    );
    db.cluster.psql(
        "INSERT INTO email_contents (email_id, content) SELECT id, jsonb_build_object('subject', message_id) FROM emails",
    );
    db.base_backup();
    db.ops.ok(&["backup", "postgres"]);
    db.cluster.psql("UPDATE emails SET status = 'sent', next_attempt_at = NULL WHERE status = 'queued' AND message_id LIKE '<m1%'");
    db.switch_and_archive();
    let redis = RedisServer::start(false);
    redis.fill(250);
    let ops = db.ops.with("REDIS_URL", redis.url());
    ops.ok(&["backup", "redis", "-m", "rdb"]);
    (db, redis, ops)
}

fn report_files(ops: &Ops) -> (String, Value) {
    let dir: PathBuf = ops.dir.path().join("reports");
    let mut md = None;
    let mut json = None;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let path = entry.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("md") => md = Some(std::fs::read_to_string(&path).unwrap()),
            Some("json") => {
                json = Some(serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap())
            }
            _ => {}
        }
        std::fs::remove_file(path).unwrap();
    }
    (md.expect("a Markdown report"), json.expect("a JSON report"))
}

fn drill(ops: &Ops, postgres: &str) -> (bool, String, Value) {
    let reports = ops.dir.path().join("reports");
    let out = ops.run(&[
        "dr",
        "drill",
        "--postgres",
        postgres,
        "--report-dir",
        reports.to_str().unwrap(),
    ]);
    let (md, json) = report_files(ops);
    (out.status.success(), md, json)
}

#[tokio::test]
async fn a_drill_on_clean_backups_passes_and_reports_what_it_measured() {
    let (_db, _redis, ops) = production_like();
    for source in ["physical", "logical"] {
        let (passed, md, json) = drill(&ops, source);
        assert!(passed, "{source}: {md}");
        assert_eq!(json["passed"], true);
        assert!(md.starts_with("# Disaster-recovery drill: PASSED"), "{md}");
        let phases = json["phases"].as_array().unwrap();
        assert!(phases.len() >= 3, "{json}");
        for p in phases {
            assert!(
                p["seconds"].as_f64().unwrap() > 0.0,
                "a measured duration: {p}"
            );
            assert_eq!(p["ok"], true, "{p}");
        }
        let components: Vec<&str> = json["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(components, ["postgres", "redis"], "{json}");
        let pg = &json["components"][0];
        let rto = pg["rto_seconds"].as_f64().unwrap();
        let measured: f64 = phases
            .iter()
            .filter(|p| p["name"].as_str().unwrap().starts_with("postgres"))
            .map(|p| p["seconds"].as_f64().unwrap())
            .sum();
        assert!(
            (rto - measured).abs() < 0.01,
            "the RTO is the phases' sum: {rto} vs {measured}"
        );
        assert!(pg["rpo_seconds"].as_f64().unwrap() < 600.0, "{pg}");
        let checks = json["checks"].as_array().unwrap();
        for name in [
            "row counts and per-table checksums",
            "terminal or can become so",
            "requeue-all",
            "key count",
        ] {
            assert!(
                checks
                    .iter()
                    .any(|c| c["name"].as_str().unwrap().contains(name) && c["ok"] == true),
                "{source}: {name} in {json}"
            );
        }
        assert!(
            checks.iter().any(|c| c["detail"]
                .as_str()
                .is_some_and(|d| d.contains("requeued into a scratch Redis"))),
            "the dispatch state is rebuilt in Redis: {json}"
        );
        assert!(md.contains("| site |"), "{md}");
    }
}

#[tokio::test]
async fn a_drill_on_a_damaged_backup_fails_and_names_the_damage() {
    let (db, _redis, ops) = production_like();
    let catalog = db.ops.catalog("file");
    let dump = catalog.iter().find(|m| m["kind"] == "postgres").unwrap();
    let object = ops.backups_dir().join(dump["object"].as_str().unwrap());
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&object, bytes).unwrap();
    let (passed, md, json) = drill(&ops, "logical");
    assert!(!passed, "{md}");
    assert!(md.starts_with("# Disaster-recovery drill: FAILED"), "{md}");
    let failures = json["failures"].as_array().unwrap();
    let named = failures.iter().any(|f| {
        let f = f.as_str().unwrap();
        f.contains(dump["id"].as_str().unwrap()) && f.contains("SHA-256")
    });
    assert!(
        named,
        "the failure names the backup and the damage: {failures:?}"
    );
    // A base backup missing a WAL segment it needs fails just as precisely.
    let base = catalog
        .iter()
        .find(|m| m["kind"] == "postgres_physical")
        .unwrap();
    let first = base["wal"]["start_segment"].as_str().unwrap();
    for f in ops
        .stored_files()
        .into_iter()
        .filter(|f| f.contains(&format!("/{first}/")))
    {
        std::fs::remove_file(ops.backups_dir().join(f)).unwrap();
    }
    let (passed, md, json) = drill(&ops, "physical");
    assert!(!passed, "{md}");
    let failures = json["failures"].to_string();
    assert!(
        failures.contains(first) && failures.contains("cannot be made consistent"),
        "{failures}"
    );
}

/// A segment lost from the middle of the archive, between the base backup
/// and the newest WAL: the drill fails and names it, and the point it says
/// recovery reached is the one the restored server replayed to (before the
/// gap), not the newest file in the archive.
#[tokio::test]
async fn a_hole_in_the_wal_archive_fails_the_drill_and_names_the_segment() {
    let (db, _redis, ops) = production_like();
    let mut segments = Vec::new();
    for batch in ["A", "B", "C"] {
        db.insert(batch, 20);
        segments.push(db.switch_and_archive());
    }
    let committed = |batch: &str| {
        let at = db.cluster.psql(&format!(
            "SELECT to_char(max(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || 'Z' \
             FROM batches WHERE batch = '{batch}'"
        ));
        chrono::DateTime::parse_from_rfc3339(&at).unwrap()
    };
    let (a, b) = (committed("A"), committed("B"));
    let missing = &segments[1];
    delete_segment(&db.ops, missing);
    let (passed, md, json) = drill(&ops, "physical");
    assert!(!passed, "{md}");
    assert!(md.starts_with("# Disaster-recovery drill: FAILED"), "{md}");
    let continuity = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().contains("continuous"))
        .unwrap();
    assert_eq!(continuity["ok"], false, "{continuity}");
    assert!(
        continuity["detail"]
            .as_str()
            .unwrap()
            .contains(missing.as_str()),
        "{continuity}"
    );
    let pg = &json["components"][0];
    let recovered =
        chrono::DateTime::parse_from_rfc3339(pg["recovered_to"].as_str().unwrap()).unwrap();
    assert!(
        recovered >= a && recovered < b,
        "recovered to {recovered}: batch A was committed at {a}, batch B (past the gap) at {b}"
    );
}

/// As a Kubernetes CronJob runs drills: each in a fresh pod. A failed drill
/// in a pod with no state keeps the last success that another pod pushed.
#[tokio::test]
async fn a_failed_drill_in_a_fresh_pod_keeps_the_last_success_on_the_pushgateway() {
    let (_db, _redis, ops) = production_like();
    let gateway = mailqueue_testkit::Pushgateway::start();
    let pod = |n: usize| {
        ops.with("MAILQUEUE_PUSHGATEWAY_URL", gateway.url()).with(
            "MAILQUEUE_BACKUP_LOCK_DIR",
            ops.dir
                .path()
                .join(format!("pod-{n}"))
                .display()
                .to_string(),
        )
    };
    let (passed, md, _) = drill(&pod(1), "logical");
    assert!(passed, "{md}");
    let pushed = || async {
        mailqueue_backup::metrics::pushed_value(
            &gateway.url(),
            "mailqueue_dr_drill",
            "mailqueue_dr_drill_last_success_timestamp_seconds",
        )
        .await
    };
    let success = pushed().await.expect("the first pod pushed its success");
    assert!(success > 0.0);
    // A pod whose drill fails: its destination holds no backup.
    std::fs::create_dir_all(ops.dir.path().join("empty")).unwrap();
    let empty = pod(2).with(
        "MAILQUEUE_BACKUP_DIR",
        ops.dir.path().join("empty").display().to_string(),
    );
    let (passed, md, _) = drill(&empty, "logical");
    assert!(!passed, "{md}");
    assert_eq!(pushed().await, Some(success), "the last success is kept");
}
