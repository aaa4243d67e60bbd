//! The manifest: what a backup is, written after everything else succeeded.

use crate::error::BackupError;
use crate::kind::{BackupKind, Compression};
use crate::wal::Lsn;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version.
    pub format: u32,
    pub id: String,
    pub kind: BackupKind,
    /// The object's key, relative to the destination's prefix.
    pub object: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Bytes of the stored object.
    pub size_bytes: u64,
    /// Bytes before compression and encryption.
    pub source_bytes: u64,
    /// SHA-256 of the stored object, hex.
    pub sha256: String,
    pub compression: Compression,
    /// OpenPGP recipients (fingerprints); empty when not encrypted.
    pub encryption_recipients: Vec<String>,
    /// The version of the server that was backed up.
    pub source_version: String,
    /// PostgreSQL: rows per table at backup time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub row_counts: BTreeMap<String, u64>,
    /// PostgreSQL: an order-independent checksum of every table's rows
    /// (the sum of each row's 64-bit `hashtextextended`, as text), taken
    /// with the row counts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub table_checksums: BTreeMap<String, String>,
    /// PostgreSQL physical: the named restore point at which `row_counts`
    /// and `table_checksums` describe the cluster (logical backups: the dump
    /// itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub figures_at: Option<FiguresPoint>,
    /// PostgreSQL physical: the WAL the base backup needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal: Option<WalRange>,
    /// Redis: the number of keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_count: Option<u64>,
    /// Whether `key_count` was read from the backed-up snapshot itself
    /// (rather than from the live server while writes went on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key_count_exact: bool,
    /// mailqueue's version that wrote the backup.
    pub tool_version: String,
}

/// The WAL a base backup starts and ends at: replay from `start` to at
/// least `end` makes it consistent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalRange {
    pub start: Lsn,
    pub end: Lsn,
    pub timeline: u32,
    pub segment_size: u64,
    /// The first and last segment files the backup needs.
    pub start_segment: String,
    pub end_segment: String,
}

impl WalRange {
    pub fn start_segment_number(&self) -> u64 {
        self.start.0 / self.segment_size
    }

    pub fn end_segment_number(&self) -> u64 {
        self.end.0 / self.segment_size
    }
}

/// A restore point written right after the figures' snapshot was taken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiguresPoint {
    pub restore_point: String,
    pub lsn: Lsn,
}

#[cfg(test)]
impl Manifest {
    /// A PostgreSQL backup's manifest with only what tests vary filled in.
    pub(crate) fn sample(id: &str, finished_at: DateTime<Utc>, size_bytes: u64) -> Self {
        Self {
            format: Self::FORMAT,
            id: id.to_string(),
            kind: BackupKind::Postgres,
            object: format!("postgresql/x/{id}.dump.zst"),
            started_at: finished_at,
            finished_at,
            size_bytes,
            source_bytes: size_bytes,
            sha256: String::new(),
            compression: Compression::Zstd,
            encryption_recipients: vec![],
            source_version: String::new(),
            row_counts: Default::default(),
            table_checksums: Default::default(),
            figures_at: None,
            wal: None,
            key_count: None,
            key_count_exact: false,
            tool_version: String::new(),
        }
    }
}

impl Manifest {
    pub const FORMAT: u32 = 1;

    /// The error for a stored object that is not what this manifest says.
    pub fn corrupt(&self, detail: impl Into<String>) -> BackupError {
        BackupError::Corrupt {
            key: self.object.clone(),
            detail: detail.into(),
        }
    }

    pub fn encrypted(&self) -> bool {
        !self.encryption_recipients.is_empty()
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self)
            .unwrap_or_else(|e| unreachable!("a manifest always serializes: {e}"))
    }
}
