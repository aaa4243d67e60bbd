//! `mailqueue restore postgres latest|<id>`.

use super::places::{destination, Place};
use crate::Config;
use clap::{Args, Subcommand};
use mailqueue_backup::postgres::with_database;
use mailqueue_backup::restore_postgres::{restore_postgres, PostgresRestoreOptions};
use mailqueue_backup::restore_redis::{restore_redis, RedisLayout, RedisRestoreOptions};
use mailqueue_backup::sqlite::restore_sqlite;
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
    #[arg(short = 's', long, value_enum, default_value = "file")]
    source: Place,
}

#[derive(Args, Debug)]
pub struct PostgresArgs {
    /// `latest` or a backup id (see `mailqueue backups list`).
    backup: String,
    /// Restore into this database on DATABASE_URL's server instead.
    #[arg(long)]
    database: Option<String>,
    /// Restore over a database that already has tables.
    #[arg(long)]
    force: bool,
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

pub async fn run(config: Config, command: RestoreCommand) -> anyhow::Result<()> {
    match command {
        RestoreCommand::Postgres(args) => {
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
            };
            let manifest = restore_postgres(&dest, &args.backup, &options).await?;
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
