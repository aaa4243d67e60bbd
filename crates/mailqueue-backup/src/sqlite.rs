//! The embedded store: a consistent copy is taken with `VACUUM INTO` while
//! the server keeps running (SQLite gives the statement a read snapshot),
//! next to the database, streamed through the common pipeline and removed.
//! Restores write to a temporary file, check it with `PRAGMA
//! integrity_check`, and only then replace the database.

use crate::catalog;
use crate::destination::Destination;
use crate::error::BackupError;
use crate::gpg;
use crate::kind::{BackupKind, Compression};
use crate::lock::BackupLock;
use crate::manifest::Manifest;
use crate::publish::{publish, PublishRequest, Source, SourceFacts};
use crate::reading::{write_plaintext, Scratch};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub struct SqliteBackupOptions {
    pub db_path: PathBuf,
    pub compression: Compression,
    pub recipients: Vec<String>,
    pub lock_dir: PathBuf,
}

fn db_error(what: &str, e: sqlx::Error) -> BackupError {
    BackupError::Tool {
        tool: "SQLite",
        detail: format!("{what}: {e}"),
    }
}

async fn open(path: &Path, read_only: bool) -> Result<SqliteConnection, BackupError> {
    if !path.exists() {
        return Err(BackupError::Config(format!(
            "there is no SQLite database at {}",
            path.display()
        )));
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(read_only);
    SqliteConnection::connect_with(&options)
        .await
        .map_err(|e| db_error(&format!("opening {}", path.display()), e))
}

/// Row counts of every table, and SQLite's version.
pub async fn describe(path: &Path) -> Result<(BTreeMap<String, u64>, String), BackupError> {
    let mut conn = open(path, true).await?;
    let tables = sqlx::query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .fetch_all(&mut conn)
        .await
        .map_err(|e| db_error("listing tables", e))?;
    let mut counts = BTreeMap::new();
    for t in tables {
        let name: String = t.get("name");
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{}\"",
            name.replace('"', "\"\"")
        ))
        .fetch_one(&mut conn)
        .await
        .map_err(|e| db_error(&format!("counting {name}"), e))?;
        counts.insert(name, n as u64);
    }
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| db_error("reading the version", e))?;
    let _ = conn.close().await;
    Ok((counts, format!("SQLite {version}")))
}

/// `PRAGMA integrity_check` must answer `ok`.
pub async fn check_integrity(path: &Path) -> Result<(), BackupError> {
    let mut conn = open(path, true).await?;
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| db_error("checking integrity", e))?;
    let _ = conn.close().await;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(BackupError::Tool {
            tool: "SQLite",
            detail: format!("integrity check: {verdict}"),
        })
    }
}

pub async fn backup_sqlite(
    dest: &Destination,
    opts: &SqliteBackupOptions,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Manifest, BackupError> {
    let _lock = BackupLock::acquire(&opts.lock_dir, BackupKind::Sqlite)?;
    let started_at = now();
    let recipients = gpg::recipients(&opts.recipients)?;
    let dir = opts.db_path.parent().unwrap_or(Path::new("."));
    let copy = Scratch::new(dir, "backup.db");
    let mut conn = open(&opts.db_path, true).await?;
    sqlx::query("VACUUM INTO $1")
        .bind(copy.path().to_string_lossy().to_string())
        .execute(&mut conn)
        .await
        .map_err(|e| db_error("copying the database (VACUUM INTO)", e))?;
    let _ = conn.close().await;
    let (row_counts, version) = describe(copy.path()).await?;
    let facts = SourceFacts {
        version,
        row_counts,
        key_count: None,
        key_count_exact: false,
        ..Default::default()
    };
    let path = copy.path().to_path_buf();
    let open_copy = move || Source::file(&path);
    let request = PublishRequest::new(BackupKind::Sqlite, opts.compression, recipients, started_at);
    publish(dest, request, facts, open_copy, now).await
}

/// Writes the backup's database to `path` after checking it. `server_lock`
/// is the data directory's lock: a running server refuses the restore.
pub async fn restore_sqlite(
    dest: &Destination,
    selector: &str,
    path: &Path,
    server_lock: &Path,
    force: bool,
) -> Result<Manifest, BackupError> {
    let manifest = catalog::find(dest, BackupKind::Sqlite, selector).await?;
    if path.exists() && !force {
        return Err(BackupError::Refused(format!(
            "{} exists; pass --force to replace it",
            path.display()
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| BackupError::io(format!("creating {}", dir.display()), e))?;
    let _server = hold_server_lock(server_lock)?;
    let staged = Scratch::new(dir, "restore.db");
    write_plaintext(dest, &manifest, staged.path(), true).await?;
    check_integrity(staged.path())
        .await
        .map_err(|e| manifest.corrupt(e.to_string()))?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::rename(staged.path(), path)
        .map_err(|e| BackupError::io(format!("replacing {}", path.display()), e))?;
    Ok(manifest)
}

/// Holds the server's data-directory lock for the restore, or explains that
/// a server is running.
fn hold_server_lock(path: &Path) -> Result<Option<std::fs::File>, BackupError> {
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(f) => f,
        Err(_) => return Ok(None),
    };
    if file.try_lock().is_err() {
        return Err(BackupError::Refused(
            "a mailqueue server is running on this data directory; stop it before restoring".into(),
        ));
    }
    Ok(Some(file))
}
