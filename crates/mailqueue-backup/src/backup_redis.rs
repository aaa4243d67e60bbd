//! `mailqueue backup redis -m rdb|aof|both`.
//!
//! RDB: `BGSAVE`, then the finished file, opened at once (a later save
//! replaces the file by rename, so the open copy stays whole); where the
//! file is out of reach, the replication stream (`SYNC`) delivers the same
//! snapshot. AOF (Redis 7's multi-part directory): automatic rewrites are
//! paused and any running one awaited, as Redis documents, so the base,
//! increments and manifest are copied as one consistent set (a tar stream),
//! then rewrites are resumed whatever happened.

use crate::destination::Destination;
use crate::error::BackupError;
use crate::gpg;
use crate::kind::{BackupKind, Compression};
use crate::lock::BackupLock;
use crate::manifest::Manifest;
use crate::publish::{publish, PublishRequest, Source, SourceFacts};
use crate::redis_server::{sync_stream, RedisAdmin};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct RedisBackupOptions {
    pub redis_url: String,
    pub compression: Compression,
    pub recipients: Vec<String>,
    pub lock_dir: PathBuf,
    /// Take the RDB from the replication stream even when the file is reachable.
    pub via_replication: bool,
}

const SAVE_TIMEOUT: Duration = Duration::from_secs(3600);

pub async fn backup_redis_rdb(
    dest: &Destination,
    opts: &RedisBackupOptions,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Manifest, BackupError> {
    let _lock = BackupLock::acquire(&opts.lock_dir, BackupKind::RedisRdb)?;
    let started_at = now();
    let recipients = gpg::recipients(&opts.recipients)?;
    let mut admin = RedisAdmin::connect(&opts.redis_url).await?;
    let file =
        PathBuf::from(admin.config_get("dir").await?).join(admin.config_get("dbfilename").await?);
    // The file is ours to read only when Redis runs on this machine: a path
    // that merely exists here could belong to another Redis.
    let reachable = !opts.via_replication
        && is_local(&opts.redis_url)
        && file.parent().is_some_and(Path::is_dir);
    let mut exact = None;
    if reachable {
        admin.bgsave_and_wait(SAVE_TIMEOUT).await?;
        exact = check_rdb(&file).await?;
    }
    let facts = SourceFacts {
        version: admin.version().await?,
        row_counts: Default::default(),
        key_count_exact: exact.is_some(),
        key_count: Some(match exact {
            Some(n) => n,
            None => admin.key_count().await?,
        }),
        ..Default::default()
    };
    let url = opts.redis_url.clone();
    let open = move || {
        if reachable {
            Source::file(&file)
        } else {
            Ok(Source::plain(sync_stream(&url)?))
        }
    };
    let request = PublishRequest::new(
        BackupKind::RedisRdb,
        opts.compression,
        recipients,
        started_at,
    );
    publish(dest, request, facts, open, now).await
}

pub async fn backup_redis_aof(
    dest: &Destination,
    opts: &RedisBackupOptions,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Manifest, BackupError> {
    let _lock = BackupLock::acquire(&opts.lock_dir, BackupKind::RedisAof)?;
    let started_at = now();
    let recipients = gpg::recipients(&opts.recipients)?;
    let mut admin = RedisAdmin::connect(&opts.redis_url).await?;
    if admin.config_get("appendonly").await? != "yes" {
        return Err(BackupError::Config(
            "AOF backups need `appendonly yes`; this Redis only writes RDB snapshots (use -m rdb)"
                .into(),
        ));
    }
    let aof_dir = PathBuf::from(admin.config_get("dir").await?)
        .join(admin.config_get("appenddirname").await?);
    if !aof_dir.is_dir() {
        return Err(BackupError::Config(format!(
            "the AOF directory {} is not reachable from here",
            aof_dir.display()
        )));
    }
    let rewrite_percentage = admin.config_get("auto-aof-rewrite-percentage").await?;
    admin.config_set("auto-aof-rewrite-percentage", "0").await?;
    let result = async {
        admin.wait_no_aof_rewrite(SAVE_TIMEOUT).await?;
        let facts = SourceFacts {
            version: admin.version().await?,
            row_counts: Default::default(),
            key_count: Some(admin.key_count().await?),
            key_count_exact: false,
            ..Default::default()
        };
        let dir = aof_dir.clone();
        let open = move || tar_directory(&dir);
        let request = PublishRequest::new(
            BackupKind::RedisAof,
            opts.compression,
            recipients,
            started_at,
        );
        publish(dest, request, facts, open, now).await
    }
    .await;
    if let Err(e) = admin
        .config_set("auto-aof-rewrite-percentage", &rewrite_percentage)
        .await
    {
        tracing::error!(error = %e, value = %rewrite_percentage,
            "could not restore auto-aof-rewrite-percentage; set it back by hand");
    }
    result
}

/// A tar of the directory's files (one level, as Redis keeps them), made
/// on a thread and read through a pipe.
fn tar_directory(dir: &Path) -> Result<Source, BackupError> {
    let (reader, writer) = std::io::pipe().map_err(|e| BackupError::io("creating a pipe", e))?;
    let dir = dir.to_path_buf();
    let builder = std::thread::spawn(move || -> Result<(), BackupError> {
        let mut tar = tar::Builder::new(writer);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| BackupError::io(format!("listing {}", dir.display()), e))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            tar.append_path_with_name(&path, &name).map_err(|e| {
                BackupError::io(format!("adding {} to the archive", path.display()), e)
            })?;
        }
        tar.finish()
            .map_err(|e| BackupError::io("finishing the archive", e))
    });
    Ok(Source {
        reader: Box::new(reader),
        finish: Box::new(move |_| {
            builder
                .join()
                .map_err(|_| BackupError::Io("the archive thread panicked".into()))?
        }),
    })
}

fn is_local(url: &str) -> bool {
    match redis::Client::open(url).map(|c| c.get_connection_info().addr.clone()) {
        Ok(redis::ConnectionAddr::Tcp(host, _)) => {
            matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]")
        }
        Ok(redis::ConnectionAddr::Unix(_)) => true,
        _ => false,
    }
}

/// Runs `redis-check-rdb` on a snapshot: an error when it is damaged, its
/// exact key count when it is sound, `None` when the tool is missing.
pub async fn check_rdb(path: &Path) -> Result<Option<u64>, BackupError> {
    let out = match tokio::process::Command::new("redis-check-rdb")
        .arg(path)
        .output()
        .await
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(BackupError::ToolMissing {
                tool: "redis-check-rdb",
                source,
            })
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let why = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("it reported an error");
        return Err(BackupError::Tool {
            tool: "redis-check-rdb",
            detail: why.trim().to_string(),
        });
    }
    Ok(text
        .lines()
        .find_map(|l| {
            l.strip_prefix("[info] ")
                .and_then(|r| r.strip_suffix(" keys read"))
        })
        .and_then(|n| n.trim().parse().ok()))
}
