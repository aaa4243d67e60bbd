//! Every way a backup, restore or verification can fail, each with a
//! sentence that says what failed and where.

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Config(String),
    #[error("{tool} failed: {detail}")]
    Tool { tool: &'static str, detail: String },
    #[error("cannot start {tool}: {source}. Is it installed and on PATH?")]
    ToolMissing {
        tool: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("storage error at {location}: {detail}")]
    Storage { location: String, detail: String },
    #[error("{0}")]
    Io(String),
    #[error("encryption failed: {0}")]
    Encryption(String),
    #[error("decryption failed: {0}")]
    Decryption(String),
    #[error("the backup {key} is corrupt: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("no backup matches `{0}`")]
    NotFound(String),
    #[error("another {kind} backup is running (lock {path} is held by {holder})")]
    Locked {
        kind: String,
        path: String,
        holder: String,
    },
    #[error("{0}")]
    Refused(String),
    /// An archived WAL file exists with other content: it is never replaced.
    #[error("refusing to archive {name}: {detail}")]
    Conflict { name: String, detail: String },
}

impl BackupError {
    pub fn io(context: impl std::fmt::Display, e: std::io::Error) -> Self {
        BackupError::Io(format!("{context}: {e}"))
    }

    /// For `map_err` on starting a program: it could not be run.
    pub fn cannot_start(tool: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |source| BackupError::ToolMissing { tool, source }
    }

    pub fn storage(location: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        BackupError::Storage {
            location: location.to_string(),
            detail: e.to_string(),
        }
    }
}
