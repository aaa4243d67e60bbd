//! `mailqueue backup postgres --physical`: a base backup of the whole
//! cluster over the replication protocol (`pg_basebackup -Ft -D - -X none`),
//! streamed through the common pipeline (compress, encrypt, upload) with
//! the manifest written last.
//!
//! The WAL the base backup needs comes from the archive (`wal-push`), so
//! archiving must be on: `pg_basebackup -X none` waits until the last
//! segment it needs is archived, and the manifest records where its WAL
//! starts and ends and on which timeline. After the upload, a restore
//! point is written right after a snapshot whose row counts and per-table
//! checksums go into the manifest, for the disaster-recovery drill.

use crate::destination::Destination;
use crate::error::BackupError;
use crate::gpg;
use crate::kind::{BackupKind, Compression};
use crate::lock::BackupLock;
use crate::manifest::{FiguresPoint, Manifest, WalRange};
use crate::postgres::{db_error, table_figures};
use crate::publish::{publish_manifest, upload, PublishRequest, Source, SourceFacts};
use crate::wal::{Lsn, Segment};
use chrono::{DateTime, Utc};
use sqlx::Connection;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct PhysicalBackupOptions {
    /// A connection URL of a role with REPLICATION (and, for the figures,
    /// the right to read every table and run `pg_create_restore_point`).
    pub database_url: String,
    pub compression: Compression,
    pub recipients: Vec<String>,
    pub lock_dir: PathBuf,
    /// `pg_basebackup --max-rate`, e.g. `50M`: limits the read rate.
    pub max_rate: Option<String>,
    /// Record row counts and checksums at a restore point after the backup.
    pub figures: bool,
}

/// What the server says about itself before the backup.
struct ServerFacts {
    version: String,
    segment_size: u64,
}

async fn server_facts(url: &str) -> Result<ServerFacts, BackupError> {
    let mut conn = crate::postgres::connect(url)
        .await
        .map_err(|e| db_error("connecting to the cluster to back up", e))?;
    let (version, segment_size, archive_mode, archive_command): (String, i64, String, String) =
        sqlx::query_as(
            "SELECT current_setting('server_version'), pg_size_bytes(current_setting('wal_segment_size')), \
                    current_setting('archive_mode'), current_setting('archive_command')",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| db_error("reading the server's settings", e))?;
    let _ = conn.close().await;
    if archive_mode == "off" || archive_command.trim().is_empty() {
        return Err(BackupError::Refused(format!(
            "WAL archiving is off (archive_mode = {archive_mode}); a base backup cannot be restored without its WAL. \
             Set archive_mode = on and archive_command = 'mailqueue wal-push %p' (see docs/backup-restore.md)"
        )));
    }
    Ok(ServerFacts {
        version: format!("PostgreSQL {version}"),
        segment_size: segment_size as u64,
    })
}

/// Watches a tar stream go by and keeps two of its files: `backup_label`
/// (where WAL replay starts, and the timeline) and `backup_manifest`
/// (its `WAL-Ranges`: where the backup's WAL ends). With `-X none`
/// pg_basebackup reports neither position itself.
pub struct TarWatch<R> {
    inner: R,
    header: Vec<u8>,
    /// Bytes of the current member's data (and padding) still to come.
    remaining: u64,
    padding: u64,
    capture: Option<(String, Vec<u8>)>,
    pub found: Found,
}

const WATCHED: [&str; 2] = ["backup_label", "backup_manifest"];

/// The watched files found so far: name and content.
pub type Found = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

