//! PostgreSQL backups through the real binary, as an operator runs them,
//! checked with stock gpg, zstd, gzip and pg_restore.

use crate::processes::{clean_command, succeeded, BIN};
use mailqueue_testkit::{GcsEmulator, GpgHome, S3Server, TempDir, TestDatabase};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A source database with mailqueue's schema and some rows.
pub async fn seeded_database() -> TestDatabase {
    let db = TestDatabase::create().await;
    let out = clean_command(BIN)
        .env("DATABASE_URL", &db.url)
        .arg("migrate")
        .output()
        .unwrap();
    succeeded(out, "migrate");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    for sql in [
        "INSERT INTO emails (id, status, priority, message_id, created_at, updated_at, next_attempt_at) \
         SELECT gen_random_uuid(), 'queued', 1, '<m' || i || '@acme.test>', now(), now(), now() FROM generate_series(1, 300) i",
        "INSERT INTO email_contents (email_id, content) \
         SELECT id, jsonb_build_object('subject', 'Grüße ' || message_id, 'text', repeat('body ', 50)) FROM emails",
        "INSERT INTO api_keys SELECT gen_random_uuid(), 'k' || i, 'mq_x', decode(md5(i::text), 'hex'), now() \
         FROM generate_series(1, 7) i",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    db
}

#[derive(Clone)]
pub struct Ops {
    pub dir: std::sync::Arc<TempDir>,
    env: Vec<(&'static str, String)>,
}

impl Ops {
    pub fn new(db: &TestDatabase) -> Self {
        Self::for_url(&db.url)
    }

    /// Operations on the database at `url`.
    pub fn for_url(url: &str) -> Self {
        let dir = TempDir::new("backup-ops");
        let env = vec![
            ("DATABASE_URL", url.to_string()),
            (
                "MAILQUEUE_BACKUP_DIR",
                dir.path().join("backups").display().to_string(),
            ),
            (
                "MAILQUEUE_BACKUP_LOCK_DIR",
                dir.path().join("locks").display().to_string(),
            ),
        ];
        Self {
            dir: std::sync::Arc::new(dir),
            env,
        }
    }

    /// The same directories with one variable set.
    pub fn with(&self, name: &'static str, value: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.env.retain(|(k, _)| *k != name);
        next.env.push((name, value.into()));
        next
    }

    pub fn env(&self) -> &[(&'static str, String)] {
        &self.env
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = clean_command(BIN);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(self.run(args), args)
    }

    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "{args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    pub fn backups_dir(&self) -> PathBuf {
        self.dir.path().join("backups")
    }

    /// Every stored file, relative to the backup directory.
    pub fn stored_files(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.backups_dir(), &self.backups_dir(), &mut out);
        out.sort();
        out
    }

    pub fn catalog(&self, source: &str) -> Vec<Value> {
        serde_json::from_str::<Vec<Value>>(&self.ok(&["backups", "list", "--json", "-s", source]))
            .unwrap()
    }
}

async fn row_count(url: &str, table: &str) -> i64 {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

fn pipe(cmd: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success(), "{cmd} failed");
    out.stdout
}

#[tokio::test]
async fn an_encrypted_backup_opens_with_stock_gpg_zstd_and_pg_restore() {
    let db = seeded_database().await;
    let gpg = GpgHome::with_key();
    let ops = Ops::new(&db)
        .with("GNUPGHOME", gpg.path().display().to_string())
        .with("GPG_RECIPIENT", gpg.recipient.clone());
    let said = ops.ok(&["backup", "postgres", "-c", "zstd", "-e"]);
    assert!(said.contains("Backup mailqueue_"), "{said}");
    let files = ops.stored_files();
    assert_eq!(files.len(), 2, "the object and its manifest: {files:?}");
    let object = files
        .iter()
        .find(|f| f.ends_with(".dump.zst.gpg"))
        .expect("the guide's naming");
    assert!(object.starts_with("postgresql/"), "{object}");
    // Stock tools: gpg --decrypt | zstd -d | pg_restore.
    let plain = pipe(
        "zstd",
        &["-dc"],
        &gpg.decrypt(&ops.backups_dir().join(object)),
    );
    let dump = ops.dir.path().join("plain.dump");
    std::fs::write(&dump, &plain).unwrap();
    let target = TestDatabase::create().await;
    let restored = Command::new("pg_restore")
        .arg(format!("--dbname={}", target.url))
        .arg("--no-owner")
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(row_count(&target.url, "emails").await, 300);
    assert_eq!(row_count(&target.url, "email_contents").await, 300);
    // The manifest records what is in the dump.
    let catalog = ops.catalog("file");
    let m = &catalog[0];
    assert_eq!(m["kind"], "postgres");
    assert_eq!(m["compression"], "zstd");
    assert_eq!(m["row_counts"]["emails"], 300);
    assert_eq!(m["row_counts"]["api_keys"], 7);
    assert_eq!(m["encryption_recipients"].as_array().unwrap().len(), 1);
    assert!(m["source_version"]
        .as_str()
        .unwrap()
        .starts_with("PostgreSQL "));
    let stored = std::fs::read(ops.backups_dir().join(object)).unwrap();
    assert_eq!(m["size_bytes"], stored.len());
    let sha = hex_sha256(&stored);
    assert_eq!(m["sha256"], sha);
    // mailqueue's own restore and verify agree.
    let verified = ops.ok(&["verify", "latest", "--restore"]);
    assert!(verified.contains(": OK"), "{verified}");
    let empty = TestDatabase::create().await;
    let said = ops.ok(&[
        "restore",
        "postgres",
        "latest",
        "--database",
        &empty.name,
        "--check-counts",
    ]);
    assert!(said.contains("counts match"), "{said}");
    assert_eq!(row_count(&empty.url, "emails").await, 300);
}

fn hex_sha256(bytes: &[u8]) -> String {
    let out = pipe("sha256sum", &[], bytes);
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn s3_backups_follow_the_guides_layout_and_restore() {
    let db = seeded_database().await;
    let s3 = S3Server::start();
    s3.create_bucket("mailqueue-backups");
    let mut ops = Ops::new(&db).with("MAILQUEUE_BACKUP_S3_URL", "s3://mailqueue-backups/prod");
    for (k, v) in s3.env() {
        ops = ops.with(k, v);
    }
    ops.ok(&["backup", "postgres", "-c", "gzip", "-u", "s3"]);
    assert!(
        ops.stored_files().is_empty(),
        "nothing lands in the local directory"
    );
    let catalog = ops.catalog("s3");
    assert_eq!(catalog.len(), 1);
    let object = catalog[0]["object"].as_str().unwrap();
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        object.starts_with(&format!("postgresql/{day}/mailqueue_")) && object.ends_with(".dump.gz"),
        "{object}"
    );
    let target = TestDatabase::create().await;
    ops.ok(&[
        "restore",
        "postgres",
        "latest",
        "--database",
        &target.name,
        "-s",
        "s3",
    ]);
    assert_eq!(row_count(&target.url, "emails").await, 300);
    assert!(ops.ok(&["verify", "-s", "s3"]).contains(": OK"));
}

#[tokio::test]
async fn gcs_backups_follow_the_guides_layout_restore_and_prune() {
    let db = seeded_database().await;
    let gcs = GcsEmulator::start("mailqueue-backups");
    let gpg = GpgHome::with_key();
    let mut ops = Ops::new(&db)
        .with("MAILQUEUE_BACKUP_GCS_URL", "gs://mailqueue-backups/prod")
        .with("GPG_RECIPIENT", gpg.recipient.clone())
        .with("GNUPGHOME", gpg.path().display().to_string());
    for (k, v) in gcs.env() {
        ops = ops.with(k, v);
    }
    ops.ok(&["backup", "postgres", "-e", "-u", "gcs"]);
    ops.ok(&["backup", "postgres", "-c", "gzip", "-u", "gcs"]);
    assert!(
        ops.stored_files().is_empty(),
        "nothing lands in the local directory"
    );
    let catalog = ops.catalog("gcs");
    assert_eq!(catalog.len(), 2, "{catalog:?}");
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let objects: Vec<&str> = catalog
        .iter()
        .map(|m| m["object"].as_str().unwrap())
        .collect();
    assert!(
        objects
            .iter()
            .all(|o| o.starts_with(&format!("postgresql/{day}/mailqueue_"))),
        "{objects:?}"
    );
    assert!(
        objects.iter().any(|o| o.ends_with(".dump.zst.gpg")),
        "{objects:?}"
    );
    assert!(
        objects.iter().any(|o| o.ends_with(".dump.gz")),
        "{objects:?}"
    );
    // What GCS holds is what the manifest describes, byte for byte.
    for m in &catalog {
        let object = m["object"].as_str().unwrap();
        let stored = gcs.download(&format!("prod/{object}"));
        assert_eq!(stored.len() as u64, m["size_bytes"].as_u64().unwrap());
        assert_eq!(hex_sha256(&stored), m["sha256"].as_str().unwrap());
    }
    let encrypted = catalog
        .iter()
        .find(|m| m["object"].as_str().unwrap().ends_with(".gpg"))
        .unwrap();
    let target = TestDatabase::create().await;
    ops.ok(&[
        "restore",
        "postgres",
        encrypted["id"].as_str().unwrap(),
        "--database",
        &target.name,
        "-s",
        "gcs",
    ]);
    assert_eq!(row_count(&target.url, "emails").await, 300);
    let verified = ops.ok(&["verify", "-s", "gcs"]);
    assert!(verified.contains(": OK"), "{verified}");
    // Both are from today: the daily slot keeps the newer one.
    ops.ok(&[
        "backups", "prune", "--kind", "postgres", "-r", "0", "-s", "gcs",
    ]);
    let kept = ops.catalog("gcs");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["id"], catalog[1]["id"]);
    assert!(gcs
        .list("prod/")
        .iter()
        .all(|name| name.contains(kept[0]["id"].as_str().unwrap())));
}

