//! `wal-push` and `wal-fetch`: PostgreSQL's `archive_command` and
//! `restore_command`.
//!
//! Every WAL file is stored once, at a name derived from its own name and
//! the SHA-256 of its content: `wal/<timeline+log>/<file>/<sha256>.zst[.gpg]`.
//! So a push asks one question (the listing of that file's own folder,
//! which holds one object or none) and makes one write; it never lists the
//! archive or reads a manifest.
//!
//! - Pushing the same content again succeeds without writing: PostgreSQL
//!   re-runs `archive_command` for a file it archived just before a crash.
//! - Pushing other content under a name already archived is refused, and
//!   counted: an archived file is never replaced. The same holds for
//!   `.history`, `.backup` and `.partial` files.
//! - A push succeeds only once the write is durable at the destination.
//! - A fetch tells apart "not in the archive" from every other failure,
//!   because PostgreSQL reads the first as the end of WAL.

use super::name::WalFileName;
use crate::destination::Destination;
use crate::error::BackupError;
use crate::gpg::{self, Decryption, Recipient};
use crate::kind::Compression;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// How pushed files are stored.
pub struct PushOptions {
    pub compression: Compression,
    /// Encrypt to these recipients; none means no encryption.
    pub recipients: Vec<Recipient>,
}

/// What a push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// The file was written (`stored_bytes` after compression and encryption).
    Stored { key: String, stored_bytes: u64 },
    /// The same content was archived before; nothing was written.
    AlreadyArchived { key: String },
}

/// What a fetch found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    Restored {
        key: String,
        bytes: u64,
    },
    /// The archive does not hold the file (PostgreSQL's end of WAL).
    Missing,
}

/// One stored copy of a WAL file, as its object name describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredWal {
    pub key: String,
    /// SHA-256 of the file's content, hex.
    pub sha256: String,
    pub compression: Compression,
    pub encrypted: bool,
}

impl StoredWal {
    /// Reads `<folder>/<file>/<sha256>.<ext>[.gpg]`.
    pub fn parse(key: &str) -> Option<Self> {
        let leaf = key.rsplit('/').next()?;
        let (rest, encrypted) = match leaf.strip_suffix(".gpg") {
            Some(r) => (r, true),
            None => (leaf, false),
        };
        let (sha, ext) = rest.split_once('.')?;
        let compression = Compression::from_extension(ext)?;
        (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self {
            key: key.to_string(),
            sha256: sha.to_ascii_lowercase(),
            compression,
            encrypted,
        })
    }
}

/// The folder holding the copies of `name`.
pub fn file_folder(name: &WalFileName) -> String {
    format!("{}/{}", name.folder(), name.file_name())
}

fn object_key(
    name: &WalFileName,
    sha256: &str,
    compression: Compression,
    encrypted: bool,
) -> String {
    format!(
        "{}/{sha256}.{}{}",
        file_folder(name),
        compression.extension(),
        if encrypted { ".gpg" } else { "" }
    )
}

/// The stored copies of `name` (one request).
pub async fn stored_copies(
    dest: &Destination,
    name: &WalFileName,
) -> Result<Vec<StoredWal>, BackupError> {
    Ok(dest
        .list(&file_folder(name))
        .await?
        .into_iter()
        .filter_map(|o| StoredWal::parse(&o.key))
        .collect())
}

/// Archives the file at `path` (PostgreSQL's `%p`).
pub async fn push(
    dest: &Destination,
    path: &Path,
    opts: &PushOptions,
) -> Result<PushOutcome, BackupError> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| BackupError::Config(format!("{} names no file", path.display())))?;
    let name = WalFileName::parse(file_name)?;
    let content = tokio::fs::read(path)
        .await
        .map_err(|e| BackupError::io(format!("reading {}", path.display()), e))?;
    let sha256 = hex::encode(Sha256::digest(&content));
    let existing = stored_copies(dest, &name).await?;
    if let Some(same) = existing.iter().find(|c| c.sha256 == sha256) {
        return Ok(PushOutcome::AlreadyArchived {
            key: same.key.clone(),
        });
    }
    if let Some(other) = existing.first() {
        return Err(BackupError::Conflict {
            name: name.file_name(),
            detail: format!(
                "{} already holds different content (SHA-256 {}, this file's is {sha256}); an archived WAL file is never replaced. \
                 Two clusters may be archiving to the same place",
                dest.location(&other.key),
                other.sha256
            ),
        });
    }
    let encrypted = !opts.recipients.is_empty();
    let key = object_key(&name, &sha256, opts.compression, encrypted);
    let stored = encode(content, opts)?;
    let stored_bytes = stored.len() as u64;
    dest.put_durable(&key, Bytes::from(stored)).await?;
    Ok(PushOutcome::Stored { key, stored_bytes })
}

