//! `mailqueue backup postgres`: `pg_dump -Fc` inside a snapshot whose row
//! counts go into the manifest, through the common publish path.

use crate::destination::Destination;
use crate::error::BackupError;
use crate::gpg;
use crate::kind::{BackupKind, Compression};
use crate::lock::BackupLock;
use crate::manifest::Manifest;
use crate::postgres::{spawn_dump, wait_tool, Snapshot};
use crate::publish::{publish, PublishRequest, Source, SourceFacts};
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
    let snapshot = Snapshot::open(&opts.database_url).await?;
    let facts = SourceFacts {
        version: format!("PostgreSQL {}", snapshot.server_version),
        row_counts: snapshot.figures.counts.clone(),
        table_checksums: snapshot.figures.checksums.clone(),
        ..Default::default()
    };
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
    let published = publish(dest, request, facts, open, now).await;
    snapshot.close().await;
    published
}
