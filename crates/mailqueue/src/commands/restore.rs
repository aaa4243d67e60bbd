//! `mailqueue restore postgres latest|<id>`.

use super::places::{destination, existing_destination, location_env, Place};
use crate::Config;
use clap::{Args, Subcommand};
use mailqueue_backup::postgres::with_database;
use mailqueue_backup::restore_pitr::{
    restore_pitr, PitrOptions, RecoveryTarget, TargetAction, SEGMENT_SIZE_TOKEN,
};
use mailqueue_backup::restore_postgres::{restore_postgres, PostgresRestoreOptions};
use mailqueue_backup::restore_redis::{restore_redis, RedisLayout, RedisRestoreOptions};
use mailqueue_backup::sqlite::restore_sqlite;
use mailqueue_backup::wal::Lsn;
use mailqueue_backup::{BackupError, BackupKind};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum RestoreCommand {
    /// Restores a PostgreSQL backup into DATABASE_URL (or --database on its server).
    Postgres(PostgresArgs),
    /// Restores the embedded SQLite store (the server must be stopped).
    Sqlite(SqliteArgs),
    /// Puts a Redis backup in place for a stopped Redis, then checks its key count.
    Redis(RedisArgs),
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn values_in_restore_command_are_quoted_or_refused() {
        assert_eq!(shell_quote("/var/lib/backups").unwrap(), "/var/lib/backups");
        assert_eq!(
            shell_quote("/mnt/my backups").unwrap(),
            "\"/mnt/my backups\""
        );
        assert!(shell_quote("/tmp/$(reboot)").is_err());
        assert!(shell_quote("it's").is_err());
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum RedisKind {
    Rdb,
    Aof,
}

#[derive(Args, Debug)]
pub struct RedisArgs {
    /// `latest` or a backup id.
    backup: String,
    /// Which backups to choose from.
    #[arg(long, value_enum, default_value = "rdb")]
    kind: RedisKind,
    /// Where the backups are stored (the archive, for WAL).
    #[arg(short = 's', long, value_enum, default_value = "file")]
    source: Place,
    /// The stopped Redis' configuration (dir, dbfilename, appendonly, ...).
    #[arg(long, default_value = "/etc/redis/redis.conf")]
    redis_conf: PathBuf,
    /// Overrides `dir` from the configuration.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Overrides `appendonly` from the configuration.
    #[arg(long, value_parser = ["yes", "no"])]
    appendonly: Option<String>,
    /// Skip the key-count check with a private redis-server.
    #[arg(long)]
    no_check: bool,
}

#[derive(Args, Debug)]
pub struct SqliteArgs {
    /// `latest` or a backup id.
    backup: String,
    /// Replace an existing database file.
    #[arg(long)]
    force: bool,
    /// Where the backups are stored (the archive, for WAL).
    #[arg(short = 's', long, value_enum, default_value = "file")]
    source: Place,
}

#[derive(Args, Debug)]
pub struct PostgresArgs {
    /// `latest` or a backup id (see `mailqueue backups list`); with --pitr,
    /// `latest` (the default) recovers to the end of the archived WAL.
    backup: Option<String>,
    #[command(flatten)]
    pitr: PitrArgs,
    /// Restore into this database on DATABASE_URL's server instead.
    #[arg(long)]
    database: Option<String>,
    /// Restore over a database that already has tables.
    #[arg(long)]
    force: bool,
    /// Create the database first when the server has none of that name.
    #[arg(long)]
    create: bool,
    /// Parallel pg_restore jobs.
    #[arg(short = 'j', long, default_value_t = 2)]
    jobs: u32,
    /// Where the backup is stored.
    #[arg(short = 's', long, value_enum, default_value = "file")]
    source: Place,
    /// Also count every restored table and compare with the manifest.
    #[arg(long)]
    check_counts: bool,
}

/// Point-in-time recovery into a new data directory.
#[derive(Args, Debug)]
pub struct PitrArgs {
    /// Point-in-time recovery: a base backup and the archived WAL into --data-dir.
    #[arg(long)]
    pitr: bool,
    /// Recover every transaction committed up to this time ("2024-01-15 12:30:00+00").
    #[arg(long, requires = "pitr", conflicts_with_all = ["target_lsn", "target_name"])]
    target_time: Option<String>,
    /// Recover up to this WAL position (e.g. 0/3000060).
    #[arg(long, requires = "pitr", conflicts_with = "target_name")]
    target_lsn: Option<String>,
    /// Recover up to this restore point (pg_create_restore_point).
    #[arg(long, requires = "pitr", conflicts_with = "target_immediate")]
    target_name: Option<String>,
    /// Stop as soon as the base backup is consistent (the base backup alone).
    #[arg(long, requires = "pitr", conflicts_with_all = ["target_time", "target_lsn"])]
    target_immediate: bool,
    /// The empty directory to restore the cluster into; its owner runs the server.
    #[arg(long, requires = "pitr", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Start PostgreSQL and wait until recovery ends (otherwise the command to start it is printed).
    #[arg(long, requires = "pitr")]
    start: bool,
    /// Port of the restored server.
    #[arg(long, requires = "pitr")]
    port: Option<u16>,
    /// Turn WAL archiving off in the restored server (for a copy beside production).
    #[arg(long, requires = "pitr")]
    no_archive: bool,
    /// Pause at the target instead of promoting, to inspect the result read-only.
    #[arg(long, requires = "pitr")]
    pause: bool,
    /// How long --start waits for recovery to end, in seconds.
    #[arg(long, requires = "pitr", default_value_t = 3600)]
    start_timeout: u64,
}

/// The `restore_command` that fetches from `place`, with the location
/// settings it needs (never credentials: those come from the server's
/// environment).
pub fn restore_command(config: &Config, place: Place) -> Result<String, BackupError> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "mailqueue".into());
    let env: Vec<String> = location_env(config, place)
        .into_iter()
        .map(|(k, v)| shell_quote(&v).map(|v| format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    let prefix = if env.is_empty() {
        String::new()
    } else {
        format!("env {} ", env.join(" "))
    };
    Ok(format!(
        "{prefix}{} wal-fetch -s {} --prefetch 8 --segment-size {SEGMENT_SIZE_TOKEN} %f %p",
        shell_quote(&exe)?,
        place.flag()
    ))
}

/// A value for the shell that runs `restore_command`: as it is when it
/// holds nothing special, double-quoted otherwise; refused when it holds a
/// character double quotes do not neutralise.
fn shell_quote(value: &str) -> Result<String, BackupError> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:@%+=,".contains(c))
    {
        Ok(value.to_string())
    } else if value.contains(['"', '\\', '$', '`', '\'']) {
        Err(BackupError::Config(format!(
            "`{value}` cannot be written into restore_command; use a path or URL without quotes, $, ` or \\"
        )))
    } else {
        Ok(format!("\"{value}\""))
    }
}

async fn restore_pitr_command(config: &Config, args: PostgresArgs) -> anyhow::Result<()> {
    let p = args.pitr;
    let data_dir = p.data_dir.ok_or_else(|| {
        BackupError::Config(
            "--pitr needs --data-dir, an empty directory for the restored cluster".into(),
        )
    })?;
    let target = match (&p.target_time, &p.target_lsn, &p.target_name, args.backup.as_deref()) {
        _ if p.target_immediate => RecoveryTarget::Immediate,
        (Some(t), _, _, _) => RecoveryTarget::parse_time(t)?,
        (_, Some(l), _, _) => RecoveryTarget::Lsn(l.parse::<Lsn>()?),
        (_, _, Some(n), _) => RecoveryTarget::Name(n.clone()),
        (None, None, None, None | Some("latest")) => RecoveryTarget::Latest,
        (None, None, None, Some(other)) => {
            return Err(BackupError::Config(format!(
                "with --pitr, give --target-time, --target-lsn or --target-name, or `latest` (not `{other}`)"
            ))
            .into())
        }
    };
    let dest = existing_destination(config, args.source)?;
    let mut settings = Vec::new();
    if let Some(port) = p.port {
        settings.push(format!("port = {port}"));
    }
    if p.no_archive {
        settings.push("archive_mode = off".into());
    }
    let options = PitrOptions {
        target: target.clone(),
        data_dir: data_dir.clone(),
        restore_command: restore_command(config, args.source)?,
        action: if p.pause {
            TargetAction::Pause
        } else {
            TargetAction::Promote
        },
        settings,
        start: p.start,
        start_timeout: std::time::Duration::from_secs(p.start_timeout),
        owner: None,
        hba: None,
    };
    let restored = restore_pitr(&dest, &options).await?;
    println!(
        "Restored base backup {} into {} for recovery to {target} ({} WAL segments archived since it).",
        restored.base.id,
        data_dir.display(),
        restored.archived_segments
    );
    if restored.started {
        println!("PostgreSQL recovered to {target} and is running.");
    } else {
        println!(
            "Start it (as the directory's owner) with:\n  {}",
            restored.start_command
        );
    }
    Ok(())
}

pub async fn run(config: Config, command: RestoreCommand) -> anyhow::Result<()> {
    match command {
        RestoreCommand::Postgres(args) if args.pitr.pitr => {
            restore_pitr_command(&config, args).await
        }
        RestoreCommand::Postgres(args) => {
            let Some(backup) = args.backup.clone() else {
                return Err(BackupError::Config(
                    "give `latest` or a backup id (or --pitr for point-in-time recovery)".into(),
                )
                .into());
            };
            let url = config.database_url.as_ref().ok_or_else(|| {
                BackupError::Config(
                    "DATABASE_URL names the server to restore to; it is not set".into(),
                )
            })?;
            let target = match &args.database {
                Some(name) => with_database(url.expose(), name)?,
                None => url.expose().to_string(),
            };
            let dest = destination(&config, args.source)?;
            let options = PostgresRestoreOptions {
                target_url: target,
                force: args.force,
                jobs: args.jobs,
                work_dir: config.backup_lock_dir.clone(),
                compare_counts: args.check_counts,
                create: args.create,
            };
            let manifest = restore_postgres(&dest, &backup, &options).await?;
            let rows: u64 = manifest.row_counts.values().sum();
            let checked = if args.check_counts {
                "counts match the manifest"
            } else {
                "checksum verified; --check-counts also compares row counts"
            };
            println!(
                "Restored {} ({} tables, {rows} rows; {checked}).",
                manifest.id,
                manifest.row_counts.len()
            );
            Ok(())
        }
        RestoreCommand::Redis(args) => {
            let dest = destination(&config, args.source)?;
            let conf = std::fs::read_to_string(&args.redis_conf).unwrap_or_default();
            let mut layout = RedisLayout::from_conf(&conf);
            if let Some(dir) = args.dir {
                layout.dir = dir;
            } else if conf.is_empty() {
                return Err(BackupError::Config(format!(
                    "cannot read {}; give --redis-conf or --dir",
                    args.redis_conf.display()
                ))
                .into());
            }
            if let Some(a) = &args.appendonly {
                layout.appendonly = a == "yes";
            }
            let kind = match args.kind {
                RedisKind::Rdb => BackupKind::RedisRdb,
                RedisKind::Aof => BackupKind::RedisAof,
            };
            let options = RedisRestoreOptions {
                layout: layout.clone(),
                redis_url: config.redis_url.as_ref().map(|u| u.expose().to_string()),
                check_keys: !args.no_check,
            };
            let restored = restore_redis(&dest, kind, &args.backup, &options).await?;
            println!(
                "Restored {} into {} (appendonly {}).",
                restored.manifest.id,
                layout.dir.display(),
                if layout.appendonly { "yes" } else { "no" }
            );
            if let Some(keys) = restored.keys_loaded {
                println!(
                    "A private redis-server loaded {keys} keys (the backup recorded {}).",
                    restored
                        .manifest
                        .key_count
                        .map(|k| k.to_string())
                        .unwrap_or_else(|| "none".into())
                );
            }
            Ok(())
        }
        RestoreCommand::Sqlite(args) => {
            let dest = destination(&config, args.source)?;
            let path = config.sqlite_path();
            let lock = config.data_dir.join("mailqueue.lock");
            let manifest = restore_sqlite(&dest, &args.backup, &path, &lock, args.force).await?;
            println!(
                "Restored {} into {} (integrity check passed).",
                manifest.id,
                path.display()
            );
            Ok(())
        }
    }
}