impl<R: Read> TarWatch<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            header: Vec::with_capacity(512),
            remaining: 0,
            padding: 0,
            capture: None,
            found: Arc::default(),
        }
    }

    fn take(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = (self.remaining as usize).min(data.len());
                if let Some((_, buf)) = &mut self.capture {
                    buf.extend_from_slice(&data[..n]);
                }
                self.remaining -= n as u64;
                data = &data[n..];
                if self.remaining == 0 {
                    if let Some(done) = self.capture.take() {
                        if let Ok(mut found) = self.found.lock() {
                            found.push(done);
                        }
                    }
                }
            } else if self.padding > 0 {
                let n = (self.padding as usize).min(data.len());
                self.padding -= n as u64;
                data = &data[n..];
            } else {
                let n = (512 - self.header.len()).min(data.len());
                self.header.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.header.len() == 512 {
                    let header = std::mem::take(&mut self.header);
                    self.start_member(&header);
                }
            }
        }
    }

    fn start_member(&mut self, h: &[u8]) {
        let field = |r: std::ops::Range<usize>| {
            let raw = &h[r];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).trim().to_string()
        };
        let size = u64::from_str_radix(&field(124..136), 8).unwrap_or(0);
        let name = field(0..100);
        let name = name.trim_start_matches("./").to_string();
        self.remaining = size;
        self.padding = (512 - size % 512) % 512;
        if WATCHED.contains(&name.as_str()) && size < 64 * 1024 * 1024 {
            self.capture = Some((name, Vec::with_capacity(size as usize)));
        }
        if size == 0 {
            if let Some(done) = self.capture.take() {
                if let Ok(mut found) = self.found.lock() {
                    found.push(done);
                }
            }
        }
    }
}

impl<R: Read> Read for TarWatch<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.take(&out[..n]);
        Ok(n)
    }
}

/// The start (and timeline) from `backup_label`, the end from the
/// manifest's `WAL-Ranges`.
fn parse_positions(found: &[(String, Vec<u8>)]) -> Option<(Lsn, Lsn, u32)> {
    let file = |name: &str| {
        found
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| String::from_utf8_lossy(b).to_string())
    };
    let label = file("backup_label")?;
    let start: Lsn = label
        .lines()
        .find_map(|l| l.strip_prefix("START WAL LOCATION: "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let timeline: u32 = label
        .lines()
        .find_map(|l| l.strip_prefix("START TIMELINE: "))?
        .trim()
        .parse()
        .ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&file("backup_manifest")?).ok()?;
    let end: Lsn = manifest["WAL-Ranges"]
        .as_array()?
        .iter()
        .filter_map(|r| r["End-LSN"].as_str()?.parse::<Lsn>().ok())
        .max()?;
    Some((start, end, timeline))
}

