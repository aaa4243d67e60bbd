//! WAL retention: the archive keeps every file needed to recover to any
//! moment of the last `days` days (7 by default), and the files each kept
//! base backup needs to become consistent. Concretely, with W = now − days:
//!
//! - the anchor is the newest base backup that finished by W (recovery to
//!   W starts from it), or the oldest base backup when none is that old;
//! - every segment from the anchor's start on is kept;
//! - older segments are kept when a kept base backup needs them (its start
//!   to its end);
//! - timeline history files are always kept (they are tiny, and recovery
//!   needs them to follow timelines).
//!
//! Without any base backup nothing is deleted: WAL alone restores nothing,
//! but deleting it would make a base backup taken later no better.

use super::listing::list_archive;
use super::name::{WalFileName, DEFAULT_SEGMENT_SIZE};
use crate::destination::Destination;
use crate::error::BackupError;
use crate::manifest::{Manifest, WalRange};
use chrono::{DateTime, Duration, Utc};

/// What WAL retention decided.
#[derive(Clone, Debug, Default)]
pub struct WalPrune {
    /// The base backup whose start bounds the kept stream.
    pub anchor: Option<String>,
    /// The first segment kept whole.
    pub kept_from: Option<String>,
    pub kept: usize,
    pub deleted: Vec<String>,
}

/// Whether a file with segment number `n` may go.
fn removable(n: u64, anchor: &WalRange, bases: &[&WalRange]) -> bool {
    n < anchor.start_segment_number()
        && !bases
            .iter()
            .any(|b| b.start_segment_number() <= n && n <= b.end_segment_number())
}

/// Applies retention to the archive; `bases` are the kept base backups.
pub async fn prune_wal(
    dest: &Destination,
    bases: &[Manifest],
    days: u32,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<WalPrune, BackupError> {
    let mut ranges: Vec<(&Manifest, &WalRange)> = bases
        .iter()
        .filter_map(|m| m.wal.as_ref().map(|w| (m, w)))
        .collect();
    ranges.sort_by_key(|(m, _)| m.finished_at);
    let window_start = now - Duration::days(i64::from(days));
    let Some((anchor_manifest, anchor)) = ranges
        .iter()
        .rev()
        .find(|(m, _)| m.finished_at <= window_start)
        .or_else(|| ranges.first())
        .copied()
    else {
        return Ok(WalPrune::default());
    };
    let segment_size = if anchor.segment_size > 0 {
        anchor.segment_size
    } else {
        DEFAULT_SEGMENT_SIZE
    };
    let walranges: Vec<&WalRange> = ranges.iter().map(|(_, w)| *w).collect();
    let listing = list_archive(dest, 0, segment_size).await?;
    let mut report = WalPrune {
        anchor: Some(anchor_manifest.id.clone()),
        kept_from: Some(anchor.start_segment.clone()),
        ..Default::default()
    };
    for file in listing.files() {
        let number = match &file.name {
            WalFileName::History(_) => None,
            WalFileName::Segment(s)
            | WalFileName::Partial(s)
            | WalFileName::BackupHistory { segment: s, .. } => WalFileName::Segment(s.clone())
                .segment(segment_size)
                .map(|s| s.number),
        };
        match number {
            Some(n) if removable(n, anchor, &walranges) => {
                if !dry_run {
                    dest.delete(&file.copy.key).await?;
                }
                report.deleted.push(file.name.file_name());
            }
            _ => report.kept += 1,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::Lsn;

    fn range(start: u64, end: u64) -> WalRange {
        WalRange {
            start: Lsn(start * DEFAULT_SEGMENT_SIZE + 40),
            end: Lsn(end * DEFAULT_SEGMENT_SIZE + 200),
            timeline: 1,
            segment_size: DEFAULT_SEGMENT_SIZE,
            start_segment: String::new(),
            end_segment: String::new(),
        }
    }

    #[test]
    fn keeps_the_stream_from_the_anchor_and_each_base_backups_own_segments() {
        let old = range(10, 12);
        let anchor = range(50, 51);
        let bases = [&old, &anchor];
        assert!(removable(9, &anchor, &bases));
        assert!(
            !removable(10, &anchor, &bases),
            "an older kept base needs it"
        );
        assert!(!removable(12, &anchor, &bases));
        assert!(removable(13, &anchor, &bases));
        assert!(removable(49, &anchor, &bases));
        assert!(!removable(50, &anchor, &bases));
        assert!(!removable(900, &anchor, &bases));
    }
}
