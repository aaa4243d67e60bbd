//! Object names, as the operations guide lays them out:
//! `postgresql/2024-01-15/mailqueue_20240115_030000.dump.zst[.gpg]` and
//! `redis/2024-01-15/redis_rdb_20240115_120000.rdb.gz`. The manifest sits
//! next to its object as `<object>.manifest.json`.

use crate::kind::{BackupKind, Compression};
use chrono::{DateTime, Utc};

pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// The object key of a backup taken at `at`. `sequence` tells apart
/// backups started within the same second (0 for the first).
pub fn object_key(
    kind: BackupKind,
    at: DateTime<Utc>,
    compression: Compression,
    encrypted: bool,
    sequence: u32,
) -> String {
    let day = at.format("%Y-%m-%d");
    let stamp = match sequence {
        0 => at.format("%Y%m%d_%H%M%S").to_string(),
        n => format!("{}_{}", at.format("%Y%m%d_%H%M%S"), n + 1),
    };
    let base = match kind {
        BackupKind::Postgres => format!("mailqueue_{stamp}.dump"),
        BackupKind::RedisRdb => format!("redis_rdb_{stamp}.rdb"),
        BackupKind::RedisAof => format!("redis_aof_{stamp}.tar"),
        BackupKind::Sqlite => format!("mailqueue_{stamp}.db"),
    };
    let gpg = if encrypted { ".gpg" } else { "" };
    format!(
        "{}/{day}/{base}.{}{gpg}",
        kind.folder(),
        compression.extension()
    )
}

pub fn manifest_key(object_key: &str) -> String {
    format!("{object_key}{MANIFEST_SUFFIX}")
}

/// The backup id: the object's file name without its extensions.
pub fn backup_id(object_key: &str) -> String {
    let name = object_key.rsplit('/').next().unwrap_or(object_key);
    name.split('.').next().unwrap_or(name).to_string()
}

/// The first key for a backup at `at` that no object of the same second uses.
pub async fn free_object_key(
    dest: &crate::Destination,
    kind: BackupKind,
    at: DateTime<Utc>,
    compression: Compression,
    encrypted: bool,
) -> Result<String, crate::BackupError> {
    let day_folder = format!("{}/{}", kind.folder(), at.format("%Y-%m-%d"));
    let taken: Vec<String> = dest
        .list(&day_folder)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let mut sequence = 0;
    loop {
        let key = object_key(kind, at, compression, encrypted, sequence);
        let id = backup_id(&key);
        if !taken.iter().any(|k| backup_id(k) == id) {
            return Ok(key);
        }
        sequence += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn follows_the_guides_layout() {
        let at = Utc.with_ymd_and_hms(2024, 1, 15, 3, 0, 0).unwrap();
        assert_eq!(
            object_key(BackupKind::Postgres, at, Compression::Gzip, false, 0),
            "postgresql/2024-01-15/mailqueue_20240115_030000.dump.gz"
        );
        assert_eq!(
            object_key(BackupKind::Postgres, at, Compression::Zstd, true, 0),
            "postgresql/2024-01-15/mailqueue_20240115_030000.dump.zst.gpg"
        );
        let noon = Utc.with_ymd_and_hms(2024, 1, 15, 12, 0, 0).unwrap();
        assert_eq!(
            object_key(BackupKind::RedisRdb, noon, Compression::Gzip, false, 0),
            "redis/2024-01-15/redis_rdb_20240115_120000.rdb.gz"
        );
        assert_eq!(
            backup_id("postgresql/2024-01-15/mailqueue_20240115_030000.dump.zst.gpg"),
            "mailqueue_20240115_030000"
        );
        let second = object_key(BackupKind::Postgres, at, Compression::Zstd, false, 1);
        assert_eq!(backup_id(&second), "mailqueue_20240115_030000_2");
        assert_eq!(manifest_key("a/b.gz"), "a/b.gz.manifest.json");
    }
}
