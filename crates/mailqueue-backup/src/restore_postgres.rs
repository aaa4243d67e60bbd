//! `mailqueue restore postgres latest|<id>`: reads the backup (checking its
//! SHA-256), writes the plain dump to a private temporary file only after
//! the checks pass and runs `pg_restore` in parallel; with `--check-counts`
//! it then counts every table of the manifest and fails on any difference.

use crate::catalog;
use crate::destination::Destination;
use crate::error::BackupError;
use crate::kind::BackupKind;
use crate::manifest::Manifest;
use crate::postgres::{
    create_database, current_row_counts, database_is_empty, db_error, wait_tool, with_database,
};
use crate::reading::{write_plaintext, Scratch};
use sqlx::Connection;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct PostgresRestoreOptions {
    pub target_url: String,
    /// Restore into a database that has tables (dropping what the dump
    /// recreates). Without it a non-empty target is refused.
    pub force: bool,
    pub jobs: u32,
    /// Where the temporary plain dump is written (mode 0600, removed after).
    pub work_dir: PathBuf,
    /// Count every table afterwards and compare with the manifest. The
    /// checksum already proves the dump is the one backed up; counting
    /// also proves pg_restore loaded all of it, at the cost of a full scan.
    pub compare_counts: bool,
    /// Create the target database when the server has none of that name
    /// (a fresh server after losing the old one); without it, that is
    /// refused with the command to create it.
    pub create: bool,
}

pub async fn restore_postgres(
    dest: &Destination,
    selector: &str,
    opts: &PostgresRestoreOptions,
) -> Result<Manifest, BackupError> {
    let manifest = catalog::find(dest, BackupKind::Postgres, selector).await?;
    ensure_target_exists(&opts.target_url, opts.create).await?;
    if !opts.force && !database_is_empty(&opts.target_url).await? {
        return Err(BackupError::Refused(
            "the target database is not empty; pass --force to restore over it".into(),
        ));
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(|e| BackupError::io(format!("creating {}", opts.work_dir.display()), e))?;
    let dump = Scratch::new(&opts.work_dir, &format!("restore-{}.dump", manifest.id));
    restore_via(dest, &manifest, opts, dump.path()).await?;
    drop(dump);
    if opts.compare_counts {
        compare_counts(&manifest, &opts.target_url).await?;
    }
    Ok(manifest)
}

/// Creates the target database when asked to and it is missing; refuses,
/// with the command that mends it, when it is missing and not to be made.
async fn ensure_target_exists(target_url: &str, create: bool) -> Result<(), BackupError> {
    let parsed = url::Url::parse(target_url)
        .map_err(|e| BackupError::Config(format!("the restore target is not a URL: {e}")))?;
    let name = parsed.path().trim_start_matches('/').to_string();
    if name.is_empty() {
        return Ok(());
    }
    let admin = with_database(target_url, "postgres")?;
    let mut conn = crate::postgres::connect(&admin)
        .await
        .map_err(|e| db_error("connecting to the restore target's server", e))?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| db_error("listing the server's databases", e))?;
    let _ = conn.close().await;
    match (exists, create) {
        (true, _) => Ok(()),
        (false, true) => create_database(&admin, &name).await,
        (false, false) => Err(BackupError::Refused(format!(
            "the server has no database `{name}`; create it (`createdb {name}`, as its owner) \
             or pass --create"
        ))),
    }
}

/// Counts the restored tables and compares them with the manifest.
pub async fn compare_counts(manifest: &Manifest, target_url: &str) -> Result<(), BackupError> {
    let restored = current_row_counts(target_url).await?;
    let differing: Vec<String> = manifest
        .row_counts
        .iter()
        .filter(|(table, n)| restored.get(*table) != Some(n))
        .map(|(table, n)| {
            format!(
                "{table}: {} restored, {n} backed up",
                restored.get(table).copied().unwrap_or(0)
            )
        })
        .collect();
    if !differing.is_empty() {
        return Err(manifest.corrupt(format!(
            "restored row counts differ: {}",
            differing.join(", ")
        )));
    }
    Ok(())
}

async fn restore_via(
    dest: &Destination,
    manifest: &Manifest,
    opts: &PostgresRestoreOptions,
    dump: &std::path::Path,
) -> Result<(), BackupError> {
    let fetched = std::time::Instant::now();
    write_plaintext(dest, manifest, dump, false).await?;
    tracing::info!(
        seconds = fetched.elapsed().as_secs_f64(),
        "backup fetched, checked and decrypted"
    );
    let mut cmd = Command::new("pg_restore");
    cmd.args(["--no-owner", "--exit-on-error", "--no-password"])
        .arg(format!("--jobs={}", opts.jobs.max(1)))
        .arg(format!("--dbname={}", opts.target_url));
    if opts.force {
        cmd.args(["--clean", "--if-exists"]);
    }
    let child = cmd
        .arg(dump)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(BackupError::cannot_start("pg_restore"))?;
    tokio::task::spawn_blocking(move || wait_tool("pg_restore", child))
        .await
        .map_err(|e| BackupError::Io(format!("pg_restore stopped: {e}")))?
}
