//! What the WAL archive holds, for the checks, retention and restores
//! that need the whole picture (never for a push or a fetch). It lists the
//! archive's folders, one per timeline and 4 GB of WAL, and only those
//! from a given position on.

use super::archive::StoredWal;
use super::name::{Segment, WalFileName};
use crate::destination::Destination;
use crate::error::BackupError;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// One archived WAL file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedFile {
    pub name: WalFileName,
    pub copy: StoredWal,
    pub size: u64,
    pub archived_at: DateTime<Utc>,
}

/// The archived segments from `from` on (every timeline), by segment
/// number, plus every other archived file (history, backup, partial).
#[derive(Clone, Debug, Default)]
pub struct ArchiveListing {
    pub segments: BTreeMap<u64, Vec<(Segment, ArchivedFile)>>,
    pub others: Vec<ArchivedFile>,
}

impl ArchiveListing {
    /// Segment numbers missing between `from` and the newest archived
    /// segment (on any timeline).
    pub fn gaps(&self, from: u64) -> Vec<u64> {
        let Some(&last) = self.segments.keys().next_back() else {
            return Vec::new();
        };
        (from..=last)
            .filter(|n| !self.segments.contains_key(n))
            .collect()
    }

    /// The newest archived segment and when it was archived.
    pub fn newest(&self) -> Option<&(Segment, ArchivedFile)> {
        self.segments
            .values()
            .next_back()
            .and_then(|files| files.iter().max_by_key(|(s, _)| s.timeline))
    }

    /// Every archived file, segments first.
    pub fn files(&self) -> impl Iterator<Item = &ArchivedFile> {
        self.segments
            .values()
            .flatten()
            .map(|(_, f)| f)
            .chain(self.others.iter())
    }
}

/// Lists the archive from segment number `from` on (`0`: all of it).
pub async fn list_archive(
    dest: &Destination,
    from: u64,
    segment_size: u64,
) -> Result<ArchiveListing, BackupError> {
    let per_log = 0x1_0000_0000 / segment_size;
    let mut listing = ArchiveListing::default();
    for folder in dest.list_folders("wal").await? {
        let log = if folder == "history" {
            None
        } else if folder.len() == 16 {
            u64::from_str_radix(&folder[8..16], 16).ok()
        } else {
            continue;
        };
        if log.is_some_and(|log| (log + 1) * per_log <= from) {
            continue;
        }
        for object in dest.list(&format!("wal/{folder}")).await? {
            let mut parts = object.key.rsplit('/');
            let (Some(_leaf), Some(file)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (Ok(name), Some(copy)) = (WalFileName::parse(file), StoredWal::parse(&object.key))
            else {
                continue;
            };
            let archived = ArchivedFile {
                name: name.clone(),
                copy,
                size: object.size,
                archived_at: object.last_modified,
            };
            match name.segment(segment_size) {
                Some(segment) if segment.number >= from => listing
                    .segments
                    .entry(segment.number)
                    .or_default()
                    .push((segment, archived)),
                Some(_) => {}
                None => listing.others.push(archived),
            }
        }
    }
    Ok(listing)
}
