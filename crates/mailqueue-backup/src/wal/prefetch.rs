//! Read-ahead for `wal-fetch`. Recovery asks for one segment at a time and
//! waits for each; most of that wait is the fetch itself. So after serving
//! segment N, `wal-fetch` starts a detached process that fetches the next
//! segments into a spool directory beside `pg_wal/` (`pg_wal/.mailqueue-prefetch`),
//! each checked against its checksum and renamed into place only when
//! whole; the next request is then a rename. pgBackRest's asynchronous
//! `archive-get` and WAL-G's prefetch work the same way.
//!
//! The spool only ever holds copies of archived files, whose content under
//! a name never changes, so a stale entry is still right. A spool file is
//! used once (renamed away); files for segments before the one asked for
//! are deleted. A failure of the read-ahead costs nothing but its time:
//! the foreground fetch then reads the archive itself.

use super::archive::{fetch, FetchOutcome};
use super::name::{Segment, WalFileName};
use crate::destination::Destination;
use crate::error::BackupError;
use std::path::{Path, PathBuf};

/// The spool for a `%p` in `pg_wal/`.
pub fn spool_dir(target: &Path) -> PathBuf {
    target
        .parent()
        .unwrap_or(Path::new("."))
        .join(".mailqueue-prefetch")
}

/// Serves `name` from the spool when it is there: renamed to `target`.
/// Deletes spooled segments older than `name` on the way.
pub fn take_from_spool(name: &str, target: &Path) -> bool {
    let spool = spool_dir(target);
    let Ok(WalFileName::Segment(wanted)) = WalFileName::parse(name) else {
        return false;
    };
    if let Ok(entries) = std::fs::read_dir(&spool) {
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().to_string();
            if matches!(WalFileName::parse(&file), Ok(WalFileName::Segment(s)) if s < wanted) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    std::fs::rename(spool.join(&wanted), target).is_ok()
}

/// The `count` segments after `name` on its timeline, for segments of
/// `segment_size` bytes.
pub fn following(name: &str, segment_size: u64, count: u32) -> Vec<String> {
    let Some(segment) = WalFileName::parse(name)
        .ok()
        .and_then(|n| n.segment(segment_size))
    else {
        return Vec::new();
    };
    (1..=u64::from(count))
        .map(|i| {
            Segment {
                timeline: segment.timeline,
                number: segment.number + i,
            }
            .file_name(segment_size)
        })
        .collect()
}

/// Fetches `names` into the spool, in order, stopping at the first that
/// is missing or fails. Only one read-ahead runs per spool (a file lock).
pub async fn prefetch_into(
    dest: &Destination,
    spool: &Path,
    names: &[String],
) -> Result<usize, BackupError> {
    std::fs::create_dir_all(spool)
        .map_err(|e| BackupError::io(format!("creating {}", spool.display()), e))?;
    let lock_path = spool.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| BackupError::io(format!("opening {}", lock_path.display()), e))?;
    if lock.try_lock().is_err() {
        return Ok(0);
    }
    let mut fetched = 0;
    for name in names {
        let path = spool.join(name);
        if path.exists() {
            continue;
        }
        match fetch(dest, name, &path).await? {
            FetchOutcome::Restored { .. } => fetched += 1,
            FetchOutcome::Missing => break,
        }
    }
    Ok(fetched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::DEFAULT_SEGMENT_SIZE;

    #[test]
    fn the_following_segments_cross_into_the_next_log() {
        assert_eq!(
            following("0000000200000003000000FE", DEFAULT_SEGMENT_SIZE, 3),
            vec![
                "0000000200000003000000FF",
                "000000020000000400000000",
                "000000020000000400000001"
            ]
        );
        assert!(following("00000002.history", DEFAULT_SEGMENT_SIZE, 3).is_empty());
    }

    #[test]
    fn a_spooled_segment_is_served_once_and_older_ones_go() {
        let dir = std::env::temp_dir().join(format!("mq-spool-{}", std::process::id()));
        let spool = spool_dir(&dir.join("RECOVERYXLOG"));
        std::fs::create_dir_all(&spool).unwrap();
        for n in [
            "000000010000000000000003",
            "000000010000000000000004",
            "000000010000000000000005",
        ] {
            std::fs::write(spool.join(n), n).unwrap();
        }
        let target = dir.join("RECOVERYXLOG");
        assert!(take_from_spool("000000010000000000000004", &target));
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "000000010000000000000004"
        );
        assert!(
            !spool.join("000000010000000000000003").exists(),
            "older ones are deleted"
        );
        assert!(spool.join("000000010000000000000005").exists());
        assert!(
            !take_from_spool("000000010000000000000004", &target),
            "served once"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