/// Compresses, and encrypts when asked. zstd at level 1: a segment must
/// be archived faster than PostgreSQL writes the next one.
fn encode(content: Vec<u8>, opts: &PushOptions) -> Result<Vec<u8>, BackupError> {
    let compressed = match opts.compression {
        Compression::Zstd => zstd::bulk::compress(&content, 1)
            .map_err(|e| BackupError::io("compressing the WAL file", e))?,
        Compression::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzEncoder::new(&content[..], flate2::Compression::fast())
                .read_to_end(&mut out)
                .map_err(|e| BackupError::io("compressing the WAL file", e))?;
            out
        }
    };
    if opts.recipients.is_empty() {
        return Ok(compressed);
    }
    let mut out = Vec::with_capacity(compressed.len() + 1024);
    gpg::encrypt(&compressed[..], &opts.recipients, &mut out)?;
    Ok(out)
}

/// Restores `name` (PostgreSQL's `%f`) to `target` (`%p`), checking its
/// SHA-256 on the way.
pub async fn fetch(
    dest: &Destination,
    name: &str,
    target: &Path,
) -> Result<FetchOutcome, BackupError> {
    let Ok(name) = WalFileName::parse(name) else {
        // Nothing but WAL file names is ever archived.
        return Ok(FetchOutcome::Missing);
    };
    let copies = stored_copies(dest, &name).await?;
    let copy = match copies.as_slice() {
        [] => return Ok(FetchOutcome::Missing),
        [one] => one.clone(),
        many => {
            return Err(BackupError::Conflict {
                name: name.file_name(),
                detail: format!(
                    "the archive holds {} different copies ({}); recovery will not guess which is right",
                    many.len(),
                    many.iter().map(|c| c.key.as_str()).collect::<Vec<_>>().join(", ")
                ),
            })
        }
    };
    let Some(stored) = dest.get_optional(&copy.key).await? else {
        return Err(BackupError::storage(
            dest.location(&copy.key),
            "listed but gone when read (a prune running at the same time?)",
        ));
    };
    let (target, location) = (target.to_path_buf(), dest.location(&copy.key));
    let restored = copy.clone();
    let bytes = tokio::task::spawn_blocking(move || -> Result<u64, BackupError> {
        let plain = decode(&restored, stored, &location)?;
        let sha = hex::encode(Sha256::digest(&plain));
        if sha != restored.sha256 {
            return Err(BackupError::Corrupt {
                key: location,
                detail: format!(
                    "its content's SHA-256 is {sha}; its name says {}",
                    restored.sha256
                ),
            });
        }
        write_atomically(&target, &plain)?;
        Ok(plain.len() as u64)
    })
    .await
    .map_err(|e| BackupError::Io(format!("the fetch stopped: {e}")))??;
    Ok(FetchOutcome::Restored {
        key: copy.key,
        bytes,
    })
}

fn decode(copy: &StoredWal, stored: Bytes, location: &str) -> Result<Vec<u8>, BackupError> {
    let corrupt = |detail: String| BackupError::Corrupt {
        key: location.to_string(),
        detail,
    };
    let compressed = if copy.encrypted {
        let (decryption, mut plaintext) = Decryption::start(std::io::Cursor::new(stored))?;
        let mut out = Vec::new();
        let read = plaintext.read_to_end(&mut out);
        decryption.finish()?;
        read.map_err(|e| BackupError::io("reading gpg's output", e))?;
        out
    } else {
        stored.to_vec()
    };
    let mut plain = Vec::new();
    crate::stages::decompressing(copy.compression, &compressed[..])?
        .read_to_end(&mut plain)
        .map_err(|e| corrupt(format!("it does not decompress: {e}")))?;
    Ok(plain)
}

/// Writes next to `target` and renames, so PostgreSQL never sees half a file.
fn write_atomically(target: &Path, content: &[u8]) -> Result<(), BackupError> {
    let tmp = target.with_file_name(format!(
        ".{}.mailqueue-{}",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("wal"),
        std::process::id()
    ));
    std::fs::write(&tmp, content)
        .map_err(|e| BackupError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, target).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        BackupError::io(format!("renaming to {}", target.display()), e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_carry_the_checksum_and_the_stages() {
        let name = WalFileName::parse("000000010000000A000000FF").unwrap();
        let sha = "ab".repeat(32);
        let key = object_key(&name, &sha, Compression::Zstd, true);
        assert_eq!(
            key,
            format!("wal/000000010000000A/000000010000000A000000FF/{sha}.zst.gpg")
        );
        let parsed = StoredWal::parse(&key).unwrap();
        assert_eq!(parsed.sha256, sha);
        assert!(parsed.encrypted && parsed.compression == Compression::Zstd);
        assert!(StoredWal::parse("wal/x/y/notahash.zst").is_none());
    }
}