#[tokio::test]
async fn an_unreachable_gcs_destination_fails_loudly_and_publishes_nothing() {
    let db = seeded_database().await;
    let mut gcs = GcsEmulator::start("mailqueue-backups");
    let mut ops = Ops::new(&db).with("MAILQUEUE_BACKUP_GCS_URL", "gs://mailqueue-backups/prod");
    for (k, v) in gcs.env() {
        ops = ops.with(k, v);
    }
    gcs.stop();
    let (code, err) = ops.fails(&["backup", "postgres", "-u", "gcs"]);
    assert_ne!(code, 0);
    assert!(err.contains("gs://mailqueue-backups/prod"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[tokio::test]
async fn a_failing_pg_dump_publishes_nothing() {
    let db = seeded_database().await;
    let ops = Ops::new(&db).with("DATABASE_URL", format!("{}_missing", db.url));
    let (_, said) = ops.fails(&["backup", "postgres"]);
    assert!(said.contains("error:"), "{said}");
    assert_eq!(said.trim().lines().count(), 1, "one clear line: {said}");
    assert!(ops.stored_files().is_empty(), "{:?}", ops.stored_files());
    assert!(ops.catalog("file").is_empty());
}

#[tokio::test]
async fn a_missing_recipient_key_stores_nothing() {
    let db = seeded_database().await;
    let gpg = GpgHome::with_key();
    let ops = Ops::new(&db)
        .with("GNUPGHOME", gpg.path().display().to_string())
        .with("GPG_RECIPIENT", "nobody@nowhere.test");
    let (_, said) = ops.fails(&["backup", "postgres", "-e"]);
    assert!(
        said.contains("no public key for GPG_RECIPIENT `nobody@nowhere.test`"),
        "{said}"
    );
    let (_, said) = Ops::new(&db).fails(&["backup", "postgres", "-e"]);
    assert!(said.contains("GPG_RECIPIENT"), "{said}");
    assert!(ops.stored_files().is_empty());
}

#[tokio::test]
async fn damaged_backups_fail_verify_and_restore_with_a_precise_error() {
    let db = seeded_database().await;
    let gpg = GpgHome::with_key();
    let ops = Ops::new(&db)
        .with("GNUPGHOME", gpg.path().display().to_string())
        .with("GPG_RECIPIENT", gpg.recipient.clone());
    ops.ok(&["backup", "postgres", "-c", "gzip"]);
    ops.ok(&["backup", "postgres", "-e"]);
    let files = ops.stored_files();
    let plain = ops
        .backups_dir()
        .join(files.iter().find(|f| f.ends_with(".dump.gz")).unwrap());
    let sealed = ops
        .backups_dir()
        .join(files.iter().find(|f| f.ends_with(".gpg")).unwrap());
    // One flipped byte in the gzip object.
    let mut bytes = std::fs::read(&plain).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&plain, &bytes).unwrap();
    // The encrypted object cut short.
    let sealed_bytes = std::fs::read(&sealed).unwrap();
    std::fs::write(&sealed, &sealed_bytes[..sealed_bytes.len() * 2 / 3]).unwrap();
    let (code, said) = ops.fails(&["verify", "all"]);
    assert_eq!(code, 1);
    assert!(
        said.contains("2 of 2 backups failed verification"),
        "{said}"
    );
    assert!(said.contains("is corrupt: its SHA-256 is"), "{said}");
    assert!(said.contains(".gpg is corrupt"), "{said}");
    let target = TestDatabase::create().await;
    for id in ops
        .catalog("file")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
    {
        let (_, said) = ops.fails(&["restore", "postgres", &id, "--database", &target.name]);
        assert!(said.contains("corrupt"), "{said}");
    }
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&target.url)
        .await
        .unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, 0, "nothing was restored from a damaged backup");
}

