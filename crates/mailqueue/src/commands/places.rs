//! Which destination a backup command talks to: `-u s3|gcs` for backups,
//! `-s file|s3|gcs` for restores and reads; the local directory otherwise.

use crate::Config;
use clap::ValueEnum;
use mailqueue_backup::{BackupError, Destination};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Place {
    /// `MAILQUEUE_BACKUP_DIR`
    #[value(name = "file", alias = "local")]
    File,
    /// `MAILQUEUE_BACKUP_S3_URL`
    S3,
    /// `MAILQUEUE_BACKUP_GCS_URL`
    Gcs,
}

pub fn destination(config: &Config, place: Place) -> Result<Destination, BackupError> {
    match place {
        Place::File => Destination::local(&config.backup_dir),
        Place::S3 | Place::Gcs => remote(config, place),
    }
}

/// For reads that must not mistake a missing directory for an empty one.
pub fn existing_destination(config: &Config, place: Place) -> Result<Destination, BackupError> {
    match place {
        Place::File => Destination::local_existing(&config.backup_dir),
        Place::S3 | Place::Gcs => remote(config, place),
    }
}

/// The settings that say where the backups are, for a command that
/// PostgreSQL runs (`restore_command`) with the server's environment.
/// Credentials are not among them: they come from the server's environment.
pub fn location_env(config: &Config, place: Place) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    match place {
        Place::File => env.push(("MAILQUEUE_BACKUP_DIR", absolute(&config.backup_dir))),
        Place::S3 => {
            if let Some(url) = &config.backup_s3_url {
                env.push(("MAILQUEUE_BACKUP_S3_URL", url.clone()));
            }
            for name in ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"] {
                if let Ok(v) = std::env::var(name) {
                    env.push((name, v));
                }
            }
        }
        Place::Gcs => {
            if let Some(url) = &config.backup_gcs_url {
                env.push(("MAILQUEUE_BACKUP_GCS_URL", url.clone()));
            }
            if let Ok(v) = std::env::var("STORAGE_EMULATOR_HOST") {
                env.push(("STORAGE_EMULATOR_HOST", v));
            }
        }
    }
    env
}

fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

impl Place {
    pub fn flag(self) -> &'static str {
        match self {
            Place::File => "file",
            Place::S3 => "s3",
            Place::Gcs => "gcs",
        }
    }
}

fn remote(config: &Config, place: Place) -> Result<Destination, BackupError> {
    match place {
        Place::File => Destination::local(&config.backup_dir),
        Place::S3 => Destination::s3(config.backup_s3_url.as_deref().ok_or_else(|| {
            BackupError::Config("-u s3 needs MAILQUEUE_BACKUP_S3_URL (s3://bucket/prefix)".into())
        })?),
        Place::Gcs => Destination::gcs(config.backup_gcs_url.as_deref().ok_or_else(|| {
            BackupError::Config("-u gcs needs MAILQUEUE_BACKUP_GCS_URL (gs://bucket/prefix)".into())
        })?),
    }
}
