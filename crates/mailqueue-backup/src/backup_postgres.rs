//! `mailqueue backup postgres`: `pg_dump -Fc` → compression → optional
//! OpenPGP → SHA-256 → multipart upload, then the manifest.

use crate::destination::Destination;
use crate::error::BackupError;
use crate::gpg::{self, Recipient};
use crate::kind::{BackupKind, Compression};
use crate::lock::BackupLock;
use crate::manifest::Manifest;
use crate::naming;
use crate::postgres::{spawn_dump, wait_tool, Snapshot};
use crate::stages::{compressing, CountingReader, HashingWriter};
use crate::transfer::UploadWriter;
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

pub struct PostgresBackupOptions {
    pub database_url: String,
    pub compression: Compression,
    /// OpenPGP recipients; none means no encryption.
    pub recipients: Vec<String>,
    pub lock_dir: PathBuf,
}

/// What the streaming stage produced.
struct Streamed {
    size: u64,
    sha256: String,
    source_bytes: u64,
}

/// Takes a backup and publishes its manifest; on any failure nothing is
/// published and the partial upload is aborted.
pub async fn backup_postgres(
    dest: &Destination,
    opts: &PostgresBackupOptions,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Manifest, BackupError> {
    let _lock = BackupLock::acquire(&opts.lock_dir, BackupKind::Postgres)?;
    let started_at = now();
    let recipients = gpg::recipients(&opts.recipients)?;
    let key = naming::free_object_key(
        dest,
        BackupKind::Postgres,
        started_at,
        opts.compression,
        !recipients.is_empty(),
    )
    .await?;
    let snapshot = Snapshot::open(&opts.database_url).await?;
    let location = dest.location(&key);
    let upload = dest
        .store()
        .put_multipart(&dest.path(&key))
        .await
        .map_err(|e| BackupError::storage(&location, e))?;
    let writer = UploadWriter::new(tokio::runtime::Handle::current(), upload, location.clone());
    let url = opts.database_url.clone();
    let snapshot_id = snapshot.id.clone();
    let compression = opts.compression;
    let fingerprints: Vec<String> = recipients.iter().map(|r| r.fingerprint.clone()).collect();
    let streamed = tokio::task::spawn_blocking(move || {
        stream_dump(&url, &snapshot_id, compression, &recipients, writer)
    })
    .await
    .map_err(|e| BackupError::Io(format!("the backup stage stopped: {e}")))?;
    let server_version = snapshot.server_version.clone();
    let row_counts = snapshot.row_counts.clone();
    snapshot.close().await;
    let streamed = streamed?;
    let manifest = Manifest {
        format: Manifest::FORMAT,
        id: naming::backup_id(&key),
        kind: BackupKind::Postgres,
        object: key.clone(),
        started_at,
        finished_at: now(),
        size_bytes: streamed.size,
        source_bytes: streamed.source_bytes,
        sha256: streamed.sha256,
        compression,
        encryption_recipients: fingerprints,
        source_version: format!("PostgreSQL {server_version}"),
        row_counts,
        key_count: None,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    dest.put(&naming::manifest_key(&key), manifest.to_json())
        .await?;
    Ok(manifest)
}

fn stream_dump(
    url: &str,
    snapshot_id: &str,
    compression: Compression,
    recipients: &[Recipient],
    writer: UploadWriter,
) -> Result<Streamed, BackupError> {
    let (mut child, stdout) = match spawn_dump(url, Some(snapshot_id)) {
        Ok(spawned) => spawned,
        Err(e) => {
            writer.abort();
            return Err(e);
        }
    };
    let (counted, source_bytes) = CountingReader::new(stdout);
    let mut sink = HashingWriter::new(writer);
    let piped = compressing(compression, counted).and_then(|mut compressed| {
        if recipients.is_empty() {
            std::io::copy(&mut compressed, &mut sink)
                .map(|_| ())
                .map_err(|e| BackupError::io("streaming the dump", e))
        } else {
            gpg::encrypt(compressed, recipients, &mut sink)
        }
    });
    let piped = piped.and_then(|_| {
        sink.flush()
            .map_err(|e| BackupError::io("streaming the dump", e))
    });
    if piped.is_err() {
        let _ = child.kill();
    }
    let dumped = wait_tool("pg_dump", child);
    let (writer, size, sha256) = sink.finish();
    // Our own failure first: when we stop pg_dump, its error is only the echo.
    match piped.and(dumped) {
        Ok(()) => {
            writer.finish()?;
            Ok(Streamed {
                size,
                sha256,
                source_bytes: source_bytes.load(Ordering::Relaxed),
            })
        }
        Err(e) => {
            writer.abort();
            Err(e)
        }
    }
}
