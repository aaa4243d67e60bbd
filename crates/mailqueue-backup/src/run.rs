//! A backup run as the scripts and cron start it: take the backup, apply
//! retention (and WAL retention after a base backup), write the metrics,
//! notify. The binary's `backup` command is a thin translation of flags
//! into a [`BackupJob`] and [`RunSettings`]; the drill reuses the pieces.

use crate::backup_physical::{backup_postgres_physical, PhysicalBackupOptions};
use crate::backup_postgres::{backup_postgres, PostgresBackupOptions};
use crate::backup_redis::{backup_redis_aof, backup_redis_rdb, RedisBackupOptions};
use crate::catalog;
use crate::destination::Destination;
use crate::error::BackupError;
use crate::kind::BackupKind;
use crate::manifest::Manifest;
use crate::metrics::{MetricsSink, RunOutcome};
use crate::notify::notify_slack;
use crate::prune::prune;
use crate::retention::{BackupRetention, Decision};
use crate::sqlite::{backup_sqlite, SqliteBackupOptions};
use crate::wal::retention::{prune_wal, WalPrune};
use std::time::Instant;

/// One backup to take, with its kind's options.
pub enum BackupJob {
    PostgresLogical(PostgresBackupOptions),
    PostgresPhysical(PhysicalBackupOptions),
    RedisRdb(RedisBackupOptions),
    RedisAof(RedisBackupOptions),
    Sqlite(SqliteBackupOptions),
}

impl BackupJob {
    pub fn kind(&self) -> BackupKind {
        match self {
            BackupJob::PostgresLogical(_) => BackupKind::Postgres,
            BackupJob::PostgresPhysical(_) => BackupKind::PostgresPhysical,
            BackupJob::RedisRdb(_) => BackupKind::RedisRdb,
            BackupJob::RedisAof(_) => BackupKind::RedisAof,
            BackupJob::Sqlite(_) => BackupKind::Sqlite,
        }
    }

    /// Takes the backup; nothing is published unless it all succeeded.
    pub async fn take(&self, dest: &Destination) -> Result<Manifest, BackupError> {
        let now = chrono::Utc::now;
        match self {
            BackupJob::PostgresLogical(o) => backup_postgres(dest, o, now).await,
            BackupJob::PostgresPhysical(o) => backup_postgres_physical(dest, o, now).await,
            BackupJob::RedisRdb(o) => backup_redis_rdb(dest, o, now).await,
            BackupJob::RedisAof(o) => backup_redis_aof(dest, o, now).await,
            BackupJob::Sqlite(o) => backup_sqlite(dest, o, now).await,
        }
    }
}

/// What happens around a backup.
pub struct RunSettings {
    pub policy: BackupRetention,
    /// After a base backup: keep this many days of WAL (see
    /// [`crate::wal::retention`]).
    pub wal_retention_days: u32,
    pub metrics: MetricsSink,
    /// A Slack webhook to post the result to.
    pub slack_webhook: Option<String>,
}

/// What a run did.
pub struct RunReport {
    pub kind: BackupKind,
    pub result: Result<Manifest, BackupError>,
    pub seconds: f64,
    pub retention: Option<Vec<Decision>>,
    pub wal_retention: Option<WalPrune>,
}

/// Takes the backup, then retention, metrics and the notification, for
/// failures too. A failure of retention or of a notification is logged;
/// it never changes the backup's result.
pub async fn run_backup(dest: &Destination, job: &BackupJob, settings: &RunSettings) -> RunReport {
    let kind = job.kind();
    let started = Instant::now();
    let result = job.take(dest).await;
    let mut report = RunReport {
        kind,
        result,
        seconds: started.elapsed().as_secs_f64(),
        retention: None,
        wal_retention: None,
    };
    let mut storage_bytes = None;
    if report.result.is_ok() {
        match prune(dest, kind, &settings.policy, chrono::Utc::now(), false).await {
            Ok(decisions) => {
                storage_bytes = Some(
                    decisions
                        .iter()
                        .filter(|d| d.keep())
                        .map(|d| d.size_bytes)
                        .sum(),
                );
                report.retention = Some(decisions);
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention could not be applied; nothing was deleted past the error")
            }
        }
        if kind == BackupKind::PostgresPhysical {
            report.wal_retention = apply_wal_retention(dest, settings.wal_retention_days).await;
        }
    }
    let last_success = match &report.result {
        Ok(m) => Some(m.finished_at),
        Err(_) => newest_finished(dest, kind).await,
    };
    settings
        .metrics
        .publish(&RunOutcome {
            kind,
            succeeded: report.result.is_ok(),
            duration_seconds: report.seconds,
            size_bytes: report.result.as_ref().ok().map(|m| m.size_bytes),
            finished_at: chrono::Utc::now(),
            storage_bytes,
            last_success,
        })
        .await;
    if let Some(webhook) = &settings.slack_webhook {
        let text = match &report.result {
            Ok(m) => format!(
                ":white_check_mark: mailqueue {kind} backup {} succeeded: {} bytes in {:.1} s, stored at {}",
                m.id,
                m.size_bytes,
                report.seconds,
                dest.location(&m.object)
            ),
            Err(e) => format!(":x: mailqueue {kind} backup FAILED after {:.1} s: {e}", report.seconds),
        };
        notify_slack(webhook, &text).await;
    }
    report
}

/// When the newest backup of `kind` in the catalog finished: the last
/// success, whichever process took it.
async fn newest_finished(
    dest: &Destination,
    kind: BackupKind,
) -> Option<chrono::DateTime<chrono::Utc>> {
    match catalog::list(dest, Some(kind)).await {
        Ok(found) => found.iter().map(|m| m.finished_at).max(),
        Err(e) => {
            // The run's own error already says what is wrong with the destination.
            tracing::debug!(error = %e, "the catalog cannot be read; the last success is not known");
            None
        }
    }
}

/// WAL retention against the base backups that retention kept.
pub async fn apply_wal_retention(dest: &Destination, days: u32) -> Option<WalPrune> {
    let kept = match catalog::list(dest, Some(BackupKind::PostgresPhysical)).await {
        Ok(kept) => kept,
        Err(e) => {
            tracing::warn!(error = %e, "WAL retention skipped: the base backups cannot be listed");
            return None;
        }
    };
    match prune_wal(dest, &kept, days, chrono::Utc::now(), false).await {
        Ok(pruned) => Some(pruned),
        Err(e) => {
            tracing::warn!(error = %e, "WAL retention stopped; nothing was deleted past the error");
            None
        }
    }
}
