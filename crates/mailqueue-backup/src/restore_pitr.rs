//! `mailqueue restore postgres --pitr`: point-in-time recovery from a base
//! backup and the WAL archive.
//!
//! 1. The newest base backup that ended before the target is chosen (for a
//!    time, the one that finished before it; for a position, the one whose
//!    WAL ends before it; for `latest`, the newest).
//! 2. The archive is checked from that backup's start: the backup's own
//!    segments must all be there, and a gap on the way is named before any
//!    work is done (for `latest`, a gap is refused: recovery would stop at
//!    it and silently lose what follows).
//! 3. The backup is unpacked into the empty data directory (checksummed and
//!    decrypted on the way) and handed to the directory's owner.
//! 4. `restore_command`, the recovery target and `recovery.signal` are
//!    written; with `start`, PostgreSQL is started and watched until it
//!    promotes, or until it stops, in which case its reason is the error.

use crate::catalog;
use crate::cluster::{Cluster, Owner};
use crate::destination::Destination;
use crate::error::BackupError;
use crate::kind::BackupKind;
use crate::manifest::{Manifest, WalRange};
use crate::reading::read_plaintext;
use crate::wal::listing::list_archive;
use crate::wal::{Lsn, Segment};
use chrono::{DateTime, FixedOffset, Utc};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where recovery stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// Every transaction committed up to this instant (inclusive).
    Time(DateTime<FixedOffset>),
    /// Up to this WAL position.
    Lsn(Lsn),
    /// A restore point written with `pg_create_restore_point`.
    Name(String),
    /// The end of the archived WAL.
    Latest,
    /// As soon as the base backup is consistent (the backup alone).
    Immediate,
}

impl RecoveryTarget {
    /// A time with an explicit zone, as PostgreSQL writes them
    /// (`2024-01-15 12:30:00+00`) or RFC 3339. A time without a zone is
    /// refused: PostgreSQL would read it in the server's time zone.
    pub fn parse_time(text: &str) -> Result<Self, BackupError> {
        let t = text.trim();
        let parsed = DateTime::parse_from_rfc3339(t)
            .or_else(|_| DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%#z"))
            .or_else(|_| DateTime::parse_from_str(&format!("{t}00"), "%Y-%m-%d %H:%M:%S%.f%z"))
            .map_err(|_| {
                BackupError::Config(format!(
                    "`{text}` is not a time with a zone; write it like \"2024-01-15 12:30:00+00\""
                ))
            })?;
        Ok(RecoveryTarget::Time(parsed))
    }

    /// Whether recovery from `base` can reach this target.
    fn reachable_from(&self, base: &Manifest, wal: &WalRange) -> bool {
        match self {
            RecoveryTarget::Time(t) => base.finished_at <= t.with_timezone(&Utc),
            RecoveryTarget::Lsn(lsn) => wal.end <= *lsn,
            RecoveryTarget::Name(_) | RecoveryTarget::Latest | RecoveryTarget::Immediate => true,
        }
    }

    /// The `recovery_target*` lines.
    fn settings(&self) -> Vec<String> {
        match self {
            RecoveryTarget::Time(t) => vec![format!(
                "recovery_target_time = '{}'",
                t.with_timezone(&Utc).format("%Y-%m-%d %H:%M:%S%.6f+00")
            )],
            RecoveryTarget::Lsn(lsn) => vec![format!("recovery_target_lsn = '{lsn}'")],
            RecoveryTarget::Name(name) => {
                vec![format!(
                    "recovery_target_name = '{}'",
                    name.replace('\'', "''")
                )]
            }
            RecoveryTarget::Latest => Vec::new(),
            RecoveryTarget::Immediate => vec!["recovery_target = 'immediate'".to_string()],
        }
    }
}

impl fmt::Display for RecoveryTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecoveryTarget::Time(t) => write!(
                f,
                "{}",
                t.with_timezone(&Utc).format("%Y-%m-%d %H:%M:%S%.f+00")
            ),
            RecoveryTarget::Lsn(lsn) => write!(f, "WAL position {lsn}"),
            RecoveryTarget::Name(name) => write!(f, "restore point {name}"),
            RecoveryTarget::Latest => f.write_str("the end of the archived WAL"),
            RecoveryTarget::Immediate => f.write_str("the end of the base backup"),
        }
    }
}

