//! The promises of WAL archiving and PITR, each broken on purpose.

use crate::backup_postgres::Ops;
use crate::pitr::{query, Archived, Place, Stop};
use crate::processes::{backup_script, BIN};
use mailqueue_testkit::{give_to_server_user, postgres_bin, server_user, TempDir};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every stored copy of a WAL file, relative to the backup directory.
pub fn copies(ops: &Ops, name: &str) -> Vec<String> {
    ops.stored_files()
        .into_iter()
        .filter(|f| f.contains(&format!("/{name}/")))
        .collect()
}

#[test]
fn a_conflicting_push_is_refused_counted_and_the_original_stays() {
    let ops = Ops::for_url("postgres://unused");
    let textfile = ops.dir.path().join("textfile/mailqueue_backup.prom");
    let ops = ops.with("MAILQUEUE_METRICS_TEXTFILE", textfile.display().to_string());
    let wal = TempDir::new("pg_wal");
    for name in [
        "000000010000000000000007",
        "00000002.history",
        "000000010000000000000007.00000028.backup",
    ] {
        let file = wal.path().join(name);
        std::fs::write(&file, format!("original content of {name}").repeat(1000)).unwrap();
        let path = file.to_str().unwrap();
        ops.ok(&["wal-push", path]);
        let stored = copies(&ops, name);
        assert_eq!(stored.len(), 1, "{stored:?}");
        // PostgreSQL re-runs archive_command after a crash: the same content passes.
        ops.ok(&["wal-push", path]);
        assert_eq!(copies(&ops, name), stored);
        std::fs::write(&file, b"other content under the same name").unwrap();
        let (code, said) = ops.fails(&["wal-push", path]);
        assert_eq!(code, 1, "PostgreSQL must retry, not give up: {said}");
        assert!(
            said.contains(&format!("refusing to archive {name}"))
                && said.contains("never replaced"),
            "{said}"
        );
        assert_eq!(copies(&ops, name), stored, "the original stays, alone");
        // What was archived comes back intact.
        let back = wal.path().join("fetched");
        ops.ok(&["wal-fetch", name, back.to_str().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(&back).unwrap(),
            format!("original content of {name}").repeat(1000)
        );
    }
    // Under PostgreSQL's umask, the textfile is still readable by the
    // node-exporter's user.
    let file = wal.path().join("000000010000000000000009");
    std::fs::write(&file, b"under umask 077").unwrap();
    let mut umasked = Command::new("sh");
    umasked
        .args(["-c", "umask 077; exec \"$@\"", "sh", BIN, "wal-push"])
        .arg(&file)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in ops.env() {
        umasked.env(k, v);
    }
    assert!(umasked.status().unwrap().success());
    let prom = textfile.with_file_name("mailqueue_wal.prom");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&prom).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644, "{mode:o}");
    let metrics = std::fs::read_to_string(prom).unwrap();
    for line in [
        "mailqueue_wal_conflicts_total 3",
        "mailqueue_wal_push_failures_total 3",
        "mailqueue_wal_pushed_total 7",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
}

