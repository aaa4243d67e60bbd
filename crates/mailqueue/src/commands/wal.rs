//! `mailqueue wal-push %p` (`archive_command`), `mailqueue wal-fetch %f %p`
//! (`restore_command`), and `mailqueue wal check|prune` (behind
//! `scripts/backup/sync-wal.sh`).
//!
//! Exit codes are PostgreSQL's contract:
//! - wal-push: 0 only once the file is durable at the destination (or was
//!   archived before with the same content); 1 otherwise, which PostgreSQL
//!   retries, keeping the file.
//! - wal-fetch: 0 restored; 1 only when the archive does not hold the file
//!   (PostgreSQL takes it as the end of WAL); [`FETCH_FAILED`] for any other
//!   failure, which PostgreSQL treats as fatal: recovery stops rather than
//!   ending early and promoting a cluster that misses data.

use super::backup::metrics_sink;
use super::places::{destination, existing_destination, Place};
use crate::Config;
use clap::{Args, Subcommand};
use mailqueue_backup::catalog;
use mailqueue_backup::gpg;
use mailqueue_backup::metrics::sibling_textfile;
use mailqueue_backup::wal::check::check_wal;
use mailqueue_backup::wal::metrics::{PushResult, WalMetricsSink, WalSource};
use mailqueue_backup::wal::prefetch::{following, prefetch_into, spool_dir, take_from_spool};
use mailqueue_backup::wal::retention::prune_wal;
use mailqueue_backup::wal::{fetch, push, FetchOutcome, PushOptions, PushOutcome};
use mailqueue_backup::{BackupError, BackupKind, Compression};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

/// wal-fetch's code for every failure but a missing file: above 125, so
/// PostgreSQL stops recovery instead of reading it as the end of WAL.
pub const FETCH_FAILED: u8 = 126;

#[derive(Args, Debug)]
pub struct WalPushArgs {
    /// The file to archive (PostgreSQL's %p).
    path: PathBuf,
    /// Archive to S3 or GCS instead of MAILQUEUE_BACKUP_DIR.
    #[arg(short = 'u', long, value_enum)]
    upload: Option<Place>,
    /// Compression of the stored files.
    #[arg(short = 'c', long, default_value = "zstd", value_parser = ["zstd", "gzip"])]
    compression: String,
    /// Encrypt with OpenPGP to GPG_RECIPIENT.
    #[arg(short = 'e', long)]
    encrypt: bool,
}

#[derive(Args, Debug)]
pub struct WalFetchArgs {
    /// The file PostgreSQL asks for (%f).
    name: String,
    /// Where to put it (%p).
    path: PathBuf,
    /// Where the backups are stored (the archive, for WAL).
    #[arg(short = 's', long, value_enum, default_value = "file")]
    source: Place,
    /// After a segment, fetch this many of the next ones ahead, in the
    /// background, into pg_wal/.mailqueue-prefetch (0: none).
    #[arg(long, default_value_t = 0, value_name = "SEGMENTS")]
    prefetch: u32,
    /// The cluster's WAL segment size, to name the next segments.
    #[arg(long, default_value_t = mailqueue_backup::wal::DEFAULT_SEGMENT_SIZE, value_name = "BYTES")]
    segment_size: u64,
}