/// What PostgreSQL does on reaching the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetAction {
    /// End recovery and accept writes (a new timeline).
    Promote,
    /// Stay in recovery, read-only, so the result can be inspected.
    Pause,
}

/// Replaced in `restore_command` by the base backup's WAL segment size.
pub const SEGMENT_SIZE_TOKEN: &str = "{segment_size}";

pub struct PitrOptions {
    pub target: RecoveryTarget,
    pub data_dir: PathBuf,
    /// The `restore_command` to write, with `%f` and `%p` (and
    /// [`SEGMENT_SIZE_TOKEN`] where the segment size goes).
    pub restore_command: String,
    pub action: TargetAction,
    /// Extra settings for the restored server (`port = 5433`, `archive_mode = off` …).
    pub settings: Vec<String>,
    /// Start the server and wait until recovery ends.
    pub start: bool,
    pub start_timeout: Duration,
    /// Who owns the restored files (default: the owner of the data directory).
    pub owner: Option<Owner>,
    /// Replaces `pg_hba.conf` (the drill's scratch cluster trusts its own
    /// private socket only).
    pub hba: Option<String>,
}

/// What the restore did.
#[derive(Debug)]
pub struct PitrRestored {
    pub base: Manifest,
    /// Archived segments from the base backup's start on.
    pub archived_segments: usize,
    /// The command that starts the server (printed when not started).
    pub start_command: String,
    pub started: bool,
}

/// The newest base backup from which `target` can be reached.
pub fn choose_base<'a>(
    bases: &'a [Manifest],
    target: &RecoveryTarget,
) -> Result<(&'a Manifest, &'a WalRange), BackupError> {
    let usable: Vec<(&Manifest, &WalRange)> = bases
        .iter()
        .filter_map(|m| m.wal.as_ref().map(|w| (m, w)))
        .collect();
    let Some(oldest) = usable.iter().min_by_key(|(m, _)| m.finished_at) else {
        return Err(BackupError::NotFound(
            "postgres_physical: there is no base backup (take one with `mailqueue backup postgres --physical`)".into(),
        ));
    };
    usable
        .iter()
        .filter(|(m, w)| target.reachable_from(m, w))
        .max_by_key(|(m, _)| m.finished_at)
        .copied()
        .ok_or_else(|| {
            BackupError::Refused(format!(
                "the target {target} is older than every base backup: the oldest, {}, finished at {} (its WAL ends at {})",
                oldest.0.id,
                oldest.0.finished_at.format("%Y-%m-%d %H:%M:%S+00"),
                oldest.1.end
            ))
        })
}

fn is_empty_dir(path: &Path) -> Result<bool, BackupError> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(BackupError::io(format!("reading {}", path.display()), e)),
    }
}

pub async fn restore_pitr(
    dest: &Destination,
    opts: &PitrOptions,
) -> Result<PitrRestored, BackupError> {
    if !is_empty_dir(&opts.data_dir)? {
        return Err(BackupError::Refused(format!(
            "the data directory {} is not empty; point-in-time recovery needs an empty one",
            opts.data_dir.display()
        )));
    }
    let bases = catalog::list(dest, Some(BackupKind::PostgresPhysical)).await?;
    let (base, wal) = choose_base(&bases, &opts.target)?;
    let archived_segments = check_archive(dest, base, wal, &opts.target).await?;
    std::fs::create_dir_all(&opts.data_dir)
        .map_err(|e| BackupError::io(format!("creating {}", opts.data_dir.display()), e))?;
    let owner = match opts.owner {
        Some(o) => o,
        None => Owner::of(&opts.data_dir)?,
    };
    unpack(dest, base, &opts.data_dir).await?;
    configure(opts, wal.segment_size)?;
    if let Some(hba) = &opts.hba {
        std::fs::write(opts.data_dir.join("pg_hba.conf"), hba)
            .map_err(|e| BackupError::io("writing pg_hba.conf", e))?;
    }
    owner.take(&opts.data_dir)?;
    let cluster = Cluster::new(&opts.data_dir, owner);
    let start_command = cluster.start_command();
    if opts.start {
        cluster.start()?;
        if let Err(e) = cluster
            .wait_promoted_or_paused(opts.action, opts.start_timeout)
            .await
        {
            let _ = cluster.stop();
            return Err(explain_stop(e, &opts.target));
        }
    }
    Ok(PitrRestored {
        base: base.clone(),
        archived_segments,
        start_command,
        started: opts.start,
    })
}

