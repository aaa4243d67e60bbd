//! What is backed up and how its bytes are compressed.
//!
//! Every kind owns its place in the object layout and its name; the code
//! that takes, verifies and restores a kind is chosen by exhaustive
//! `match`es on [`BackupKind`] (see [`crate::run`] and [`crate::verify`]), so
//! a new kind cannot silently take another kind's path.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// PostgreSQL, logical: `pg_dump -Fc` of the database.
    Postgres,
    /// PostgreSQL, physical: a base backup of the whole cluster over the
    /// replication protocol (`pg_basebackup -Ft`), for point-in-time recovery.
    PostgresPhysical,
    /// One archived WAL file (a segment, `.history`, `.backup` or `.partial`
    /// file). Not published with a manifest: see [`crate::wal`].
    WalSegment,
    /// A Redis RDB snapshot.
    RedisRdb,
    /// Redis 7's multi-part append-only files.
    RedisAof,
    /// The embedded SQLite store.
    Sqlite,
}

impl BackupKind {
    /// The kinds that are published with a manifest, in catalog order.
    pub const CATALOGUED: [BackupKind; 5] = [
        BackupKind::Postgres,
        BackupKind::PostgresPhysical,
        BackupKind::RedisRdb,
        BackupKind::RedisAof,
        BackupKind::Sqlite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Postgres => "postgres",
            BackupKind::PostgresPhysical => "postgres_physical",
            BackupKind::WalSegment => "wal",
            BackupKind::RedisRdb => "redis_rdb",
            BackupKind::RedisAof => "redis_aof",
            BackupKind::Sqlite => "sqlite",
        }
    }

    /// The top-level folder of the object layout (the guide's names where
    /// it has them: `postgresql/`, `redis/`, `wal/`).
    pub fn folder(self) -> &'static str {
        match self {
            BackupKind::Postgres => "postgresql",
            BackupKind::PostgresPhysical => "postgresql-base",
            BackupKind::WalSegment => "wal",
            BackupKind::RedisRdb | BackupKind::RedisAof => "redis",
            BackupKind::Sqlite => "sqlite",
        }
    }

    /// The file name of a backup taken at `stamp` (`20240115_030000`),
    /// before the compression and encryption extensions.
    pub fn object_base(self, stamp: &str) -> String {
        match self {
            BackupKind::Postgres => format!("mailqueue_{stamp}.dump"),
            BackupKind::PostgresPhysical => format!("mailqueue_base_{stamp}.tar"),
            BackupKind::WalSegment => format!("wal_{stamp}"),
            BackupKind::RedisRdb => format!("redis_rdb_{stamp}.rdb"),
            BackupKind::RedisAof => format!("redis_aof_{stamp}.tar"),
            BackupKind::Sqlite => format!("mailqueue_{stamp}.db"),
        }
    }

    /// The store a kind belongs to, for retention settings and reports.
    pub fn store(self) -> BackedUpStore {
        match self {
            BackupKind::Postgres | BackupKind::PostgresPhysical | BackupKind::WalSegment => {
                BackedUpStore::Postgres
            }
            BackupKind::RedisRdb | BackupKind::RedisAof => BackedUpStore::Redis,
            BackupKind::Sqlite => BackedUpStore::Sqlite,
        }
    }
}

/// The three stores mailqueue backs up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackedUpStore {
    Postgres,
    Redis,
    Sqlite,
}

impl fmt::Display for BackupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Gzip,
}

impl Compression {
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Zstd => "zst",
            Compression::Gzip => "gz",
        }
    }

    /// The compression an extension names.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "zst" => Some(Compression::Zstd),
            "gz" => Some(Compression::Gzip),
            _ => None,
        }
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zstd" | "zst" => Ok(Compression::Zstd),
            "gzip" | "gz" => Ok(Compression::Gzip),
            other => Err(format!("unknown compression `{other}`; use zstd or gzip")),
        }
    }
}
