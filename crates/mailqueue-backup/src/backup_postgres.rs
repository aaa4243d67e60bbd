//! `mailqueue backup postgres`: `pg_dump -Fc` inside a snapshot whose row
//! counts and per-table checksums go into the manifest, read while the
//! dump streams, through the common publish path.

use crate::destination::Destination;
use crate::error::BackupError;
use crate::gpg;
use crate::kind::{BackupKind, Compression};
use crate::lock::BackupLock;
use crate::manifest::Manifest;
use crate::postgres::{spawn_dump, wait_tool, Snapshot};
use crate::publish::{publish_manifest, upload, PublishRequest, Source, SourceFacts};
use chrono::{DateTime, Utc};
use std::path::PathBuf;

pub struct PostgresBackupOptions {
    pub database_url: String,
    pub compression: Compression,
    /// OpenPGP recipients; none means no encryption.
    pub recipients: Vec<String>,
    pub lock_dir: PathBuf,
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
    let mut snapshot = Snapshot::open(&opts.database_url).await?;
    let version = format!("PostgreSQL {}", snapshot.server_version);
    let (url, snapshot_id) = (opts.database_url.clone(), snapshot.id.clone());
    let open = move || {
        let (mut child, stdout) = spawn_dump(&url, Some(&snapshot_id))?;
        Ok(Source {
            reader: Box::new(stdout),
            finish: Box::new(move |failed| {
                if failed {
                    let _ = child.kill();
                }
                wait_tool("pg_dump", child)
            }),
        })
    };
    let request = PublishRequest::new(
        BackupKind::Postgres,
        opts.compression,
        recipients,
        started_at,
    );
    // The figures are read in the snapshot while pg_dump streams it.
    let (uploaded, figures) = tokio::join!(upload(dest, request, open), snapshot.figures());
    snapshot.close().await;
    let figures = figures?;
    let facts = SourceFacts {
        version,
        row_counts: figures.counts,
        table_checksums: figures.checksums,
        ..Default::default()
    };
    publish_manifest(dest, uploaded?, facts, now).await
}