/// Turns PostgreSQL's "recovery ended before the target" into what to do.
fn explain_stop(e: BackupError, target: &RecoveryTarget) -> BackupError {
    let text = e.to_string();
    if text.contains("recovery ended before configured recovery target was reached") {
        return BackupError::Refused(format!(
            "recovery stopped before reaching {target}: the archive holds no further WAL (a segment is missing, or the target is in the future). PostgreSQL said: {text}"
        ));
    }
    e
}

/// Checks the archive from the base backup's start; returns how many
/// segments it holds from there.
async fn check_archive(
    dest: &Destination,
    base: &Manifest,
    wal: &WalRange,
    target: &RecoveryTarget,
) -> Result<usize, BackupError> {
    let from = wal.start_segment_number();
    let listing = list_archive(dest, from, wal.segment_size).await?;
    let name = |n: u64| {
        Segment {
            timeline: wal.timeline,
            number: n,
        }
        .file_name(wal.segment_size)
    };
    if let Some(missing) =
        (from..=wal.end_segment_number()).find(|n| !listing.segments.contains_key(n))
    {
        return Err(BackupError::Refused(format!(
            "base backup {} needs WAL segment {}, which is not in the archive: it cannot be made consistent",
            base.id,
            name(missing)
        )));
    }
    if let RecoveryTarget::Time(t) = target {
        let t = t.with_timezone(&Utc);
        let newest = listing.newest().map(|(_, f)| f.archived_at);
        if t > Utc::now() {
            return Err(BackupError::Refused(format!(
                "the target {t} is in the future: recovery can only reach what is archived"
            )));
        }
        // Object stores give times to the second (S3's Last-Modified): a
        // target within that second is left to PostgreSQL to judge.
        if let Some(newest) = newest.filter(|n| t > *n + chrono::Duration::seconds(1)) {
            return Err(BackupError::Refused(format!(
                "the newest WAL in the archive was archived at {newest}; the target {t} is later, \
                 and recovery cannot reach it until more WAL is archived (pg_switch_wal() on the \
                 source archives what it has)"
            )));
        }
    }
    let gaps = listing.gaps(from);
    if let Some(&first) = gaps.first() {
        let stops_at = Lsn(first * wal.segment_size);
        match target {
            RecoveryTarget::Latest => {
                return Err(BackupError::Refused(format!(
                    "WAL segment {} is missing from the archive: recovery to the latest WAL would stop at {stops_at} and lose everything after it. \
                     Restore to --target-lsn {stops_at} (or an earlier time) if that is acceptable",
                    name(first)
                )))
            }
            RecoveryTarget::Lsn(lsn) if *lsn > stops_at => {
                return Err(BackupError::Refused(format!(
                    "WAL segment {} is missing from the archive: recovery cannot pass {stops_at}, before the target {lsn}",
                    name(first)
                )))
            }
            _ => tracing::warn!(
                segment = %name(first),
                "a WAL segment is missing from the archive; recovery cannot pass {stops_at}"
            ),
        }
    }
    Ok(listing.segments.values().map(Vec::len).sum())
}

