//! `mailqueue backup postgres`: the engine behind `scripts/backup/pg-backup.sh`.

use super::places::{destination, Place};
use crate::Config;
use clap::{Args, Subcommand};
use mailqueue_backup::backup_postgres::{backup_postgres, PostgresBackupOptions};
use mailqueue_backup::{BackupError, Compression};

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Backs up the PostgreSQL database of DATABASE_URL (pg_dump -Fc).
    Postgres(PostgresArgs),
}

#[derive(Args, Debug)]
pub struct PostgresArgs {
    /// Compression of the stored dump.
    #[arg(short = 'c', long, default_value = "zstd", value_parser = ["zstd", "gzip"])]
    compression: String,
    /// Encrypt with OpenPGP to GPG_RECIPIENT.
    #[arg(short = 'e', long)]
    encrypt: bool,
    /// Upload to S3 or GCS instead of MAILQUEUE_BACKUP_DIR.
    #[arg(short = 'u', long, value_enum)]
    upload: Option<Place>,
}

pub async fn run(config: Config, command: BackupCommand) -> anyhow::Result<()> {
    match command {
        BackupCommand::Postgres(args) => {
            let url = config.database_url.as_ref().ok_or_else(|| {
                BackupError::Config(
                    "DATABASE_URL names the database to back up; it is not set".into(),
                )
            })?;
            if args.encrypt && config.gpg_recipients.is_empty() {
                return Err(BackupError::Config(
                    "-e needs GPG_RECIPIENT (one or more, comma-separated)".into(),
                )
                .into());
            }
            let dest = destination(&config, args.upload.unwrap_or(Place::File))?;
            let options = PostgresBackupOptions {
                database_url: url.expose().to_string(),
                compression: args
                    .compression
                    .parse::<Compression>()
                    .map_err(BackupError::Config)?,
                recipients: if args.encrypt {
                    config.gpg_recipients.clone()
                } else {
                    Vec::new()
                },
                lock_dir: config.backup_lock_dir.clone(),
            };
            let manifest = backup_postgres(&dest, &options, chrono::Utc::now).await?;
            println!(
                "Backup {} stored at {} ({} bytes, sha256 {}).",
                manifest.id,
                dest.location(&manifest.object),
                manifest.size_bytes,
                manifest.sha256
            );
            Ok(())
        }
    }
}
