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
        Place::S3 => Destination::s3(config.backup_s3_url.as_deref().ok_or_else(|| {
            BackupError::Config("-u s3 needs MAILQUEUE_BACKUP_S3_URL (s3://bucket/prefix)".into())
        })?),
        Place::Gcs => Destination::gcs(config.backup_gcs_url.as_deref().ok_or_else(|| {
            BackupError::Config("-u gcs needs MAILQUEUE_BACKUP_GCS_URL (gs://bucket/prefix)".into())
        })?),
    }
}