#[tokio::test]
async fn decrypting_without_the_secret_key_says_so() {
    let db = seeded_database().await;
    let gpg = GpgHome::with_key();
    let ops = Ops::new(&db)
        .with("GNUPGHOME", gpg.path().display().to_string())
        .with("GPG_RECIPIENT", gpg.recipient.clone());
    ops.ok(&["backup", "postgres", "-e"]);
    let stranger = GpgHome::empty();
    let ops = ops.with("GNUPGHOME", stranger.path().display().to_string());
    let (_, said) = ops.fails(&["verify"]);
    assert!(said.contains("no secret key for this backup"), "{said}");
    assert!(
        !said.contains("corrupt"),
        "a missing key is not a damaged backup: {said}"
    );
}

#[tokio::test]
async fn one_backup_of_a_kind_runs_at_a_time_and_a_dead_runs_lock_is_taken_over() {
    let db = seeded_database().await;
    let ops = Ops::new(&db);
    let locks = ops.dir.path().join("locks");
    let held =
        mailqueue_backup::lock::BackupLock::acquire(&locks, mailqueue_backup::BackupKind::Postgres)
            .unwrap();
    let (_, said) = ops.fails(&["backup", "postgres"]);
    assert!(
        said.contains("another postgres backup is running"),
        "{said}"
    );
    assert!(ops.stored_files().is_empty());
    drop(held);
    // A killed run leaves its lock file behind, with no process holding it.
    std::fs::write(
        locks.join("mailqueue-backup-postgres.lock"),
        "pid 4242 since 2026-01-01T00:00:00Z",
    )
    .unwrap();
    let out = ops.run(&["backup", "postgres"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("taking over the lock") && log.contains("pid 4242"),
        "{log}"
    );
    assert_eq!(ops.catalog("file").len(), 1);
}

#[tokio::test]
async fn restore_refuses_a_database_with_tables_unless_forced() {
    let db = seeded_database().await;
    let ops = Ops::new(&db);
    ops.ok(&["backup", "postgres"]);
    let (_, said) = ops.fails(&["restore", "postgres", "latest"]);
    assert!(said.contains("not empty; pass --force"), "{said}");
    assert_eq!(
        row_count(&db.url, "emails").await,
        300,
        "the database was left alone"
    );
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query("DELETE FROM email_contents WHERE email_id IN (SELECT id FROM emails LIMIT 100)")
        .execute(&mut conn)
        .await
        .unwrap();
    ops.ok(&["restore", "postgres", "latest", "--force"]);
    assert_eq!(
        row_count(&db.url, "email_contents").await,
        300,
        "the backup's rows are back"
    );
    let (_, said) = ops.fails(&["restore", "postgres", "mailqueue_19990101_000000"]);
    assert!(said.contains("no backup matches"), "{said}");
}

#[tokio::test]
async fn a_pg_dump_killed_midway_publishes_nothing_and_counts_a_failure() {
    let db = seeded_database().await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    // Some 50 MB, so pg_dump is still running when it is killed.
    sqlx::query(
        "WITH ids AS (INSERT INTO emails (id, status, priority, message_id, created_at, updated_at, next_attempt_at) \
         SELECT gen_random_uuid(), 'sent', 1, '<big@acme.test>', now(), now(), now() FROM generate_series(1, 40000) \
         RETURNING id) \
         INSERT INTO email_contents SELECT id, jsonb_build_object('text', repeat(md5(random()::text), 40)) FROM ids",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let textfile = TempDir::new("textfile");
    let ops = Ops::new(&db).with(
        "MAILQUEUE_METRICS_TEXTFILE",
        textfile.path().join("backup.prom").display().to_string(),
    );
    let mut child = ops
        .command(&["backup", "postgres"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let killed = loop {
        let found = Command::new("pgrep")
            .args(["-f", &format!("pg_dump.*{}", db.name)])
            .output()
            .unwrap();
        if let Some(pid) = String::from_utf8_lossy(&found.stdout)
            .split_whitespace()
            .next()
        {
            Command::new("kill").args(["-KILL", pid]).status().unwrap();
            break true;
        }
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    assert!(killed, "pg_dump ended before it could be killed");
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("pg_dump failed"), "{said}");
    assert!(ops.stored_files().is_empty(), "{:?}", ops.stored_files());
    let metrics = std::fs::read_to_string(textfile.path().join("backup.prom")).unwrap();
    assert!(
        metrics.contains("mailqueue_backup_failure_total{kind=\"postgres\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mailqueue_backup_success_total{kind=\"postgres\"} 0"),
        "{metrics}"
    );
}

/// Restoring to a server that has no database of the target's name (a new
/// server after losing the old one) says how to create it, and `--create`
/// does.
#[tokio::test]
async fn a_missing_target_database_is_named_or_created() {
    let db = seeded_database().await;
    let ops = Ops::new(&db);
    ops.ok(&["backup", "postgres"]);
    let name = format!("restored_{}", mailqueue_testkit::unique_suffix());
    let (code, said) = ops.fails(&["restore", "postgres", "latest", "--database", &name]);
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains(&format!("no database `{name}`")) && said.contains("--create"),
        "{said}"
    );
    let said = ops.ok(&[
        "restore",
        "postgres",
        "latest",
        "--database",
        &name,
        "--create",
    ]);
    assert!(said.contains("Restored"), "{said}");
    let mut admin = db.admin().await;
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