/// Streams the backup (checked and decrypted) into a tar extractor.
async fn unpack(dest: &Destination, base: &Manifest, data_dir: &Path) -> Result<(), BackupError> {
    let (reader, mut writer) =
        std::io::pipe().map_err(|e| BackupError::io("creating a pipe", e))?;
    let dir = data_dir.to_path_buf();
    let extractor = std::thread::spawn(move || -> Result<(), BackupError> {
        let mut archive = tar::Archive::new(reader);
        archive.set_preserve_permissions(true);
        archive
            .unpack(&dir)
            .map_err(|e| BackupError::io(format!("unpacking into {}", dir.display()), e))
    });
    let (dest, base) = (dest.clone(), base.clone());
    let handle = tokio::runtime::Handle::current();
    let read = tokio::task::spawn_blocking(move || {
        let read = read_plaintext(&dest, &base, handle, &mut writer);
        drop(writer);
        read
    })
    .await
    .map_err(|e| BackupError::Io(format!("the restore stage stopped: {e}")))?;
    let unpacked = extractor
        .join()
        .map_err(|_| BackupError::Io("the unpacking thread panicked".into()))?;
    read?;
    unpacked?;
    for dir in ["pg_wal", "pg_wal/archive_status"] {
        std::fs::create_dir_all(data_dir.join(dir))
            .map_err(|e| BackupError::io(format!("creating {dir}"), e))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| BackupError::io(format!("restricting {}", data_dir.display()), e))?;
    }
    Ok(())
}

/// Appends the recovery settings to `postgresql.auto.conf` (read last, so
/// they win) and creates `recovery.signal`.
fn configure(opts: &PitrOptions, segment_size: u64) -> Result<(), BackupError> {
    let restore_command = opts
        .restore_command
        .replace(SEGMENT_SIZE_TOKEN, &segment_size.to_string());
    let mut lines = vec![
        String::new(),
        "# Point-in-time recovery, written by mailqueue restore postgres --pitr".to_string(),
        format!(
            "restore_command = '{}'",
            restore_command.replace('\'', "''")
        ),
        "recovery_target_timeline = 'latest'".to_string(),
    ];
    lines.extend(opts.target.settings());
    if opts.target != RecoveryTarget::Latest {
        lines.push(format!(
            "recovery_target_action = '{}'",
            match opts.action {
                TargetAction::Promote => "promote",
                TargetAction::Pause => "pause",
            }
        ));
    }
    lines.extend(opts.settings.iter().cloned());
    let path = opts.data_dir.join("postgresql.auto.conf");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| BackupError::io(format!("opening {}", path.display()), e))?;
    writeln!(file, "{}", lines.join("\n"))
        .map_err(|e| BackupError::io(format!("writing {}", path.display()), e))?;
    std::fs::write(opts.data_dir.join("recovery.signal"), b"")
        .map_err(|e| BackupError::io("writing recovery.signal", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn base(id: &str, finished: DateTime<Utc>, end: u64) -> Manifest {
        let mut m = Manifest::sample(id, finished, 1);
        m.kind = BackupKind::PostgresPhysical;
        m.wal = Some(WalRange {
            start: Lsn(end - 100),
            end: Lsn(end),
            timeline: 1,
            segment_size: crate::wal::DEFAULT_SEGMENT_SIZE,
            start_segment: String::new(),
            end_segment: String::new(),
        });
        m
    }

    #[test]
    fn the_newest_base_backup_before_the_target_is_chosen() {
        let day = |d| Utc.with_ymd_and_hms(2024, 1, d, 3, 0, 0).unwrap();
        let bases = vec![
            base("a", day(10), 1000),
            base("b", day(12), 5000),
            base("c", day(14), 9000),
        ];
        let at = |text: &str| RecoveryTarget::parse_time(text).unwrap();
        assert_eq!(
            choose_base(&bases, &at("2024-01-13 12:30:00+00"))
                .unwrap()
                .0
                .id,
            "b"
        );
        assert_eq!(
            choose_base(&bases, &at("2024-01-12 03:00:00+00"))
                .unwrap()
                .0
                .id,
            "b"
        );
        assert_eq!(
            choose_base(&bases, &RecoveryTarget::Latest).unwrap().0.id,
            "c"
        );
        assert_eq!(
            choose_base(&bases, &RecoveryTarget::Lsn(Lsn(6000)))
                .unwrap()
                .0
                .id,
            "b"
        );
        let e = choose_base(&bases, &at("2024-01-09 00:00:00+00")).unwrap_err();
        assert!(
            e.to_string().contains("older than every base backup"),
            "{e}"
        );
        assert!(RecoveryTarget::parse_time("2024-01-15 12:30:00").is_err());
        assert_eq!(
            at("2024-01-15T13:30:00+01:00").settings(),
            vec!["recovery_target_time = '2024-01-15 12:30:00.000000+00'"]
        );
    }
}