#[test]
fn wal_fetch_exits_1_only_for_a_missing_file() {
    let ops = Ops::for_url("postgres://unused");
    let wal = TempDir::new("pg_wal");
    let target = wal.path().join("RECOVERYXLOG");
    std::fs::create_dir_all(ops.backups_dir()).unwrap();
    let (code, _) = ops.fails(&[
        "wal-fetch",
        "000000010000000000000009",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "missing: the end of WAL");
    let (code, _) = ops.fails(&["wal-fetch", "00000005.history", target.to_str().unwrap()]);
    assert_eq!(code, 1);
    // The archive's volume is gone: not "missing", an error PostgreSQL stops on.
    std::fs::rename(ops.backups_dir(), ops.dir.path().join("unmounted")).unwrap();
    let (code, said) = ops.fails(&[
        "wal-fetch",
        "000000010000000000000009",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 126, "{said}");
    assert!(said.contains("does not exist"), "{said}");
    // An S3 that does not answer is an error too.
    let s3 = ops
        .with("MAILQUEUE_BACKUP_S3_URL", "s3://nowhere/prod")
        .with("AWS_ACCESS_KEY_ID", "x")
        .with("AWS_SECRET_ACCESS_KEY", "x")
        .with("AWS_REGION", "us-east-1")
        .with(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", mailqueue_testkit::free_port()),
        );
    let (code, said) = s3.fails(&[
        "wal-fetch",
        "-s",
        "s3",
        "000000010000000000000009",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code, 126, "{said}");
    assert!(!target.exists());
}

fn pg_ctl(data: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(postgres_bin().join("pg_ctl"));
    cmd.arg("-D")
        .arg(data)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Some((uid, gid)) = server_user() {
        cmd.uid(uid).gid(gid);
    }
    cmd.output().unwrap()
}

/// No new timeline: recovery never ended.
fn assert_not_promoted(data: &Path, log: &str) {
    assert!(
        !log.contains("selected new timeline ID"),
        "it must not promote: {log}"
    );
    assert!(!log.contains("archive recovery complete"), "{log}");
    assert!(
        !data.join("pg_wal/00000002.history").exists(),
        "a new timeline was started"
    );
}

fn cluster_state(data: &Path) -> String {
    let out = Command::new(postgres_bin().join("pg_controldata"))
        .arg(data)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Database cluster state:"))
        .unwrap_or("")
        .trim()
        .to_string()
}

#[tokio::test]
async fn recovery_with_the_archive_unreachable_stops_and_never_promotes() {
    let db = Archived::start(Place::File);
    db.base_backup();
    db.insert("A", 50);
    db.switch_and_archive();
    let home = TempDir::new("pitr");
    let data = db.empty_data_dir(&home);
    let port = mailqueue_testkit::free_port();
    let _stop = Stop(data.clone());
    let out = db.restore(&data, port, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("pg_ctl -D"),
        "prints the command to start: {}",
        text(&out)
    );
    // The archive's volume goes away before PostgreSQL starts.
    let away = db.ops.dir.path().join("unmounted");
    std::fs::rename(db.ops.backups_dir(), &away).unwrap();
    let log = home.path().join("server.log");
    give_to_server_user(home.path());
    pg_ctl(&data, &["-l", log.to_str().unwrap(), "-W", "start"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let stopped = |text: &str| {
        text.contains("database system is shut down") || text.contains("aborting startup")
    };
    while !stopped(&std::fs::read_to_string(&log).unwrap_or_default())
        || pg_ctl(&data, &["status"]).status.success()
    {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL kept running without its archive"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("wal-fetch") && logged.contains("FATAL"),
        "{logged}"
    );
    assert_not_promoted(&data, &logged);
    // Back again, recovery resumes and reaches the end of the archive.
    std::fs::rename(&away, db.ops.backups_dir()).unwrap();
    pg_ctl(
        &data,
        &["-l", log.to_str().unwrap(), "-w", "-t", "60", "start"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster_state(&data) != "in production" {
        assert!(
            Instant::now() < deadline,
            "recovery did not finish once the archive was back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        query(port, "SELECT count(*) FROM batches WHERE batch = 'A'"),
        "50"
    );
}

pub fn delete_segment(ops: &Ops, segment: &str) -> PathBuf {
    let stored = copies(ops, segment);
    assert_eq!(stored.len(), 1, "{segment}: {stored:?}");
    let path = ops.backups_dir().join(&stored[0]);
    std::fs::remove_file(&path).unwrap();
    path
}

#[tokio::test]
async fn a_missing_segment_is_reported_and_recovery_past_it_stops_clearly() {
    let db = Archived::start(Place::File);
    db.base_backup();
    let mut segments = Vec::new();
    for batch in ["A", "B", "C"] {
        db.insert(batch, 20);
        segments.push(db.switch_and_archive());
    }
    std::thread::sleep(Duration::from_millis(20));
    let after = db
        .cluster
        .psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
    db.insert("D", 1);
    db.switch_and_archive();
    let run_check = || {
        let mut cmd = backup_script("sync-wal.sh");
        for (k, v) in db.ops.env() {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let healthy = run_check();
    assert!(healthy.status.success(), "{}", text(&healthy));
    assert!(
        text(&healthy).contains("WAL archiving: OK"),
        "{}",
        text(&healthy)
    );
    let missing = &segments[1];
    delete_segment(&db.ops, missing);
    let out = run_check();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("missing from the archive since base backup")
            && text(&out).contains(missing.as_str()),
        "{}",
        text(&out)
    );
    let home = TempDir::new("pitr");
    let data = db.empty_data_dir(&home);
    let port = mailqueue_testkit::free_port();
    let _stop = Stop(data.clone());
    // To the latest WAL: refused before anything is unpacked.
    let out = db.restore(&data, port, &["--start"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("WAL segment {missing} is missing")),
        "{}",
        text(&out)
    );
    // To a time past the gap: PostgreSQL stops at it, and the command says so.
    let out = db.restore(&data, port, &["--target-time", &after, "--start"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("recovery stopped before reaching"), "{said}");
    assert_not_promoted(&data, "");
}

#[tokio::test]
async fn a_base_backup_killed_mid_stream_publishes_nothing() {
    let db = Archived::start(Place::File);
    db.cluster.psql("CREATE TABLE filler AS SELECT i, md5(i::text) || repeat('x', 200) AS pad FROM generate_series(1, 150000) i");
    let mut child = db
        .ops
        .command(&["backup", "postgres", "--physical", "--max-rate", "2M"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Wait until bytes are on their way to the destination.
    while !db
        .ops
        .stored_files()
        .iter()
        .any(|f| f.starts_with("postgresql-base/"))
    {
        assert!(
            Instant::now() < deadline,
            "the base backup never started writing"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let catalog = db.ops.catalog("file");
    assert!(catalog.is_empty(), "nothing published: {catalog:?}");
    assert!(
        !db.ops
            .stored_files()
            .iter()
            .any(|f| f.ends_with(".manifest.json")),
        "{:?}",
        db.ops.stored_files()
    );
    let out = db.ops.run(&[
        "restore",
        "postgres",
        "--pitr",
        "--data-dir",
        "/nonexistent-mq",
    ]);
    assert!(
        text(&out).contains("there is no base backup"),
        "{}",
        text(&out)
    );
    // The lock died with the process: the next run goes through.
    db.ops
        .ok(&["backup", "postgres", "--physical", "--no-figures"]);
    assert_eq!(db.ops.catalog("file").len(), 1);
    let _ = BIN;
}

#[test]
fn wal_fetch_reads_ahead_and_serves_the_next_segment_from_its_spool() {
    let ops = Ops::for_url("postgres://unused");
    let wal = TempDir::new("pg_wal");
    let names = [
        "0000000100000000000000FE",
        "0000000100000000000000FF",
        "000000010000000100000000",
    ];
    for name in names {
        let file = wal.path().join(name);
        std::fs::write(&file, name.repeat(4096)).unwrap();
        ops.ok(&["wal-push", file.to_str().unwrap()]);
        std::fs::remove_file(file).unwrap();
    }
    let pg_wal = wal.path().join("pg_wal");
    std::fs::create_dir_all(&pg_wal).unwrap();
    let target = pg_wal.join("RECOVERYXLOG");
    let fetch = |name: &str| {
        ops.ok(&[
            "wal-fetch",
            "--prefetch",
            "4",
            name,
            target.to_str().unwrap(),
        ])
    };
    fetch(names[0]);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        names[0].repeat(4096)
    );
    let spool = pg_wal.join(".mailqueue-prefetch");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(spool.join(names[1]).exists() && spool.join(names[2]).exists()) {
        assert!(Instant::now() < deadline, "the read-ahead fetched nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The archive goes away: the next segments still come, from the spool.
    std::fs::rename(ops.backups_dir(), ops.dir.path().join("gone")).unwrap();
    for name in &names[1..] {
        fetch(name);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), name.repeat(4096));
        assert!(!spool.join(name).exists(), "used once");
    }
}

/// `sync-wal.sh` as the guide runs it, with this archive's settings.
fn wal_check(db: &Archived, max_lag: &str) -> std::process::Output {
    let mut cmd = backup_script("sync-wal.sh");
    for (k, v) in db.ops.env() {
        cmd.env(k, v);
    }
    cmd.args(["-l", max_lag]).output().unwrap()
}

/// What the WAL check must see: commits that sit only in the segment being
/// written, an archive whose newest segments were deleted, and an
/// `archive_timeout` that leaves a quiet server's RPO unbounded.
#[tokio::test]
async fn the_wal_check_sees_unarchived_commits_a_missing_tail_and_no_archive_timeout() {
    let db = Archived::start(Place::File);
    db.base_backup();
    db.insert("A", 10);
    let archived = db.switch_and_archive();
    let healthy = wal_check(&db, "900");
    assert_eq!(healthy.status.code(), Some(0), "{}", text(&healthy));
    assert!(
        text(&healthy).contains("WAL archiving: OK"),
        "{}",
        text(&healthy)
    );

    // Committed, and only in the segment being written.
    std::thread::sleep(Duration::from_millis(2100));
    db.insert("B", 15);
    let exposed = wal_check(&db, "1");
    assert_eq!(exposed.status.code(), Some(1), "{}", text(&exposed));
    assert!(
        text(&exposed).contains("are not archived") && text(&exposed).contains("would lose"),
        "{}",
        text(&exposed)
    );
    db.switch_and_archive();

    // The newest archived segment is gone from the archive.
    let newest = db.switch_and_archive();
    delete_segment(&db.ops, &newest);
    let tail = wal_check(&db, "900");
    assert_eq!(tail.status.code(), Some(1), "{}", text(&tail));
    assert!(
        text(&tail).contains(&format!("PostgreSQL archived up to {newest}")),
        "{}",
        text(&tail)
    );
    assert!(archived < newest);

    // A new archive without the hole, and no archive_timeout: a warning.
    let db = Archived::start(Place::File);
    db.base_backup();
    db.cluster.psql("ALTER SYSTEM SET archive_timeout = 0");
    db.cluster.psql("SELECT pg_reload_conf()");
    let warned = wal_check(&db, "900");
    assert_eq!(warned.status.code(), Some(3), "{}", text(&warned));
    assert!(
        text(&warned).contains("archive_timeout is 0"),
        "{}",
        text(&warned)
    );
}

/// An `archive_command` that names no archive: `wal-push` refuses with one
/// line, so PostgreSQL keeps the segment and retries, and nothing is
/// written inside the data directory, named or by default.
#[tokio::test]
async fn wal_push_without_a_named_archive_fails_and_never_writes_into_the_data_directory() {
    let cluster = mailqueue_testkit::TestCluster::start(&[
        ("archive_mode", "on"),
        ("archive_command", &format!("{BIN} wal-push %p")),
    ]);
    let segment = cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn()) FROM pg_switch_wal()");
    let deadline = Instant::now() + Duration::from_secs(30);
    while cluster.psql("SELECT coalesce(last_failed_wal, '') FROM pg_stat_archiver") != segment {
        assert!(
            Instant::now() < deadline,
            "the archiver never tried {segment}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        cluster.psql("SELECT archived_count FROM pg_stat_archiver"),
        "0",
        "nothing was archived anywhere"
    );
    assert!(!cluster.data_dir().join("backups").exists());

    // Run by hand in the data directory, as PostgreSQL runs it.
    let segment_path = format!("pg_wal/{segment}");
    let run = |env: &[(&str, &str)]| {
        let mut cmd = crate::processes::clean_command(BIN);
        cmd.current_dir(cluster.data_dir())
            .args(["wal-push", &segment_path]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let unnamed = run(&[]);
    assert_eq!(unnamed.status.code(), Some(1), "{}", text(&unnamed));
    let said = String::from_utf8_lossy(&unnamed.stderr).to_string();
    assert_eq!(said.trim().lines().count(), 1, "one line: {said}");
    assert!(said.contains("MAILQUEUE_BACKUP_DIR"), "{said}");
    let inside = run(&[("MAILQUEUE_BACKUP_DIR", "./backups")]);
    assert_eq!(inside.status.code(), Some(1), "{}", text(&inside));
    assert!(
        text(&inside).contains("inside the PostgreSQL data directory"),
        "{}",
        text(&inside)
    );
    assert!(!cluster.data_dir().join("backups").exists());
}

/// The recipe of deploy/kubernetes/postgres-archiving.yaml: the binary
/// copied out of its image into a directory of the server's, run by the
/// server as `archive_command`, archives (the copy needs nothing beside it).
#[tokio::test]
async fn the_binary_copied_beside_the_server_archives_its_wal() {
    let home = TempDir::new("copied-binary");
    let copy = home.path().join("mailqueue");
    std::fs::copy(BIN, &copy).unwrap();
    give_to_server_user(home.path());
    let db = Archived::start_with_binary(Place::File, copy.to_str().unwrap());
    db.insert("A", 5);
    let segment = db.switch_and_archive();
    assert_eq!(copies(&db.ops, &segment).len(), 1);
}
