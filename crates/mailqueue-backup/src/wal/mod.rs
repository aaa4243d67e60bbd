//! WAL archiving for point-in-time recovery, in PostgreSQL's contract:
//! `archive_command = 'mailqueue wal-push %p'` and
//! `restore_command = 'mailqueue wal-fetch %f %p'`.
//!
//! - `name`: WAL file names and positions.
//! - `archive`: push and fetch, one file at a time, in a bounded number of
//!   requests each.
//! - `listing`: the archive as a whole, for checks, retention and restores.
//! - `check`: archiving health (`pg_stat_archiver`) and gaps since the
//!   newest base backup, behind `scripts/backup/sync-wal.sh`.
//! - `retention`: which archived files may go.
//! - `prefetch`: read-ahead for `wal-fetch` during recovery.
//! - `metrics`: what pushes and checks report to Prometheus.

pub mod archive;
pub mod check;
pub mod listing;
pub mod metrics;
pub mod name;
pub mod prefetch;
pub mod retention;

pub use archive::{fetch, push, FetchOutcome, PushOptions, PushOutcome};
pub use name::{Lsn, Segment, WalFileName, DEFAULT_SEGMENT_SIZE};
