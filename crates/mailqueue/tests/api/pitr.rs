//! Point-in-time recovery end to end, on a private cluster per test with
//! WAL archiving through `mailqueue wal-push`, to every destination; and
//! the faults under its promises: a conflicting segment, an unreachable
//! archive during recovery, a segment missing in the middle, a base
//! backup killed mid-stream.

use crate::backup_postgres::Ops;
use crate::processes::BIN;
use mailqueue_testkit::{give_to_server_user, GcsEmulator, S3Server, TempDir, TestCluster};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where a test archives: the directory, moto's S3, or the GCS emulator.
pub enum Place {
    File,
    S3(S3Server),
    Gcs(GcsEmulator),
}

impl Place {
    pub fn flag(&self) -> &'static str {
        match self {
            Place::File => "file",
            Place::S3(_) => "s3",
            Place::Gcs(_) => "gcs",
        }
    }

    pub fn s3() -> Self {
        let s3 = S3Server::start();
        s3.create_bucket("mailqueue-backups");
        Place::S3(s3)
    }

    pub fn gcs() -> Self {
        Place::Gcs(GcsEmulator::start("mailqueue-backups"))
    }
}

/// A cluster archiving its WAL with `mailqueue wal-push`, and the
/// operations that back it up and restore it.
pub struct Archived {
    pub cluster: TestCluster,
    pub ops: Ops,
    pub place: Place,
}

impl Archived {
    pub fn start(place: Place) -> Self {
        Self::start_with_binary(place, BIN)
    }

