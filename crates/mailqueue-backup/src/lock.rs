//! One backup of a kind at a time, per machine. The lock is an OS file lock
//! (`flock`), so a killed run releases it with its process; the file keeps
//! the last holder's pid and start time, so a new run can say that it took
//! over from a run that did not finish.

use crate::error::BackupError;
use crate::kind::BackupKind;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub struct BackupLock {
    file: File,
    path: PathBuf,
}

impl BackupLock {
    /// Takes the lock of `kind` in `dir`, or says who holds it.
    pub fn acquire(dir: &Path, kind: BackupKind) -> Result<Self, BackupError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BackupError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(format!("mailqueue-backup-{kind}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| BackupError::io(format!("opening {}", path.display()), e))?;
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        if file.try_lock().is_err() {
            return Err(BackupError::Locked {
                kind: kind.to_string(),
                path: path.display().to_string(),
                holder: previous.trim().to_string(),
            });
        }
        if !previous.trim().is_empty() {
            tracing::warn!(lock = %path.display(), previous = %previous.trim(),
                "taking over the lock of a backup run that did not finish");
        }
        let me = format!(
            "pid {} since {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339()
        );
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(me.as_bytes()))
            .map_err(|e| BackupError::io(format!("writing {}", path.display()), e))?;
        Ok(Self { file, path })
    }
}

impl Drop for BackupLock {
    /// A finished run leaves an empty file: nothing to take over.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
        tracing::debug!(lock = %self.path.display(), "backup lock released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = std::env::temp_dir().join(format!("mq-lock-{}", std::process::id()));
        let first = BackupLock::acquire(&dir, BackupKind::Postgres).unwrap();
        let err = BackupLock::acquire(&dir, BackupKind::Postgres)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("another postgres backup is running"),
            "{err}"
        );
        assert!(
            BackupLock::acquire(&dir, BackupKind::RedisRdb).is_ok(),
            "kinds do not block each other"
        );
        drop(first);
        assert!(BackupLock::acquire(&dir, BackupKind::Postgres).is_ok());
    }
}
