//! `mailqueue verify`: reads backups completely and checks them. Exit code
//! 0 when everything checked is sound, 3 when it is sound but the catalog
//! raises a warning (age, size), 1 when a backup is damaged or missing.

use super::backups::KindArg;
use super::places::{destination, Place};
use crate::Config;
use clap::Args;
use mailqueue_backup::verify::{catalog_warnings, verify_backup};
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
    /// Where the backups are stored (the archive, for WAL).
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
    let restore_on = match (restore, &config.database_url) {
        (false, _) => None,
        (true, Some(url)) => Some(url.expose()),
        (true, None) if manifest.kind == BackupKind::Postgres => {
            return Err(BackupError::Config(
                "--restore needs DATABASE_URL to name a server for the scratch database".into(),
            )
            .into())
        }
        (true, None) => None,
    };
    verify_backup(dest, manifest, &config.backup_lock_dir, restore_on).await?;
    Ok(())
}
