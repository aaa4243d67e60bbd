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
    let base = kind.object_base(&stamp);
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

/// The first key for a backup at `at` that no backup of the same second
/// uses. It asks for the candidate keys one by one (a request each, almost
/// always one), never for a listing of the day's folder. Backups of the
/// same second with another compression or encryption have other keys but
/// the same id, so every variant of a candidate is asked for (four requests).
pub async fn free_object_key(
    dest: &crate::Destination,
    kind: BackupKind,
    at: DateTime<Utc>,
    compression: Compression,
    encrypted: bool,
) -> Result<String, crate::BackupError> {
    let mut sequence = 0;
    loop {
        let mut taken = false;
        for c in [Compression::Zstd, Compression::Gzip] {
            for e in [false, true] {
                let candidate = object_key(kind, at, c, e, sequence);
                if dest.exists(&candidate).await? {
                    taken = true;
                }
            }
        }
        if !taken {
            return Ok(object_key(kind, at, compression, encrypted, sequence));
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