pub async fn backup_postgres_physical(
    dest: &Destination,
    opts: &PhysicalBackupOptions,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Manifest, BackupError> {
    let _lock = BackupLock::acquire(&opts.lock_dir, BackupKind::PostgresPhysical)?;
    let started_at = now();
    let recipients = gpg::recipients(&opts.recipients)?;
    let server = server_facts(&opts.database_url).await?;
    let seen: Found = Arc::default();
    let (url, max_rate, seen_in_stream) = (
        opts.database_url.clone(),
        opts.max_rate.clone(),
        seen.clone(),
    );
    let open = move || {
        let mut cmd = Command::new("pg_basebackup");
        cmd.args([
            "--format=tar",
            "--pgdata=-",
            "--wal-method=none",
            "--checkpoint=fast",
            "--no-password",
        ])
        .arg(format!("--dbname={url}"))
        .arg(format!("--label=mailqueue {}", started_at.to_rfc3339()))
        .env("LC_ALL", "C")
        .env("LC_MESSAGES", "C");
        if let Some(rate) = &max_rate {
            cmd.arg(format!("--max-rate={rate}"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(BackupError::cannot_start("pg_basebackup"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BackupError::Io("pg_basebackup has no stdout".into()))?;
        // Drained on a thread: a blocked stderr would stall the backup.
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| BackupError::Io("pg_basebackup has no stderr".into()))?;
        let drain = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut watched = TarWatch::new(stdout);
        watched.found = seen_in_stream;
        Ok(Source {
            reader: Box::new(watched),
            finish: Box::new(move |failed| {
                if failed {
                    let _ = child.kill();
                }
                let status = child
                    .wait()
                    .map_err(|e| BackupError::io("waiting for pg_basebackup", e))?;
                let text = drain.join().unwrap_or_default();
                if status.success() {
                    return Ok(());
                }
                let line = text
                    .lines()
                    .rev()
                    .find(|l| l.contains("error") || l.contains("FATAL"))
                    .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
                    .map(|l| l.trim_start_matches("pg_basebackup: ").to_string())
                    .unwrap_or_else(|| format!("exited with {status}"));
                Err(BackupError::Tool {
                    tool: "pg_basebackup",
                    detail: line,
                })
            }),
        })
    };
    let request = PublishRequest::new(
        BackupKind::PostgresPhysical,
        opts.compression,
        recipients,
        started_at,
    );
    let uploaded = upload(dest, request, open).await?;
    let found = seen.lock().map(|f| f.clone()).unwrap_or_default();
    let (start, end, timeline) = parse_positions(&found).ok_or_else(|| BackupError::Tool {
        tool: "pg_basebackup",
        detail: "the base backup holds no backup_label or backup_manifest naming its WAL positions"
            .into(),
    })?;
    let wal = WalRange {
        start,
        end,
        timeline,
        segment_size: server.segment_size,
        start_segment: Segment::containing(timeline, start, server.segment_size)
            .file_name(server.segment_size),
        end_segment: Segment::containing(timeline, end, server.segment_size)
            .file_name(server.segment_size),
    };
    let mut facts = SourceFacts {
        version: server.version,
        wal: Some(wal),
        ..Default::default()
    };
    if opts.figures {
        let point = format!("mailqueue_{}", started_at.format("%Y%m%d_%H%M%S"));
        let (figures, lsn) = figures_at_restore_point(&opts.database_url, &point).await?;
        facts.row_counts = figures.counts;
        facts.table_checksums = figures.checksums;
        facts.figures_at = Some(FiguresPoint {
            restore_point: point,
            lsn,
        });
    }
    publish_manifest(dest, uploaded, facts, now).await
}

/// Takes a snapshot and writes a restore point in the same instant (the
/// first statement of a repeatable-read transaction fixes its snapshot),
/// then reads the tables' figures in that snapshot. Recovery stopped at the
/// restore point sees what the snapshot saw, but for a transaction that
/// committed within that instant.
async fn figures_at_restore_point(
    url: &str,
    point: &str,
) -> Result<(crate::postgres::TableFigures, Lsn), BackupError> {
    let mut conn = crate::postgres::connect(url)
        .await
        .map_err(|e| db_error("connecting to record the tables' figures", e))?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut conn)
        .await
        .map_err(|e| db_error("starting the figures' snapshot", e))?;
    let lsn: String = sqlx::query_scalar("SELECT pg_create_restore_point($1)::text")
        .bind(point)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| db_error("writing the restore point (pg_create_restore_point)", e))?;
    let figures = table_figures(&mut conn).await?;
    let _ = sqlx::query("COMMIT").execute(&mut conn).await;
    let _ = conn.close().await;
    Ok((figures, lsn.parse()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_label_and_the_manifest_in_a_tar_stream() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |name: &str, body: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            tar.append_data(&mut h, name, body).unwrap();
        };
        add("backup_label", b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nSTART TIMELINE: 1\n");
        add("base/1/1234", &vec![7u8; 70_000]);
        add("backup_manifest", br#"{"WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100"}]}"#);
        let bytes = tar.into_inner().unwrap();
        // Read in odd-sized pieces: headers and members straddle reads.
        let mut watch = TarWatch::new(&bytes[..]);
        let mut buf = [0u8; 333];
        while watch.read(&mut buf).unwrap() > 0 {}
        let found = watch.found.lock().unwrap().clone();
        let (start, end, tl) = parse_positions(&found).unwrap();
        assert_eq!(
            (start.to_string(), end.to_string(), tl),
            ("0/2000028".into(), "0/2000100".into(), 1)
        );
    }
}
