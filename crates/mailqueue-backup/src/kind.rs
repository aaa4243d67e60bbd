//! What is backed up and how its bytes are compressed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// `pg_dump -Fc` of the PostgreSQL database.
    Postgres,
    /// A Redis RDB snapshot.
    RedisRdb,
    /// Redis 7's multi-part append-only files.
    RedisAof,
    /// The embedded SQLite store.
    Sqlite,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Postgres => "postgres",
            BackupKind::RedisRdb => "redis_rdb",
            BackupKind::RedisAof => "redis_aof",
            BackupKind::Sqlite => "sqlite",
        }
    }

    /// The top-level folder of the object layout (the guide's names).
    pub fn folder(self) -> &'static str {
        match self {
            BackupKind::Postgres => "postgresql",
            BackupKind::RedisRdb | BackupKind::RedisAof => "redis",
            BackupKind::Sqlite => "sqlite",
        }
    }
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
