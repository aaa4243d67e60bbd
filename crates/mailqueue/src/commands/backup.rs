//! `mailqueue backup [postgres|sqlite]`: the engine behind `scripts/backup/pg-backup.sh`,
//! with the script's flags. After the backup: retention (`-r`), metrics,
//! and the Slack notification (`-n`), for failures too.

use super::places::{destination, Place};
use crate::Config;
use clap::{Args, Subcommand};
use mailqueue_backup::backup_physical::PhysicalBackupOptions;
use mailqueue_backup::backup_postgres::PostgresBackupOptions;
use mailqueue_backup::backup_redis::RedisBackupOptions;
use mailqueue_backup::kind::BackedUpStore;
use mailqueue_backup::metrics::MetricsSink;
use mailqueue_backup::retention::{BackupRetention, Decision};
use mailqueue_backup::run::{run_backup, BackupJob, RunReport, RunSettings};
use mailqueue_backup::sqlite::SqliteBackupOptions;
use mailqueue_backup::{BackupError, BackupKind, Compression, Destination};

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
    /// Backs up the PostgreSQL database of DATABASE_URL (pg_dump -Fc), or
    /// with --physical the whole cluster (a base backup, for point-in-time recovery).
    Postgres(PostgresArgs),
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
pub struct PostgresArgs {
    #[command(flatten)]
    physical: PhysicalArgs,
    #[command(flatten)]
    store: StoreArgs,
}

/// Base backups (`--physical`).
#[derive(Args, Debug, Default)]
pub struct PhysicalArgs {
    /// A base backup of the cluster over the replication protocol (pg_basebackup),
    /// for point-in-time recovery with the archived WAL.
    #[arg(long)]
    physical: bool,
    /// Limit the read rate of the base backup (pg_basebackup --max-rate, e.g. 50M).
    #[arg(long, requires = "physical", value_name = "RATE")]
    max_rate: Option<String>,
    /// Do not record row counts and checksums at a restore point after the base backup.
    #[arg(long, requires = "physical")]
    no_figures: bool,
    /// After a base backup, keep this many days of WAL (and what kept base backups need).
    #[arg(long, default_value_t = 7, value_name = "DAYS")]
    wal_retention_days: u32,
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
    let (kinds, store, redis_via_replication, physical) = match args.kind {
        Some(BackupCommand::Postgres(pg)) => {
            let kind = if pg.physical.physical {
                BackupKind::PostgresPhysical
            } else {
                BackupKind::Postgres
            };
            (vec![kind], pg.store, false, pg.physical)
        }
        Some(BackupCommand::Sqlite(store)) => {
            (vec![BackupKind::Sqlite], store, false, Default::default())
        }
        Some(BackupCommand::Redis(redis)) => {
            let kinds = match redis.mode {
                RedisMode::Rdb => vec![BackupKind::RedisRdb],
                RedisMode::Aof => vec![BackupKind::RedisAof],
                RedisMode::Both => vec![BackupKind::RedisRdb, BackupKind::RedisAof],
            };
            (
                kinds,
                redis.store,
                redis.via_replication,
                Default::default(),
            )
        }
        None if config.database_url.is_some() => (
            vec![BackupKind::Postgres],
            args.configured,
            false,
            Default::default(),
        ),
        None => (
            vec![BackupKind::Sqlite],
            args.configured,
            false,
            Default::default(),
        ),
    };
    let dest = destination(&config, store.run.upload.unwrap_or(Place::File))?;
    let mut failures = Vec::new();
    for kind in kinds {
        let job = match job(&config, kind, &store, redis_via_replication, &physical) {
            Ok(job) => job,
            Err(e) => {
                failures.push(format!("{kind}: {e}"));
                continue;
            }
        };
        let report = run_backup(
            &dest,
            &job,
            &run_settings(&config, kind, &store.run, &physical),
        )
        .await;
        print_report(&dest, &report);
        if let Err(e) = report.result {
            failures.push(format!("{kind}: {e}"));
        }
    }
    match failures.as_slice() {
        [] => Ok(()),
        [one] => anyhow::bail!("{one}"),
        many => anyhow::bail!("{}", many.join("; ")),
    }
}

