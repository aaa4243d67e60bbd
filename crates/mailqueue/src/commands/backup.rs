//! `mailqueue backup [postgres|sqlite]`: the engine behind `scripts/backup/pg-backup.sh`,
//! with the script's flags. After the backup: retention (`-r`), metrics,
//! and the Slack notification (`-n`), for failures too.

use super::places::{destination, Place};
use crate::Config;
use clap::{Args, Subcommand};
use mailqueue_backup::backup_postgres::{backup_postgres, PostgresBackupOptions};
use mailqueue_backup::backup_redis::{backup_redis_aof, backup_redis_rdb, RedisBackupOptions};
use mailqueue_backup::metrics::{MetricsSink, RunOutcome};
use mailqueue_backup::notify::notify_slack;
use mailqueue_backup::prune::prune;
use mailqueue_backup::retention::{Decision, RetentionPolicy};
use mailqueue_backup::sqlite::{backup_sqlite, SqliteBackupOptions};
use mailqueue_backup::{BackupError, BackupKind, Compression, Destination, Manifest};
use std::time::Instant;

/// `mailqueue backup [postgres|sqlite]`: without a kind, the store the
/// configuration names (PostgreSQL with DATABASE_URL, the embedded SQLite
/// file otherwise).
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupArgs {
    #[command(subcommand)]
    kind: Option<BackupCommand>,
    #[command(flatten)]
    configured: StoreArgs,
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Backs up the PostgreSQL database of DATABASE_URL (pg_dump -Fc).
    Postgres(StoreArgs),
    /// Backs up the embedded SQLite store, consistently, while the server runs.
    Sqlite(StoreArgs),
    /// Backs up Redis (REDIS_URL): its RDB snapshot, its AOF files, or both.
    Redis(RedisArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisMode {
    Rdb,
    Aof,
    Both,
}

#[derive(Args, Debug)]
pub struct RedisArgs {
    /// What to back up.
    #[arg(short = 'm', long, value_enum)]
    mode: RedisMode,
    /// Take the RDB over the replication stream (SYNC) even when its file is reachable.
    #[arg(long)]
    via_replication: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// Flags every backup kind shares.
#[derive(Args, Debug)]
pub struct RunFlags {
    /// Upload to S3 or GCS instead of MAILQUEUE_BACKUP_DIR.
    #[arg(short = 'u', long, value_enum)]
    pub upload: Option<Place>,
    /// Post the result to SLACK_WEBHOOK_URL (success and failure).
    #[arg(short = 'n', long)]
    pub notify: bool,
    /// Keep every backup younger than DAYS, plus the daily/weekly/monthly selection.
    #[arg(
        short = 'r',
        long = "retention-days",
        value_name = "DAYS",
        default_value_t = 30
    )]
    pub retention_days: u32,
}

#[derive(Args, Debug)]
pub struct StoreArgs {
    /// Compression of the stored object (default: zstd; gzip for Redis, as the guide names its objects).
    #[arg(short = 'c', long, value_parser = ["zstd", "gzip"])]
    compression: Option<String>,
    /// Encrypt with OpenPGP to GPG_RECIPIENT.
    #[arg(short = 'e', long)]
    encrypt: bool,
    #[command(flatten)]
    run: RunFlags,
}

pub async fn run(config: Config, args: BackupArgs) -> anyhow::Result<()> {
    let (kinds, store, via_replication) = match args.kind {
        Some(BackupCommand::Postgres(store)) => (vec![BackupKind::Postgres], store, false),
        Some(BackupCommand::Sqlite(store)) => (vec![BackupKind::Sqlite], store, false),
        Some(BackupCommand::Redis(redis)) => {
            let kinds = match redis.mode {
                RedisMode::Rdb => vec![BackupKind::RedisRdb],
                RedisMode::Aof => vec![BackupKind::RedisAof],
                RedisMode::Both => vec![BackupKind::RedisRdb, BackupKind::RedisAof],
            };
            (kinds, redis.store, redis.via_replication)
        }
        None if config.database_url.is_some() => {
            (vec![BackupKind::Postgres], args.configured, false)
        }
        None => (vec![BackupKind::Sqlite], args.configured, false),
    };
    let dest = destination(&config, store.run.upload.unwrap_or(Place::File))?;
    let mut failures = Vec::new();
    for kind in kinds {
        let started = Instant::now();
        let result = take(&config, kind, &store, &dest, via_replication).await;
        if let Err(e) = finish_run(&config, kind, &dest, &store.run, started, result).await {
            failures.push(format!("{kind}: {e:#}"));
        }
    }
    match failures.as_slice() {
        [] => Ok(()),
        [one] => anyhow::bail!("{one}"),
        many => anyhow::bail!("{}", many.join("; ")),
    }
}

async fn take(
    config: &Config,
    kind: BackupKind,
    args: &StoreArgs,
    dest: &Destination,
    via_replication: bool,
) -> Result<Manifest, BackupError> {
    if args.encrypt && config.gpg_recipients.is_empty() {
        return Err(BackupError::Config(
            "-e needs GPG_RECIPIENT (one or more, comma-separated)".into(),
        ));
    }
    let compression = match (&args.compression, kind) {
        (Some(c), _) => c.parse::<Compression>().map_err(BackupError::Config)?,
        (None, BackupKind::RedisRdb | BackupKind::RedisAof) => Compression::Gzip,
        (None, _) => Compression::Zstd,
    };
    let recipients = if args.encrypt {
        config.gpg_recipients.clone()
    } else {
        Vec::new()
    };
    let lock_dir = config.backup_lock_dir.clone();
    match kind {
        BackupKind::RedisRdb | BackupKind::RedisAof => {
            let url = config.redis_url.as_ref().ok_or_else(|| {
                BackupError::Config("REDIS_URL names the Redis to back up; it is not set".into())
            })?;
            let options = RedisBackupOptions {
                redis_url: url.expose().to_string(),
                compression,
                recipients,
                lock_dir,
                via_replication,
            };
            if kind == BackupKind::RedisRdb {
                backup_redis_rdb(dest, &options, chrono::Utc::now).await
            } else {
                backup_redis_aof(dest, &options, chrono::Utc::now).await
            }
        }
        BackupKind::Sqlite => {
            let options = SqliteBackupOptions {
                db_path: config.sqlite_path(),
                compression,
                recipients,
                lock_dir,
            };
            backup_sqlite(dest, &options, chrono::Utc::now).await
        }
        _ => {
            let url = config.database_url.as_ref().ok_or_else(|| {
                BackupError::Config(
                    "DATABASE_URL names the database to back up; it is not set".into(),
                )
            })?;
            let options = PostgresBackupOptions {
                database_url: url.expose().to_string(),
                compression,
                recipients,
                lock_dir,
            };
            backup_postgres(dest, &options, chrono::Utc::now).await
        }
    }
}

/// The retention policy of `kind` with the configured GFS counts.
pub fn policy_for(config: &Config, kind: BackupKind, within_days: u32) -> RetentionPolicy {
    let [daily, weekly, monthly] = match kind {
        BackupKind::RedisRdb | BackupKind::RedisAof => config.backup_redis_keep,
        BackupKind::Postgres | BackupKind::Sqlite => config.backup_postgres_keep,
    };
    RetentionPolicy {
        within_days,
        daily,
        weekly,
        monthly,
    }
}

/// Prints what retention keeps, and why.
pub fn print_decisions(kind: BackupKind, decisions: &[Decision], dry_run: bool) {
    for d in decisions {
        if d.keep() {
            println!("keep   {kind} {}: {}", d.id, d.reasons.join(", "));
        } else if dry_run {
            println!("would delete {kind} {}", d.id);
        } else {
            println!("delete {kind} {}", d.id);
        }
    }
}

/// Retention, metrics and notification after a run; returns the run's result.
async fn finish_run(
    config: &Config,
    kind: BackupKind,
    dest: &Destination,
    flags: &RunFlags,
    started: Instant,
    result: Result<Manifest, BackupError>,
) -> anyhow::Result<()> {
    let mut storage_bytes = None;
    if let Ok(manifest) = &result {
        println!(
            "Backup {} stored at {} ({} bytes, sha256 {}).",
            manifest.id,
            dest.location(&manifest.object),
            manifest.size_bytes,
            manifest.sha256
        );
        let policy = policy_for(config, kind, flags.retention_days);
        match prune(dest, kind, &policy, chrono::Utc::now(), false).await {
            Ok(decisions) => {
                print_decisions(kind, &decisions, false);
                let kept = decisions.iter().filter(|d| d.keep());
                storage_bytes = Some(kept.map(|d| d.size_bytes).sum());
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention could not be applied; nothing was deleted past the error")
            }
        }
    }
    let sink = MetricsSink {
        state_file: config.backup_lock_dir.join("mailqueue-backup-metrics.json"),
        textfile: config.metrics_textfile.clone(),
        pushgateway: config.pushgateway_url.clone(),
        quota_bytes: config.backup_quota_bytes,
    };
    sink.publish(&RunOutcome {
        kind,
        succeeded: result.is_ok(),
        duration_seconds: started.elapsed().as_secs_f64(),
        size_bytes: result.as_ref().ok().map(|m| m.size_bytes),
        finished_at: chrono::Utc::now(),
        storage_bytes,
    })
    .await;
    if flags.notify {
        match &config.slack_webhook_url {
            None => tracing::warn!(
                "-n was given but SLACK_WEBHOOK_URL is not set; no notification sent"
            ),
            Some(webhook) => {
                let text = match &result {
                    Ok(m) => format!(
                        ":white_check_mark: mailqueue {kind} backup {} succeeded: {} bytes in {:.1} s, stored at {}",
                        m.id,
                        m.size_bytes,
                        started.elapsed().as_secs_f64(),
                        dest.location(&m.object)
                    ),
                    Err(e) => format!(":x: mailqueue {kind} backup FAILED after {:.1} s: {e}", started.elapsed().as_secs_f64()),
                };
                notify_slack(webhook.expose(), &text).await;
            }
        }
    }
    result.map(|_| ()).map_err(Into::into)
}
