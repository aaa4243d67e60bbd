//! `mailqueue verify`: reads every byte of a backup (size, SHA-256,
//! decryption, decompression) and hands the dump to `pg_restore` writing
//! to /dev/null, which reads the whole archive (`pg_restore --list` alone
//! accepts a truncated dump). It also warns when the newest backup is
//! older than 24 hours or its size strays from the median of the recent
//! ones by more than 50%.

use crate::destination::Destination;
use crate::error::BackupError;
use crate::kind::BackupKind;
use crate::manifest::Manifest;
use crate::postgres::wait_tool;
use crate::reading::{read_plaintext, write_plaintext, Scratch};
use chrono::{DateTime, Utc};
use std::process::{Command, Stdio};

/// Reads one backup completely and checks it with its kind's own tool;
/// with `restore_on` (a PostgreSQL server's admin URL), a logical backup is
/// also restored into a scratch database there and its counts compared.
pub async fn verify_backup(
    dest: &Destination,
    manifest: &Manifest,
    scratch_dir: &std::path::Path,
    restore_on: Option<&str>,
) -> Result<(), BackupError> {
    match manifest.kind {
        BackupKind::Postgres => {
            verify_postgres(dest, manifest).await?;
            if let Some(admin_url) = restore_on {
                restore_into_scratch_database(dest, manifest, admin_url, scratch_dir).await?;
            }
            Ok(())
        }
        BackupKind::PostgresPhysical => verify_physical(dest, manifest).await,
        BackupKind::Sqlite => verify_sqlite(dest, manifest, scratch_dir).await,
        BackupKind::RedisRdb | BackupKind::RedisAof => {
            verify_redis(dest, manifest, scratch_dir).await
        }
        BackupKind::WalSegment => Err(BackupError::Config(
            "WAL files have no manifest; `mailqueue wal check` checks the archive".into(),
        )),
    }
}

/// Restores a logical backup into a new database on `admin_url`'s server,
/// compares its row counts with the manifest, and drops it again.
pub async fn restore_into_scratch_database(
    dest: &Destination,
    manifest: &Manifest,
    admin_url: &str,
    work_dir: &std::path::Path,
) -> Result<(), BackupError> {
    use crate::postgres::{create_database, drop_database, with_database};
    use crate::restore_postgres::{restore_postgres, PostgresRestoreOptions};
    let scratch = format!("mailqueue_verify_{}", std::process::id());
    create_database(admin_url, &scratch).await?;
    let options = PostgresRestoreOptions {
        target_url: with_database(admin_url, &scratch)?,
        force: false,
        jobs: 2,
        work_dir: work_dir.to_path_buf(),
        compare_counts: true,
        create: false,
    };
    let restored = restore_postgres(dest, &manifest.id, &options).await;
    if let Err(e) = drop_database(admin_url, &scratch).await {
        tracing::warn!(error = %e, "the scratch database {scratch} could not be dropped");
    }
    restored.map(|_| ())
}

