//! The archive's health, as `scripts/backup/sync-wal.sh` reports it:
//! PostgreSQL's own view of archiving (`pg_stat_archiver`: failures, and
//! the exposure: WAL written after the last archived segment, which a
//! restore to the latest point would lose), the archive's contents since
//! the newest base backup (every segment from its start on must be there:
//! a gap stops any recovery that needs to pass it) and up to what
//! PostgreSQL says it archived (a missing tail is lost as surely), and
//! `archive_timeout`, which bounds the exposure of a quiet server.

use super::listing::list_archive;
use super::name::{Lsn, WalFileName, DEFAULT_SEGMENT_SIZE};
use crate::catalog;
use crate::destination::Destination;
use crate::error::BackupError;
use crate::kind::BackupKind;
use crate::postgres::db_error;
use chrono::{DateTime, Utc};
use sqlx::Connection;

/// `pg_stat_archiver` and the server's current WAL position.
#[derive(Clone, Debug)]
pub struct ArchiverStatus {
    pub archived_count: i64,
    pub last_archived_wal: Option<String>,
    pub last_archived_time: Option<DateTime<Utc>>,
    pub failed_count: i64,
    pub last_failed_wal: Option<String>,
    pub last_failed_time: Option<DateTime<Utc>>,
    pub current_lsn: Lsn,
    pub segment_size: u64,
    pub archive_mode: String,
    /// `archive_timeout` in seconds; 0 when off.
    pub archive_timeout_seconds: f64,
}

type ArchiverRow = (
    i64,
    Option<String>,
    Option<DateTime<Utc>>,
    i64,
    Option<String>,
    Option<DateTime<Utc>>,
    String,
    i64,
    String,
    f64,
);