    /// [`Self::start`] with `archive_command` running the binary at `bin`.
    pub fn start_with_binary(place: Place, bin: &str) -> Self {
        let mut ops = Ops::for_url("postgres://unset");
        let mut env: Vec<(&'static str, String)> = Vec::new();
        match &place {
            Place::File => {}
            Place::S3(s3) => {
                env.push((
                    "MAILQUEUE_BACKUP_S3_URL",
                    "s3://mailqueue-backups/prod".into(),
                ));
                env.extend(s3.env());
            }
            Place::Gcs(gcs) => {
                env.push((
                    "MAILQUEUE_BACKUP_GCS_URL",
                    "gs://mailqueue-backups/prod".into(),
                ));
                env.extend(gcs.env());
            }
        }
        for (k, v) in &env {
            ops = ops.with(k, v.clone());
        }
        // The server's user writes the archive and the WAL metrics.
        for dir in ["backups", "locks"] {
            std::fs::create_dir_all(ops.dir.path().join(dir)).unwrap();
        }
        give_to_server_user(ops.dir.path());
        let archive_command = format!(
            "env {} {bin} wal-push -u {} %p",
            ops.env()
                .iter()
                .filter(|(k, _)| *k != "DATABASE_URL")
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            place.flag()
        );
        let cluster = TestCluster::start(&[
            ("archive_mode", "on"),
            ("archive_command", &archive_command),
            ("archive_timeout", "60"),
        ]);
        let ops = ops.with("DATABASE_URL", cluster.url());
        cluster.psql("CREATE TABLE batches (id serial PRIMARY KEY, batch text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())");
        Self {
            cluster,
            ops,
            place,
        }
    }

    pub fn insert(&self, batch: &str, rows: u32) {
        self.cluster.psql(&format!(
            "INSERT INTO batches (batch) SELECT '{batch}' FROM generate_series(1, {rows})"
        ));
    }

    /// Switches to a new segment and waits until the closed one is archived.
    pub fn switch_and_archive(&self) -> String {
        let segment = self
            .cluster
            .psql("SELECT pg_walfile_name(pg_current_wal_lsn()) FROM pg_switch_wal()");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = self
                .cluster
                .psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver");
            if last >= segment {
                return segment;
            }
            let failed = self
                .cluster
                .psql("SELECT coalesce(last_failed_wal, '') FROM pg_stat_archiver");
            assert!(
                Instant::now() < deadline,
                "{segment} was not archived (last archived {last}, last failed {failed})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn base_backup(&self) -> String {
        self.ops
            .ok(&["backup", "postgres", "--physical", "-u", self.place.flag()])
    }

    /// An empty directory for a restored cluster, owned by the server's user.
    pub fn empty_data_dir(&self, home: &TempDir) -> PathBuf {
        let dir = home.path().join("restored");
        std::fs::create_dir_all(&dir).unwrap();
        give_to_server_user(home.path());
        dir
    }

    pub fn restore(&self, data_dir: &Path, port: u16, extra: &[&str]) -> std::process::Output {
        let port = port.to_string();
        let mut args = vec![
            "restore",
            "postgres",
            "--pitr",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--port",
            &port,
            "--no-archive",
            "-s",
            self.place.flag(),
        ];
        args.extend_from_slice(extra);
        self.ops.run(&args)
    }
}

/// psql against a restored cluster on `port`.
pub fn query(port: u16, sql: &str) -> String {
    let out = std::process::Command::new(mailqueue_testkit::postgres_bin().join("psql"))
        .args([
            "-X",
            "-At",
            "-d",
            &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Stops a restored cluster.
pub struct Stop(pub PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        let mut cmd = std::process::Command::new(mailqueue_testkit::postgres_bin().join("pg_ctl"));
        cmd.arg("-D")
            .arg(&self.0)
            .args(["-m", "immediate", "-w", "stop"]);
        if let Some((uid, gid)) = mailqueue_testkit::server_user() {
            std::os::unix::process::CommandExt::uid(&mut cmd, uid);
            std::os::unix::process::CommandExt::gid(&mut cmd, gid);
        }
        let _ = cmd.output();
    }
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Base backup, batch A, the noted time, batch B; recovery to the noted
/// time has A and not B.
async fn pitr_to_a_noted_time(place: Place) {
    let db = Archived::start(place);
    db.insert("before", 10);
    let said = db.base_backup();
    assert!(said.contains("WAL from"), "{said}");
    db.insert("A", 100);
    std::thread::sleep(Duration::from_millis(50));
    let noted = db
        .cluster
        .psql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
    std::thread::sleep(Duration::from_millis(50));
    db.insert("B", 100);
    db.switch_and_archive();
    let home = TempDir::new("pitr");
    let data = db.empty_data_dir(&home);
    let port = mailqueue_testkit::free_port();
    let _stop = Stop(data.clone());
    let out = db.restore(&data, port, &["--target-time", &noted, "--start"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        query(port, "SELECT count(*) FROM batches WHERE batch = 'A'"),
        "100"
    );
    assert_eq!(
        query(port, "SELECT count(*) FROM batches WHERE batch = 'before'"),
        "10"
    );
    assert_eq!(
        query(port, "SELECT count(*) FROM batches WHERE batch = 'B'"),
        "0"
    );
    assert_eq!(query(port, "SELECT pg_is_in_recovery()"), "f", "promoted");
}

#[tokio::test]
async fn pitr_restores_to_a_noted_time_from_a_directory() {
    pitr_to_a_noted_time(Place::File).await;
}

#[tokio::test]
async fn pitr_restores_to_a_noted_time_from_s3() {
    pitr_to_a_noted_time(Place::s3()).await;
}

#[tokio::test]
async fn pitr_restores_to_a_noted_time_from_gcs() {
    pitr_to_a_noted_time(Place::gcs()).await;
}

#[tokio::test]
async fn pitr_refuses_a_non_empty_directory_and_a_target_before_every_base_backup() {
    let db = Archived::start(Place::File);
    db.insert("A", 1);
    db.base_backup();
    let home = TempDir::new("pitr");
    let data = db.empty_data_dir(&home);
    std::fs::write(data.join("stray"), b"x").unwrap();
    let out = db.restore(&data, 1, &["--target-time", "2099-01-01 00:00:00+00"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("is not empty"), "{}", text(&out));
    std::fs::remove_file(data.join("stray")).unwrap();
    let out = db.restore(&data, 1, &["--target-time", "2001-01-01 00:00:00+00"]);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("older than every base backup"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one clear line: {said}");
    assert!(is_empty(&data), "nothing was unpacked");
    // A target in the future, or after the newest archived WAL, is refused
    // before anything is unpacked (not when the server starts).
    let out = db.restore(
        &data,
        1,
        &["--target-time", "2099-01-01 00:00:00+00", "--start"],
    );
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("is in the future"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one clear line: {said}");
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500))
        .format("%Y-%m-%d %H:%M:%S%.3f+00")
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(1600));
    let out = db.restore(&data, 1, &["--target-time", &soon, "--start"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("cannot reach it until more WAL is archived"),
        "{}",
        text(&out)
    );
    assert!(is_empty(&data), "nothing was unpacked");
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}
