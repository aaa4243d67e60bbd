//! The common path of every backup kind: a source stream goes through
//! compression, optional encryption and hashing into a multipart upload;
//! the manifest is written only when the source reports success and the
//! upload completed. On failure the upload is aborted and nothing appears.

use crate::destination::Destination;
use crate::error::BackupError;
use crate::gpg::{self, Recipient};
use crate::kind::{BackupKind, Compression};
use crate::manifest::Manifest;
use crate::naming;
use crate::progress::Progress;
use crate::stages::{compressing, CountingReader, HashingWriter};
use crate::transfer::UploadWriter;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::atomic::Ordering;

/// A stream to back up, and how to learn whether it ended well: `finish`
/// is called with `true` when the pipeline failed (stop the producer) and
/// returns the producer's own verdict.
pub struct Source {
    pub reader: Box<dyn Read + Send>,
    pub finish: Box<dyn FnOnce(bool) -> Result<(), BackupError> + Send>,
}

impl Source {
    /// A stream that has nothing to report when it ends.
    pub fn plain(reader: impl Read + Send + 'static) -> Self {
        Self {
            reader: Box::new(reader),
            finish: Box::new(|_| Ok(())),
        }
    }

    /// A file's contents.
    pub fn file(path: &std::path::Path) -> Result<Self, BackupError> {
        let file = std::fs::File::open(path)
            .map_err(|e| BackupError::io(format!("reading {}", path.display()), e))?;
        Ok(Self::plain(file))
    }
}

/// What the manifest says about the source.
#[derive(Clone, Debug, Default)]
pub struct SourceFacts {
    pub version: String,
    pub row_counts: BTreeMap<String, u64>,
    pub table_checksums: BTreeMap<String, String>,
    pub figures_at: Option<crate::manifest::FiguresPoint>,
    pub wal: Option<crate::manifest::WalRange>,
    pub key_count: Option<u64>,
    pub key_count_exact: bool,
}

pub struct PublishRequest {
    pub kind: BackupKind,
    pub compression: Compression,
    pub recipients: Vec<Recipient>,
    pub started_at: DateTime<Utc>,
    /// Filled from `recipients` when the upload starts.
    fingerprints: Vec<String>,
}

impl PublishRequest {
    pub fn new(
        kind: BackupKind,
        compression: Compression,
        recipients: Vec<Recipient>,
        started_at: DateTime<Utc>,
    ) -> Self {
        let fingerprints = recipients.iter().map(|r| r.fingerprint.clone()).collect();
        Self {
            kind,
            compression,
            recipients,
            started_at,
            fingerprints,
        }
    }
}

pub async fn publish(
    dest: &Destination,
    request: PublishRequest,
    facts: SourceFacts,
    open: impl FnOnce() -> Result<Source, BackupError> + Send + 'static,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Manifest, BackupError> {
    let uploaded = upload(dest, request, open).await?;
    publish_manifest(dest, uploaded, facts, now).await
}

/// A stored object that has no manifest yet: it does not exist for
/// readers until [`publish_manifest`] writes one.
pub struct Uploaded {
    key: String,
    request: PublishRequest,
    streamed: Streamed,
}

/// Streams the source through the stages into a new object; nothing is
/// visible on failure, and nothing is published on success either.
pub async fn upload(
    dest: &Destination,
    mut request: PublishRequest,
    open: impl FnOnce() -> Result<Source, BackupError> + Send + 'static,
) -> Result<Uploaded, BackupError> {
    let encrypted = !request.recipients.is_empty();
    let key = naming::free_object_key(
        dest,
        request.kind,
        request.started_at,
        request.compression,
        encrypted,
    )
    .await?;
    let location = dest.location(&key);
    let upload = dest
        .store()
        .put_multipart(&dest.path(&key))
        .await
        .map_err(|e| BackupError::storage(&location, e))?;
    let writer = UploadWriter::new(tokio::runtime::Handle::current(), upload, location);
    let compression = request.compression;
    let recipients = std::mem::take(&mut request.recipients);
    let streamed = tokio::task::spawn_blocking(move || match open() {
        Ok(source) => stream(source, compression, &recipients, writer),
        Err(e) => {
            writer.abort();
            Err(e)
        }
    })
    .await
    .map_err(|e| BackupError::Io(format!("the backup stage stopped: {e}")))??;
    Ok(Uploaded {
        key,
        request,
        streamed,
    })
}

/// Writes the manifest of an uploaded object: from now on the backup exists.
pub async fn publish_manifest(
    dest: &Destination,
    uploaded: Uploaded,
    facts: SourceFacts,
    now: impl Fn() -> DateTime<Utc>,
) -> Result<Manifest, BackupError> {
    let Uploaded {
        key,
        request,
        streamed,
    } = uploaded;
    let manifest = Manifest {
        format: Manifest::FORMAT,
        id: naming::backup_id(&key),
        kind: request.kind,
        object: key.clone(),
        started_at: request.started_at,
        finished_at: now(),
        size_bytes: streamed.size,
        source_bytes: streamed.source_bytes,
        sha256: streamed.sha256,
        compression: request.compression,
        encryption_recipients: request.fingerprints,
        source_version: facts.version,
        row_counts: facts.row_counts,
        table_checksums: facts.table_checksums,
        figures_at: facts.figures_at,
        wal: facts.wal,
        key_count: facts.key_count,
        key_count_exact: facts.key_count_exact,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    dest.restrict_local(&key)?;
    dest.put(&naming::manifest_key(&key), manifest.to_json())
        .await?;
    Ok(manifest)
}

struct Streamed {
    size: u64,
    sha256: String,
    source_bytes: u64,
}

fn stream(
    source: Source,
    compression: Compression,
    recipients: &[Recipient],
    writer: UploadWriter,
) -> Result<Streamed, BackupError> {
    let (counted, source_bytes) = CountingReader::new(Progress::new(source.reader, "backing up"));
    let mut sink = HashingWriter::new(writer);
    let piped = compressing(compression, counted)
        .and_then(|mut compressed| {
            if recipients.is_empty() {
                std::io::copy(&mut compressed, &mut sink)
                    .map(|_| ())
                    .map_err(|e| BackupError::io("streaming the backup", e))
            } else {
                gpg::encrypt(compressed, recipients, &mut sink)
            }
        })
        .and_then(|_| {
            sink.flush()
                .map_err(|e| BackupError::io("streaming the backup", e))
        });
    let produced = (source.finish)(piped.is_err());
    let (writer, size, sha256) = sink.finish();
    // Our own failure first: when we stop the producer, its error is only the echo.
    match piped.and(produced) {
        Ok(()) => {
            writer.finish()?;
            Ok(Streamed {
                size,
                sha256,
                source_bytes: source_bytes.load(Ordering::Relaxed),
            })
        }
        Err(e) => {
            writer.abort();
            Err(e)
        }
    }
}
