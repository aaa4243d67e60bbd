//! `mailqueue backups list|prune`: the catalog, from the manifests.

use super::backup::{policy_for, print_decisions};
use super::places::{existing_destination, Place};
use crate::Config;
use clap::{Subcommand, ValueEnum};
use mailqueue_backup::prune::prune;
use mailqueue_backup::{catalog, BackupKind};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KindArg {
    Postgres,
    PostgresPhysical,
    RedisRdb,
    RedisAof,
    Sqlite,
}

impl From<KindArg> for BackupKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Postgres => BackupKind::Postgres,
            KindArg::PostgresPhysical => BackupKind::PostgresPhysical,
            KindArg::RedisRdb => BackupKind::RedisRdb,
            KindArg::RedisAof => BackupKind::RedisAof,
            KindArg::Sqlite => BackupKind::Sqlite,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum BackupsCommand {
    /// Lists published backups, oldest first.
    List {
        #[arg(long)]
        json: bool,
        /// Where the backups are stored (the archive, for WAL).
        #[arg(short = 's', long, value_enum, default_value = "file")]
        source: Place,
    },
    /// Applies retention: prints what is kept and why, deletes the rest.
    Prune {
        /// The kind of backups to apply retention to.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Keep every backup younger than DAYS.
        #[arg(
            short = 'r',
            long = "retention-days",
            value_name = "DAYS",
            default_value_t = 30
        )]
        retention_days: u32,
        /// Print the decisions, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where the backups are stored (the archive, for WAL).
        #[arg(short = 's', long, value_enum, default_value = "file")]
        source: Place,
    },
}

pub async fn run(config: Config, command: BackupsCommand) -> anyhow::Result<()> {
    match command {
        BackupsCommand::List { json, source } => {
            let dest = existing_destination(&config, source)?;
            let manifests = catalog::list(&dest, None).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&manifests)?);
                return Ok(());
            }
            println!(
                "{:<17} {:<28} {:<25} {:>14}  {:<5} ENCRYPTED",
                "KIND", "ID", "FINISHED", "BYTES", "COMP"
            );
            for m in manifests {
                println!(
                    "{:<17} {:<28} {:<25} {:>14}  {:<5} {}",
                    m.kind.as_str(),
                    m.id,
                    m.finished_at.to_rfc3339(),
                    m.size_bytes,
                    m.compression.extension(),
                    if m.encrypted() { "yes" } else { "no" }
                );
            }
        }
        BackupsCommand::Prune {
            kind,
            retention_days,
            dry_run,
            source,
        } => {
            let dest = existing_destination(&config, source)?;
            let kind = BackupKind::from(kind);
            let policy = policy_for(&config, kind, retention_days);
            let decisions = prune(&dest, kind, &policy, chrono::Utc::now(), dry_run).await?;
            print_decisions(kind, &decisions, dry_run);
        }
    }
    Ok(())
}