pub async fn archiver_status(url: &str) -> Result<ArchiverStatus, BackupError> {
    let mut conn = crate::postgres::connect(url)
        .await
        .map_err(|e| db_error("connecting to read pg_stat_archiver", e))?;
    let row: ArchiverRow = sqlx::query_as(
        "SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, last_failed_time, \
                pg_current_wal_lsn()::text, pg_size_bytes(current_setting('wal_segment_size')), current_setting('archive_mode'), \
                (SELECT setting::float8 FROM pg_settings WHERE name = 'archive_timeout') \
         FROM pg_stat_archiver",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(|e| db_error("reading pg_stat_archiver", e))?;
    let _ = conn.close().await;
    Ok(ArchiverStatus {
        archived_count: row.0,
        last_archived_wal: row.1,
        last_archived_time: row.2,
        failed_count: row.3,
        last_failed_wal: row.4,
        last_failed_time: row.5,
        current_lsn: row.6.parse()?,
        segment_size: row.7 as u64,
        archive_mode: row.8,
        archive_timeout_seconds: row.9,
    })
}

impl ArchiverStatus {
    /// Whether PostgreSQL's last attempt to archive failed.
    pub fn failing(&self) -> bool {
        match (self.last_failed_time, self.last_archived_time) {
            (Some(failed), Some(archived)) => failed > archived,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// The segment number of the last archived segment (a `.backup` or
    /// `.partial` file counts for its segment).
    fn last_archived_segment(&self) -> Option<u64> {
        let name = WalFileName::parse(self.last_archived_wal.as_deref()?).ok()?;
        let segment = match &name {
            WalFileName::Segment(s)
            | WalFileName::Partial(s)
            | WalFileName::BackupHistory { segment: s, .. } => s.clone(),
            WalFileName::History(_) => return None,
        };
        WalFileName::Segment(segment)
            .segment(self.segment_size)
            .map(|s| s.number)
    }

    /// The exposure: seconds and bytes of WAL written after the end of the
    /// last archived segment, the segment being written included. Commits
    /// there are only on the server's disk; a restore to the latest point
    /// would lose them. The seconds count from when that segment was
    /// archived (the unarchived WAL began at its end, no later); both are
    /// zero while nothing was written after it.
    pub fn lag(&self, now: DateTime<Utc>) -> (f64, u64) {
        let archived_end = self
            .last_archived_segment()
            .map_or(0, |n| (n + 1) * self.segment_size);
        let bytes = self.current_lsn.0.saturating_sub(archived_end);
        if bytes == 0 {
            return (0.0, 0);
        }
        let seconds = self
            .last_archived_time
            .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        (seconds, bytes)
    }
}

/// What the check found.
#[derive(Clone, Debug, Default)]
pub struct WalCheck {
    pub archiver: Option<ArchiverStatus>,
    pub lag_seconds: f64,
    pub lag_bytes: u64,
    /// The newest base backup and the first segment it needs.
    pub base_backup: Option<(String, String)>,
    pub archived_since_base: usize,
    /// Missing segment files since the newest base backup.
    pub missing: Vec<String>,
    pub newest_archived: Option<(String, DateTime<Utc>)>,
    /// One line per problem; none means healthy.
    pub problems: Vec<String>,
    /// One line per weakness that is not yet a loss (exit 3).
    pub warnings: Vec<String>,
}

/// Checks archiving (when `database_url` is given) and the archive.
pub async fn check_wal(
    dest: &Destination,
    database_url: Option<&str>,
    max_lag_seconds: f64,
    now: DateTime<Utc>,
) -> Result<WalCheck, BackupError> {
    let mut report = WalCheck::default();
    if let Some(url) = database_url {
        let status = archiver_status(url).await?;
        if status.archive_mode == "off" {
            report
                .problems
                .push("archive_mode is off: no WAL is archived".into());
        }
        if status.failing() {
            report.problems.push(format!(
                "archiving is failing: PostgreSQL could not archive {} ({} failures since the statistics were reset, the last at {})",
                status.last_failed_wal.as_deref().unwrap_or("?"),
                status.failed_count,
                status
                    .last_failed_time
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            ));
        }
        let (seconds, bytes) = status.lag(now);
        (report.lag_seconds, report.lag_bytes) = (seconds, bytes);
        if seconds > max_lag_seconds {
            report.problems.push(format!(
                "{bytes} bytes of WAL written over the last {seconds:.0} s are not archived \
                 (the limit is {max_lag_seconds:.0} s): a restore now would lose what they hold; \
                 the last archived file is {}",
                status.last_archived_wal.as_deref().unwrap_or("none")
            ));
        }
        let timeout = status.archive_timeout_seconds;
        if timeout <= 0.0 {
            report.warnings.push(format!(
                "archive_timeout is 0: on a quiet server a segment can stay unarchived for ever, \
                 so the RPO is unbounded; set it to at most {max_lag_seconds:.0} s"
            ));
        } else if timeout > max_lag_seconds {
            report.warnings.push(format!(
                "archive_timeout is {timeout:.0} s, longer than the {max_lag_seconds:.0} s allowed: \
                 a quiet server can go that long without archiving"
            ));
        }
        report.archiver = Some(status);
    }
    let bases = catalog::list(dest, Some(BackupKind::PostgresPhysical)).await?;
    let Some(base) = bases
        .iter()
        .rev()
        .find_map(|m| m.wal.as_ref().map(|w| (m, w)))
    else {
        report
            .problems
            .push("there is no base backup: WAL alone cannot be restored (mailqueue backup postgres --physical)".into());
        return Ok(report);
    };
    let (manifest, wal) = base;
    let segment_size = wal.segment_size.max(1);
    let from = wal.start_segment_number();
    report.base_backup = Some((manifest.id.clone(), wal.start_segment.clone()));
    let listing = list_archive(dest, from, segment_size).await?;
    report.archived_since_base = listing.segments.values().map(Vec::len).sum();
    report.newest_archived = listing
        .newest()
        .map(|(s, f)| (s.file_name(segment_size), f.archived_at));
    report.missing = listing
        .gaps(from)
        .into_iter()
        .map(|n| {
            super::name::Segment {
                timeline: wal.timeline,
                number: n,
            }
            .file_name(segment_size)
        })
        .collect();
    if !report.missing.is_empty() {
        report.problems.push(format!(
            "{} segment(s) missing from the archive since base backup {}: {}; recovery cannot pass the first",
            report.missing.len(),
            manifest.id,
            abbreviate(&report.missing)
        ));
    }
    let newest = listing.segments.keys().next_back().copied();
    if let Some(archived) = report
        .archiver
        .as_ref()
        .and_then(ArchiverStatus::last_archived_segment)
    {
        if newest.is_none_or(|n| n < archived) {
            let name = |n: u64| {
                super::name::Segment {
                    timeline: wal.timeline,
                    number: n,
                }
                .file_name(segment_size)
            };
            let first = newest.map_or(from, |n| n + 1);
            report.problems.push(format!(
                "the archive ends at {} but PostgreSQL archived up to {}: {} segment(s) from {} on \
                 were deleted or never stored, and a restore would lose them",
                newest.map(name).unwrap_or_else(|| "nothing".into()),
                name(archived),
                archived + 1 - first,
                name(first),
            ));
        }
    }
    if newest.is_none_or(|n| n < wal.end_segment_number()) {
        report.problems.push(format!(
            "the archive does not reach the end of base backup {} ({}): it cannot be made consistent",
            manifest.id, wal.end_segment
        ));
    }
    Ok(report)
}

fn abbreviate(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [first, .., last] if names.len() > 5 => format!("{first} … {last}"),
        many => many.join(", "),
    }
}

impl Default for ArchiverStatus {
    fn default() -> Self {
        Self {
            archived_count: 0,
            last_archived_wal: None,
            last_archived_time: None,
            failed_count: 0,
            last_failed_wal: None,
            last_failed_time: None,
            current_lsn: Lsn(0),
            segment_size: DEFAULT_SEGMENT_SIZE,
            archive_mode: "on".into(),
            archive_timeout_seconds: 60.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_exposure_counts_the_segment_being_written() {
        let now = Utc.with_ymd_and_hms(2024, 1, 15, 12, 0, 0).unwrap();
        let status = ArchiverStatus {
            last_archived_wal: Some("000000010000000000000004".into()),
            last_archived_time: Some(now - chrono::Duration::minutes(30)),
            current_lsn: "0/5000000".parse().unwrap(),
            ..Default::default()
        };
        assert_eq!(status.lag(now), (0.0, 0), "nothing written since");
        // Commits in the segment being written are exposed too.
        let writing = ArchiverStatus {
            current_lsn: "0/5000100".parse().unwrap(),
            ..status.clone()
        };
        assert_eq!(writing.lag(now), (1800.0, 0x100));
        let behind = ArchiverStatus {
            current_lsn: "0/7000100".parse().unwrap(),
            ..status
        };
        assert_eq!(behind.lag(now), (1800.0, 2 * DEFAULT_SEGMENT_SIZE + 0x100));
        assert!(!behind.failing());
        let failing = ArchiverStatus {
            last_failed_time: Some(now),
            ..behind
        };
        assert!(failing.failing());
    }
}