/// The job for `kind`, from the configuration and the flags.
fn job(
    config: &Config,
    kind: BackupKind,
    args: &StoreArgs,
    via_replication: bool,
    physical: &PhysicalArgs,
) -> Result<BackupJob, BackupError> {
    if args.encrypt && config.gpg_recipients.is_empty() {
        return Err(BackupError::Config(
            "-e needs GPG_RECIPIENT (one or more, comma-separated)".into(),
        ));
    }
    let compression = match (&args.compression, kind.store()) {
        (Some(c), _) => c.parse::<Compression>().map_err(BackupError::Config)?,
        (None, BackedUpStore::Redis) => Compression::Gzip,
        (None, BackedUpStore::Postgres | BackedUpStore::Sqlite) => Compression::Zstd,
    };
    let recipients = if args.encrypt {
        config.gpg_recipients.clone()
    } else {
        Vec::new()
    };
    let lock_dir = config.backup_lock_dir.clone();
    let database_url = || {
        config
            .database_url
            .as_ref()
            .map(|u| u.expose().to_string())
            .ok_or_else(|| {
                BackupError::Config(
                    "DATABASE_URL names the database to back up; it is not set".into(),
                )
            })
    };
    let redis = || -> Result<RedisBackupOptions, BackupError> {
        let url = config.redis_url.as_ref().ok_or_else(|| {
            BackupError::Config("REDIS_URL names the Redis to back up; it is not set".into())
        })?;
        Ok(RedisBackupOptions {
            redis_url: url.expose().to_string(),
            compression,
            recipients: recipients.clone(),
            lock_dir: lock_dir.clone(),
            via_replication,
        })
    };
    Ok(match kind {
        BackupKind::Postgres => BackupJob::PostgresLogical(PostgresBackupOptions {
            database_url: database_url()?,
            compression,
            recipients,
            lock_dir,
        }),
        BackupKind::PostgresPhysical => BackupJob::PostgresPhysical(PhysicalBackupOptions {
            database_url: database_url()?,
            compression,
            recipients,
            lock_dir,
            max_rate: physical.max_rate.clone(),
            figures: !physical.no_figures,
        }),
        BackupKind::RedisRdb => BackupJob::RedisRdb(redis()?),
        BackupKind::RedisAof => BackupJob::RedisAof(redis()?),
        BackupKind::Sqlite => BackupJob::Sqlite(SqliteBackupOptions {
            db_path: config.sqlite_path(),
            compression,
            recipients,
            lock_dir,
        }),
        BackupKind::WalSegment => {
            return Err(BackupError::Config(
                "WAL is archived by PostgreSQL through `mailqueue wal-push %p`".into(),
            ))
        }
    })
}

/// Retention, metrics and notification settings of a run.
fn run_settings(
    config: &Config,
    kind: BackupKind,
    flags: &RunFlags,
    physical: &PhysicalArgs,
) -> RunSettings {
    if flags.notify && config.slack_webhook_url.is_none() {
        tracing::warn!("-n was given but SLACK_WEBHOOK_URL is not set; no notification sent");
    }
    RunSettings {
        policy: policy_for(config, kind, flags.retention_days),
        wal_retention_days: physical.wal_retention_days,
        metrics: metrics_sink(config),
        slack_webhook: flags
            .notify
            .then(|| {
                config
                    .slack_webhook_url
                    .as_ref()
                    .map(|w| w.expose().to_string())
            })
            .flatten(),
    }
}

/// Where backup metrics go.
pub fn metrics_sink(config: &Config) -> MetricsSink {
    MetricsSink {
        state_file: config.backup_lock_dir.join("mailqueue-backup-metrics.json"),
        textfile: config.metrics_textfile.clone(),
        pushgateway: config.pushgateway_url.clone(),
        quota_bytes: config.backup_quota_bytes,
    }
}

/// The retention policy of `kind` with the configured GFS counts.
pub fn policy_for(config: &Config, kind: BackupKind, within_days: u32) -> BackupRetention {
    let [daily, weekly, monthly] = match kind.store() {
        BackedUpStore::Redis => config.backup_redis_keep,
        BackedUpStore::Postgres | BackedUpStore::Sqlite => config.backup_postgres_keep,
    };
    BackupRetention {
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
            let reasons: Vec<String> = d.reasons.iter().map(ToString::to_string).collect();
            println!("keep   {kind} {}: {}", d.id, reasons.join(", "));
        } else if dry_run {
            println!("would delete {kind} {}", d.id);
        } else {
            println!("delete {kind} {}", d.id);
        }
    }
}

fn print_report(dest: &Destination, report: &RunReport) {
    if let Ok(manifest) = &report.result {
        println!(
            "Backup {} stored at {} ({} bytes, sha256 {}).",
            manifest.id,
            dest.location(&manifest.object),
            manifest.size_bytes,
            manifest.sha256
        );
        if let Some(wal) = &manifest.wal {
            println!(
                "WAL from {} ({}) to {} ({}) on timeline {}.",
                wal.start, wal.start_segment, wal.end, wal.end_segment, wal.timeline
            );
        }
    }
    if let Some(decisions) = &report.retention {
        print_decisions(report.kind, decisions, false);
    }
    if let Some(wal) = &report.wal_retention {
        println!(
            "WAL retention: {} file(s) deleted, {} kept (whole from {}).",
            wal.deleted.len(),
            wal.kept,
            wal.kept_from.as_deref().unwrap_or("-")
        );
    }
}
