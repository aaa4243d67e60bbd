//! `mailqueue verify`: reads backups completely and checks them. Exit code
//! 0 when everything checked is sound, 3 when it is sound but the catalog
//! raises a warning (age, size), 1 when a backup is damaged or missing.

use super::backups::KindArg;
use super::places::{destination, Place};
use crate::Config;
use clap::Args;
use mailqueue_backup::postgres::{create_database, drop_database, with_database};
use mailqueue_backup::restore_postgres::{restore_postgres, PostgresRestoreOptions};
use mailqueue_backup::verify::{catalog_warnings, verify_postgres, verify_redis, verify_sqlite};
use mailqueue_backup::{catalog, BackupError, BackupKind, Destination, Manifest};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// `latest` (default), a backup id, or `all`.
    #[arg(default_value = "latest")]
    backup: String,
    /// Also restore into a scratch database on DATABASE_URL's server and
    /// compare row counts with the manifest.
    #[arg(long)]
    restore: bool,
    #[arg(short = 's', long, value_enum, default_value = "file")]
    source: Place,
    /// Only this kind (default: every kind that has backups).
    #[arg(long, value_enum)]
    kind: Option<KindArg>,
}

/// The outcome, for the process exit code.
pub enum Verdict {
    Sound,
    Warnings,
}

pub async fn run(config: Config, args: VerifyArgs) -> anyhow::Result<Verdict> {
    let dest = destination(&config, args.source)?;
    let everything = catalog::list(&dest, None).await?;
    let kinds: Vec<BackupKind> = match args.kind {
        Some(k) => vec![k.into()],
        None => {
            let mut present: Vec<BackupKind> = Vec::new();
            for m in &everything {
                if !present.contains(&m.kind) {
                    present.push(m.kind);
                }
            }
            if present.is_empty() {
                anyhow::bail!("there are no backups at {}", dest.describe());
            }
            present
        }
    };
    let mut failed = 0;
    let mut checked = 0;
    let mut warnings = Vec::new();
    for kind in kinds {
        let all: Vec<Manifest> = everything
            .iter()
            .filter(|m| m.kind == kind)
            .cloned()
            .collect();
        // A backup id names one backup of one kind; the other kinds have
        // nothing to check.
        let chosen: Vec<&Manifest> = match args.backup.as_str() {
            "all" => all.iter().collect(),
            "latest" => all.last().into_iter().collect(),
            id => all
                .iter()
                .filter(|m| m.id == id || m.object == id)
                .collect(),
        };
        for manifest in chosen {
            checked += 1;
            match check(&config, &dest, manifest, args.restore).await {
                Ok(()) => println!("{kind} {}: OK", manifest.id),
                Err(e) => {
                    failed += 1;
                    println!("{kind} {}: FAILED: {e:#}", manifest.id);
                }
            }
        }
        warnings.extend(catalog_warnings(&all, chrono::Utc::now()));
    }
    if checked == 0 {
        return Err(BackupError::NotFound(args.backup.clone()).into());
    }
    for w in &warnings {
        println!("WARNING: {w}");
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {checked} backups failed verification");
    }
    Ok(if warnings.is_empty() {
        Verdict::Sound
    } else {
        Verdict::Warnings
    })
}

/// Reads one backup completely, and restores it into a scratch database when asked.
async fn check(
    config: &Config,
    dest: &Destination,
    manifest: &Manifest,
    restore: bool,
) -> anyhow::Result<()> {
    match manifest.kind {
        // The SQLite check is already a full restore into a scratch file.
        BackupKind::Sqlite => verify_sqlite(dest, manifest, &config.backup_lock_dir).await?,
        BackupKind::RedisRdb | BackupKind::RedisAof => {
            verify_redis(dest, manifest, &config.backup_lock_dir).await?
        }
        _ => {
            verify_postgres(dest, manifest).await?;
            if restore {
                restore_into_scratch(config, dest, &manifest.id).await?;
            }
        }
    }
    Ok(())
}

async fn restore_into_scratch(config: &Config, dest: &Destination, id: &str) -> anyhow::Result<()> {
    let url = config.database_url.as_ref().ok_or_else(|| {
        BackupError::Config(
            "--restore needs DATABASE_URL to name a server for the scratch database".into(),
        )
    })?;
    let scratch = format!("mailqueue_verify_{}", std::process::id());
    let admin = url.expose();
    create_database(admin, &scratch).await?;
    let options = PostgresRestoreOptions {
        target_url: with_database(admin, &scratch)?,
        force: false,
        jobs: 2,
        work_dir: config.backup_lock_dir.clone(),
        compare_counts: true,
    };
    let restored = restore_postgres(dest, id, &options).await;
    if let Err(e) = drop_database(admin, &scratch).await {
        tracing::warn!(error = %e, "the scratch database {scratch} could not be dropped");
    }
    restored?;
    Ok(())
}