/// The read-ahead process `wal-fetch --prefetch` starts.
#[derive(Args, Debug)]
pub struct WalPrefetchArgs {
    /// Where the backups are stored (the archive, for WAL).
    #[arg(short = 's', long, value_enum, default_value = "file")]
    source: Place,
    /// The spool directory.
    #[arg(long)]
    into: PathBuf,
    /// The segments to fetch, in order.
    names: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum WalCommand {
    /// Checks archiving (pg_stat_archiver on DATABASE_URL: WAL not yet
    /// archived, failures, archive_timeout) and the archive since the newest
    /// base backup (gaps, a missing tail). Exit 1 on a problem, 3 on a
    /// warning only.
    Check {
        /// Where the backups are stored (the archive, for WAL).
        #[arg(short = 's', long, value_enum, default_value = "file")]
        source: Place,
        /// Seconds that written WAL may wait unarchived before it is a problem
        /// (the RPO target); archive_timeout should not exceed it.
        #[arg(long, default_value_t = 900)]
        max_lag: u64,
    },
    /// Deletes WAL that neither the last DAYS days of recovery nor a kept base backup needs.
    Prune {
        /// Where the backups are stored (the archive, for WAL).
        #[arg(short = 's', long, value_enum, default_value = "file")]
        source: Place,
        /// Keep what recovery to any moment of the last DAYS days needs.
        #[arg(long, default_value_t = 7, value_name = "DAYS")]
        retention_days: u32,
        #[arg(long)]
        dry_run: bool,
    },
}

fn wal_metrics(config: &Config) -> WalMetricsSink {
    let backup = metrics_sink(config);
    WalMetricsSink {
        state_file: config.backup_lock_dir.join("mailqueue-wal-metrics.json"),
        textfile: backup
            .textfile
            .as_deref()
            .map(|t| sibling_textfile(t, "mailqueue_wal")),
        pushgateway: backup.pushgateway,
    }
}

/// An `archive_command` must say where it archives: PostgreSQL runs it in
/// the data directory, where the default `./backups` would put the archive
/// inside the data it protects (and lose both at once). So `wal-push`
/// archives to a directory only when one is named, and never to one inside
/// a PostgreSQL data directory; otherwise it fails, and PostgreSQL keeps the
/// segment and retries.
fn archive_dir_is_safe(config: &Config) -> Result<(), BackupError> {
    if !config.backup_dir_named {
        return Err(BackupError::Config(
            "no archive is named: set MAILQUEUE_BACKUP_DIR (or backup_dir in MAILQUEUE_CONFIG) \
             in archive_command's environment, or archive with -u s3|gcs"
                .into(),
        ));
    }
    let dir = std::path::absolute(&config.backup_dir)
        .map_err(|e| BackupError::io(format!("resolving {}", config.backup_dir.display()), e))?;
    if let Some(data_dir) = dir
        .ancestors()
        .find(|d| d.join("global").join("pg_control").is_file())
    {
        return Err(BackupError::Config(format!(
            "MAILQUEUE_BACKUP_DIR {} is inside the PostgreSQL data directory {}: the archive \
             would be lost with the data it protects; name a directory elsewhere",
            dir.display(),
            data_dir.display()
        )));
    }
    Ok(())
}

pub async fn push_command(config: Config, args: WalPushArgs) -> ExitCode {
    let file = args
        .path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let result = async {
        let place = args.upload.unwrap_or(Place::File);
        if place == Place::File {
            archive_dir_is_safe(&config)?;
        }
        let dest = destination(&config, place)?;
        let recipients = if args.encrypt {
            if config.gpg_recipients.is_empty() {
                return Err(BackupError::Config("-e needs GPG_RECIPIENT".into()));
            }
            gpg::recipients(&config.gpg_recipients)?
        } else {
            Vec::new()
        };
        let options = PushOptions {
            compression: args
                .compression
                .parse::<Compression>()
                .map_err(BackupError::Config)?,
            recipients,
        };
        push(&dest, &args.path, &options).await
    }
    .await;
    let outcome = match &result {
        Ok(_) => PushResult::Archived,
        Err(BackupError::Conflict { .. }) => PushResult::Conflict,
        Err(_) => PushResult::Failed,
    };
    wal_metrics(&config)
        .update(WalSource::Archive, |m| {
            m.record_push(outcome, &file, chrono::Utc::now())
        })
        .await;
    match result {
        Ok(PushOutcome::Stored { key, stored_bytes }) => {
            tracing::info!(file = %file, key = %key, stored_bytes, "archived");
            ExitCode::SUCCESS
        }
        Ok(PushOutcome::AlreadyArchived { key }) => {
            tracing::info!(file = %file, key = %key, "already archived with the same content");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: wal-push {file}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub async fn fetch_command(config: Config, args: WalFetchArgs) -> ExitCode {
    let result = async {
        if args.prefetch > 0 && take_from_spool(&args.name, &args.path) {
            return Ok(FetchOutcome::Restored {
                key: "prefetched".into(),
                bytes: 0,
            });
        }
        let dest = existing_destination(&config, args.source)?;
        fetch(&dest, &args.name, &args.path).await
    }
    .await;
    if args.prefetch > 0 && matches!(result, Ok(FetchOutcome::Restored { .. })) {
        start_read_ahead(&args);
    }
    match result {
        Ok(FetchOutcome::Restored { .. }) => ExitCode::SUCCESS,
        Ok(FetchOutcome::Missing) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: wal-fetch {}: {e}", args.name);
            ExitCode::from(FETCH_FAILED)
        }
    }
}

/// Starts the read-ahead of the segments after the one just served, as a
/// detached process of its own; a failure to start it is only logged.
fn start_read_ahead(args: &WalFetchArgs) {
    let names = following(&args.name, args.segment_size, args.prefetch);
    if names.is_empty() {
        return;
    }
    let started = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .arg("wal-prefetch")
            .args(["-s", args.source.flag()])
            .arg("--into")
            .arg(spool_dir(&args.path))
            .args(&names)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
    });
    if let Err(e) = started {
        tracing::warn!(error = %e, "cannot start the WAL read-ahead");
    }
}

pub async fn prefetch_command(config: Config, args: WalPrefetchArgs) -> anyhow::Result<()> {
    let dest = existing_destination(&config, args.source)?;
    prefetch_into(&dest, &args.into, &args.names).await?;
    Ok(())
}

/// `wal check`: 0 healthy, 1 a problem (exposure over the limit, failing,
/// a gap or a missing tail), 3 a warning only (`archive_timeout`).
pub async fn run(config: Config, command: WalCommand) -> anyhow::Result<ExitCode> {
    match command {
        WalCommand::Check { source, max_lag } => {
            let dest = existing_destination(&config, source)?;
            let url = config.database_url.as_ref().map(|u| u.expose().to_string());
            let report =
                check_wal(&dest, url.as_deref(), max_lag as f64, chrono::Utc::now()).await?;
            if let Some(status) = &report.archiver {
                println!(
                    "archiver: {} archived, last {} at {}; {} failed; not archived: {:.0} s, {} bytes",
                    status.archived_count,
                    status.last_archived_wal.as_deref().unwrap_or("none"),
                    status
                        .last_archived_time
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "-".into()),
                    status.failed_count,
                    report.lag_seconds,
                    report.lag_bytes
                );
            }
            if let Some((id, start)) = &report.base_backup {
                println!(
                    "archive: {} segment(s) since base backup {id} (from {start}); newest {}",
                    report.archived_since_base,
                    report
                        .newest_archived
                        .as_ref()
                        .map(|(n, t)| format!("{n} at {}", t.to_rfc3339()))
                        .unwrap_or_else(|| "none".into())
                );
            }
            let (failing, lag_s, lag_b, missing) = (
                report.archiver.as_ref().is_some_and(|s| s.failing()),
                report.lag_seconds,
                report.lag_bytes,
                report.missing.len() as u64,
            );
            wal_metrics(&config)
                .update(WalSource::Check, |m| {
                    m.archive_failing = failing;
                    m.archive_lag_seconds = lag_s;
                    m.archive_lag_bytes = lag_b;
                    m.missing_segments = missing;
                })
                .await;
            for problem in &report.problems {
                println!("PROBLEM: {problem}");
            }
            for warning in &report.warnings {
                println!("WARNING: {warning}");
            }
            if !report.problems.is_empty() {
                anyhow::bail!("{} problem(s) with WAL archiving", report.problems.len());
            }
            if !report.warnings.is_empty() {
                println!(
                    "WAL archiving: OK, with {} warning(s)",
                    report.warnings.len()
                );
                return Ok(ExitCode::from(3));
            }
            println!("WAL archiving: OK");
        }
        WalCommand::Prune {
            source,
            retention_days,
            dry_run,
        } => {
            let dest = existing_destination(&config, source)?;
            let bases = catalog::list(&dest, Some(BackupKind::PostgresPhysical)).await?;
            let pruned =
                prune_wal(&dest, &bases, retention_days, chrono::Utc::now(), dry_run).await?;
            for name in &pruned.deleted {
                println!("{} {name}", if dry_run { "would delete" } else { "delete" });
            }
            println!(
                "kept {} file(s); the stream is whole from {} (base backup {})",
                pruned.kept,
                pruned.kept_from.as_deref().unwrap_or("-"),
                pruned.anchor.as_deref().unwrap_or("none: nothing deleted")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