/// A base backup: every byte read and checked, and the tar read through
/// to its end, holding `backup_label` and `global/pg_control`.
pub async fn verify_physical(dest: &Destination, manifest: &Manifest) -> Result<(), BackupError> {
    let (dest, manifest) = (dest.clone(), manifest.clone());
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || -> Result<(), BackupError> {
        let (reader, mut writer) =
            std::io::pipe().map_err(|e| BackupError::io("creating a pipe", e))?;
        let lister = std::thread::spawn(move || -> std::io::Result<Vec<String>> {
            let mut archive = tar::Archive::new(reader);
            let mut names = Vec::new();
            for entry in archive.entries()? {
                let mut entry = entry?;
                names.push(entry.path()?.to_string_lossy().to_string());
                std::io::copy(&mut entry, &mut std::io::sink())?;
            }
            // Drain what follows the end-of-archive blocks.
            std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
            Ok(names)
        });
        let read = read_plaintext(&dest, &manifest, handle, &mut writer);
        drop(writer);
        let listed = lister
            .join()
            .map_err(|_| BackupError::Io("the tar reader panicked".into()))?;
        read?;
        let names =
            listed.map_err(|e| manifest.corrupt(format!("it is not a whole tar archive: {e}")))?;
        for needed in ["backup_label", "global/pg_control"] {
            if !names.iter().any(|n| n.trim_start_matches("./") == needed) {
                return Err(manifest.corrupt(format!("the base backup has no {needed}")));
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| BackupError::Io(format!("the verify stage stopped: {e}")))?
}

/// PostgreSQL: reads the backup completely and has `pg_restore` read the
/// whole archive, writing to /dev/null.
pub async fn verify_postgres(dest: &Destination, manifest: &Manifest) -> Result<(), BackupError> {
    let (dest, manifest) = (dest.clone(), manifest.clone());
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || -> Result<(), BackupError> {
        let mut child = Command::new("pg_restore")
            .args(["--file=/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(BackupError::cannot_start("pg_restore"))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| BackupError::Io("pg_restore has no stdin".into()))?;
        let read = read_plaintext(&dest, &manifest, handle, &mut stdin);
        drop(stdin);
        let checked = wait_tool("pg_restore", child);
        read?;
        checked.map_err(|e| manifest.corrupt(format!("pg_restore cannot read it ({e})")))
    })
    .await
    .map_err(|e| BackupError::Io(format!("the verify stage stopped: {e}")))?
}

/// SQLite: the copy must pass `integrity_check` and hold the manifest's rows.
pub async fn verify_sqlite(
    dest: &Destination,
    manifest: &Manifest,
    scratch_dir: &std::path::Path,
) -> Result<(), BackupError> {
    std::fs::create_dir_all(scratch_dir)
        .map_err(|e| BackupError::io(format!("creating {}", scratch_dir.display()), e))?;
    let copy = Scratch::new(scratch_dir, &format!("verify-{}.db", manifest.id));
    write_plaintext(dest, manifest, copy.path(), false).await?;
    crate::sqlite::check_integrity(copy.path())
        .await
        .map_err(|e| manifest.corrupt(e.to_string()))?;
    let (counts, _) = crate::sqlite::describe(copy.path()).await?;
    if counts != manifest.row_counts {
        return Err(manifest.corrupt("its row counts differ from the manifest"));
    }
    Ok(())
}

/// Redis: the snapshot passes `redis-check-rdb` (RDB) or `redis-check-aof`
/// (the AOF directory), and an exact key count matches the manifest.
pub async fn verify_redis(
    dest: &Destination,
    manifest: &Manifest,
    scratch_dir: &std::path::Path,
) -> Result<(), BackupError> {
    let scratch = Scratch::new(scratch_dir, &format!("verify-{}", manifest.id));
    std::fs::create_dir_all(scratch.path())
        .map_err(|e| BackupError::io(format!("creating {}", scratch.path().display()), e))?;
    let file = scratch.path().join("backup");
    write_plaintext(dest, manifest, &file, false).await?;
    match manifest.kind {
        BackupKind::RedisRdb => {}
        BackupKind::RedisAof => return check_aof(manifest, &file, scratch.path()).await,
        BackupKind::Postgres
        | BackupKind::PostgresPhysical
        | BackupKind::WalSegment
        | BackupKind::Sqlite => {
            return Err(BackupError::Config(format!(
                "{} is not a Redis backup",
                manifest.kind
            )))
        }
    }
    let keys = crate::backup_redis::check_rdb(&file)
        .await
        .map_err(|e| manifest.corrupt(e.to_string()))?;
    match (keys, manifest.key_count, manifest.key_count_exact) {
        (None, _, _) => Err(BackupError::ToolMissing {
            tool: "redis-check-rdb",
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not on PATH"),
        }),
        (Some(n), Some(expected), true) if n != expected => {
            Err(manifest.corrupt(format!("it holds {n} keys; the manifest says {expected}")))
        }
        _ => Ok(()),
    }
}

/// Unpacks an AOF archive into `dir` and runs `redis-check-aof` on its
/// manifest.
async fn check_aof(
    manifest: &Manifest,
    archive: &std::path::Path,
    dir: &std::path::Path,
) -> Result<(), BackupError> {
    let layout = crate::restore_redis::RedisLayout {
        dir: dir.to_path_buf(),
        dbfilename: "dump.rdb".into(),
        appendonly: true,
        appenddirname: "aof".into(),
        appendfilename: "appendonly.aof".into(),
    };
    crate::restore_redis::unpack_aof(archive, &layout)
        .map_err(|e| manifest.corrupt(e.to_string()))?;
    let manifest_file = std::fs::read_dir(dir.join("aof"))
        .map_err(|e| BackupError::io("listing the AOF files", e))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "manifest"))
        .ok_or_else(|| manifest.corrupt("the archive has no AOF manifest"))?;
    let out = tokio::process::Command::new("redis-check-aof")
        .arg(&manifest_file)
        .output()
        .await
        .map_err(BackupError::cannot_start("redis-check-aof"))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rev().find(|l| !l.trim().is_empty());
    Err(manifest.corrupt(format!(
        "redis-check-aof: {}",
        last.unwrap_or("failed").trim()
    )))
}

/// Warnings about the catalog of one kind as of `now`.
pub fn catalog_warnings(manifests: &[Manifest], now: DateTime<Utc>) -> Vec<String> {
    let Some(newest) = manifests.iter().max_by_key(|m| m.finished_at) else {
        return vec!["there is no backup at all".into()];
    };
    let mut warnings = Vec::new();
    let age = now - newest.finished_at;
    if age > chrono::Duration::hours(24) {
        warnings.push(format!(
            "the newest {} backup ({}) is {} hours old",
            newest.kind,
            newest.id,
            age.num_hours()
        ));
    }
    let mut recent: Vec<u64> = manifests
        .iter()
        .filter(|m| m.id != newest.id)
        .rev()
        .take(7)
        .map(|m| m.size_bytes)
        .collect();
    if !recent.is_empty() {
        recent.sort_unstable();
        let median = recent[recent.len() / 2] as f64;
        let size = newest.size_bytes as f64;
        if median > 0.0 && ((size - median) / median).abs() > 0.5 {
            warnings.push(format!(
                "the newest {} backup ({}) has {} bytes, {:+.0}% from the median of the previous ones ({median} bytes)",
                newest.kind,
                newest.id,
                newest.size_bytes,
                (size - median) / median * 100.0
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap()
    }

    /// Backups taken daily until `newest_age` ago, oldest first, with these sizes.
    fn daily(sizes: &[u64], newest_age: Duration) -> Vec<Manifest> {
        let n = sizes.len() as i64;
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let at = now() - newest_age - Duration::days(n - 1 - i as i64);
                Manifest::sample(&format!("b{i}"), at, size)
            })
            .collect()
    }

    #[test]
    fn a_fresh_backup_of_the_usual_size_raises_nothing() {
        let catalog = daily(&[1000, 1100, 900, 1000, 1040], Duration::hours(3));
        assert!(catalog_warnings(&catalog, now()).is_empty());
    }

    #[test]
    fn a_newest_backup_over_a_day_old_is_reported() {
        let catalog = daily(&[1000, 1000], Duration::hours(25));
        let warnings = catalog_warnings(&catalog, now());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("b1") && warnings[0].contains("25 hours old"));
        assert!(catalog_warnings(&daily(&[1000, 1000], Duration::hours(23)), now()).is_empty());
    }

    #[test]
    fn a_size_beyond_half_the_median_either_way_is_reported() {
        for (newest, warned) in [(1600, true), (400, true), (1450, false), (560, false)] {
            let catalog = daily(&[1000, 990, 1010, newest], Duration::hours(1));
            let warnings = catalog_warnings(&catalog, now());
            assert_eq!(!warnings.is_empty(), warned, "{newest}: {warnings:?}");
            if warned {
                assert!(warnings[0].contains("median"), "{warnings:?}");
            }
        }
    }

    #[test]
    fn the_median_is_of_the_seven_backups_before_the_newest() {
        // Ten tiny old backups, then seven of 1000: the old ones are out of the window.
        let mut sizes = vec![10; 10];
        sizes.extend([1000; 7]);
        sizes.push(1100);
        assert!(catalog_warnings(&daily(&sizes, Duration::hours(1)), now()).is_empty());
    }

    #[test]
    fn no_backup_at_all_is_a_warning_and_a_single_one_has_no_median() {
        assert_eq!(
            catalog_warnings(&[], now()),
            vec!["there is no backup at all"]
        );
        assert!(catalog_warnings(&daily(&[5], Duration::hours(1)), now()).is_empty());
    }
}
