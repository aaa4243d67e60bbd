//! Backups of mailqueue's stores.
//!
//! A backup is a pipeline of stages over one stream, never a file on disk:
//! the source (`pg_dump -Fc`), compression (zstd or gzip), optional OpenPGP
//! encryption to one or more recipients, a SHA-256 and byte counter, and a
//! multipart upload to the destination (a directory, S3 or GCS). Only when
//! every stage succeeded is the manifest written, next to the object: a
//! backup without a manifest does not exist, and readers ignore it.
//!
//! Restores and verification run the same stages in reverse, decrypting
//! with stock `gpg`, so what we write is what standard tools read.

pub mod backup_physical;
pub mod backup_postgres;
pub mod backup_redis;
pub mod catalog;
pub mod cluster;
pub mod destination;
pub mod drill;
pub mod error;
pub mod gcs;
pub mod gpg;
pub mod kind;
pub mod lock;
pub mod manifest;
pub mod metrics;
pub mod naming;
pub mod notify;
pub mod postgres;
pub mod progress;
pub mod prune;
pub mod publish;
pub mod reading;
pub mod redis_server;
pub mod restore_pitr;
pub mod restore_postgres;
pub mod restore_redis;
pub mod retention;
pub mod run;
pub mod sqlite;
pub mod stages;
pub mod transfer;
pub mod verify;
pub mod wal;

pub use destination::Destination;
pub use error::BackupError;
pub use kind::{BackupKind, Compression};
pub use manifest::Manifest;
