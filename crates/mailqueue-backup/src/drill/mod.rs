//! The disaster-recovery drill: the guide's monthly DR test, automated.
//!
//! Into an isolated scratch PostgreSQL cluster (its own data directory, a
//! free port, a private socket directory, no TCP listener) and a scratch
//! Redis, it restores what an operator would restore after losing the
//! site, and checks what it got:
//!
//! - PostgreSQL, physical: the newest base backup, recovered first to the
//!   restore point its manifest's figures were taken at (row counts and
//!   per-table checksums compared there), then on to the end of the
//!   archived WAL; logical: the newest dump, compared with its figures.
//! - the delivery invariants: every email is terminal or has a way to
//!   become so (queued and scheduled emails have a due time, sending ones
//!   a lease, and every email not yet terminal has its content);
//! - requeue-all: the dispatch state rebuilt from the restored store holds
//!   every pending email ([`DispatchRebuild`], so a Redis queue can be
//!   plugged in where the in-process one is used today);
//! - Redis: the newest backup loaded by a private `redis-server`, its key
//!   count against the manifest.
//!
//! Each phase is timed. The report states the RTO achieved (the time the
//! restores and checks took) and the RPO implied by the newest usable
//! backup and archived WAL, against the guide's targets; a missed target
//! or a failed check fails the drill.

mod postgres;
pub mod report;

use crate::cluster::Owner;
use crate::destination::Destination;
use crate::error::BackupError;
use crate::restore_redis::{restore_redis, RedisLayout, RedisRestoreOptions};
use crate::{catalog, BackupKind};
use async_trait::async_trait;
pub use report::{Check, Component, DrillReport, Phase, Targets};
use std::path::PathBuf;
use std::time::Instant;

/// Rebuilds the dispatch state from a restored database.
#[async_trait]
pub trait DispatchRebuild: Send + Sync {
    /// Requeues every pending email of the database at `url` into a fresh
    /// queue; returns how many were enqueued and how many the queue holds.
    async fn rebuild(&self, url: &str) -> Result<(u64, u64), String>;
    /// Where the queue is rebuilt, for the report.
    fn destination(&self) -> &'static str;
}

/// Which PostgreSQL backup the drill restores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostgresSource {
    /// Physical when there is a base backup, logical otherwise.
    Auto,
    Physical,
    Logical,
    /// No PostgreSQL in this deployment.
    None,
}

pub struct DrillOptions {
    /// Scratch space; removed afterwards.
    pub work_dir: PathBuf,
    pub postgres: PostgresSource,
    /// The mailqueue database's name in the cluster.
    pub database: String,
    /// The cluster's superuser (physical restores keep the source's roles).
    pub superuser: String,
    /// `restore_command` for the physical restore.
    pub restore_command: String,
    pub redis: bool,
    /// Who runs the scratch PostgreSQL.
    pub run_as: Owner,
    pub targets: Targets,
    pub dispatch: Option<Box<dyn DispatchRebuild>>,
}

/// Runs the drill; the report says what passed and failed. Errors are
/// for a drill that could not run at all.
pub async fn run_drill(
    dest: &Destination,
    opts: &DrillOptions,
) -> Result<DrillReport, BackupError> {
    let mut report = DrillReport::new(opts.targets.clone(), chrono::Utc::now());
    if opts.work_dir.exists() {
        std::fs::remove_dir_all(&opts.work_dir)
            .map_err(|e| BackupError::io(format!("clearing {}", opts.work_dir.display()), e))?;
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(|e| BackupError::io(format!("creating {}", opts.work_dir.display()), e))?;
    let catalogue = catalog::list(dest, None).await?;
    let newest = |kind: BackupKind| catalogue.iter().rev().find(|m| m.kind == kind).cloned();
    let source = match opts.postgres {
        PostgresSource::Auto if newest(BackupKind::PostgresPhysical).is_some() => {
            PostgresSource::Physical
        }
        PostgresSource::Auto => PostgresSource::Logical,
        other => other,
    };
    match source {
        PostgresSource::Physical => match newest(BackupKind::PostgresPhysical) {
            Some(base) => postgres::drill_physical(dest, opts, &base, &mut report).await,
            None => report.fail("postgres", "there is no PostgreSQL base backup"),
        },
        PostgresSource::Logical => match newest(BackupKind::Postgres) {
            Some(dump) => postgres::drill_logical(dest, opts, &dump, &mut report).await,
            None => report.fail("postgres", "there is no PostgreSQL backup"),
        },
        PostgresSource::Auto | PostgresSource::None => {}
    }
    if opts.redis {
        drill_redis(dest, opts, &catalogue, &mut report).await;
    }
    let _ = std::fs::remove_dir_all(&opts.work_dir);
    report.finish(chrono::Utc::now());
    Ok(report)
}

async fn drill_redis(
    dest: &Destination,
    opts: &DrillOptions,
    catalogue: &[crate::Manifest],
    report: &mut DrillReport,
) {
    let Some(backup) = catalogue
        .iter()
        .rev()
        .find(|m| matches!(m.kind, BackupKind::RedisRdb | BackupKind::RedisAof))
    else {
        return report.fail("redis", "there is no Redis backup");
    };
    let started = Instant::now();
    let dir = opts.work_dir.join("redis");
    let layout = RedisLayout {
        dir,
        dbfilename: "dump.rdb".into(),
        appendonly: backup.kind == BackupKind::RedisAof,
        appenddirname: "appendonlydir".into(),
        appendfilename: "appendonly.aof".into(),
    };
    let restored = restore_redis(
        dest,
        backup.kind,
        &backup.id,
        &RedisRestoreOptions {
            layout,
            redis_url: None,
            check_keys: true,
        },
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let detail = match &restored {
        Ok(r) => format!(
            "{} loaded {} keys (the backup recorded {})",
            backup.id,
            r.keys_loaded.unwrap_or(0),
            r.manifest
                .key_count
                .map(|k| k.to_string())
                .unwrap_or_else(|| "none".into())
        ),
        Err(e) => format!("{}: {e}", backup.id),
    };
    report.phase(
        "redis: restore into a scratch redis-server and count keys",
        seconds,
        restored.is_ok(),
        &detail,
    );
    report.check(
        "redis: the key count matches the backup",
        restored.is_ok(),
        &detail,
    );
    report.component(Component {
        name: "redis".into(),
        backup: backup.id.clone(),
        source: backup.kind.to_string(),
        recovered_to: backup.started_at,
        rto_seconds: seconds,
        rpo_seconds: report.age_of(backup.started_at),
        rto_target_seconds: opts.targets.redis_rto_seconds,
        rpo_target_seconds: opts.targets.redis_rpo_seconds,
    });
}
