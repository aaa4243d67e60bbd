//! Reading a stored backup back: download, check the SHA-256 and size
//! against the manifest, decrypt with gpg, decompress. Shared by restore
//! and verify.

use crate::destination::Destination;
use crate::error::BackupError;
use crate::gpg::Decryption;
use crate::manifest::Manifest;
use crate::progress::Progress;
use crate::stages::{decompressing, HashingReader};
use crate::transfer::DownloadReader;
use std::io::{Read, Write};

/// Streams the plaintext of `manifest`'s object into `out` (on a blocking
/// thread). Fails with `Corrupt` when the stored bytes are not the ones the
/// manifest describes, and with gpg's reason when decryption fails.
pub fn read_plaintext(
    dest: &Destination,
    manifest: &Manifest,
    handle: tokio::runtime::Handle,
    out: &mut dyn Write,
) -> Result<u64, BackupError> {
    let location = dest.location(&manifest.object);
    let download =
        DownloadReader::open(handle, dest.store(), dest.path(&manifest.object), location)?;
    let hashed = HashingReader::new(Progress::new(download, format!("reading {}", manifest.id)));
    let corrupt = |detail: String| BackupError::Corrupt {
        key: manifest.object.clone(),
        detail,
    };
    let (hashed, copied) = if manifest.encrypted() {
        let (decryption, plaintext) = Decryption::start(hashed)?;
        let copied = copy_decompressed(manifest, plaintext, out);
        let hashed = decryption.finish();
        match (hashed, copied) {
            // A damaged object usually makes gpg fail first: say it is the object.
            (Err(e), _) => return Err(checked_failure(manifest, e)),
            (Ok(h), c) => (h, c),
        }
    } else {
        let mut hashed = hashed;
        let copied = copy_decompressed(manifest, &mut hashed, out);
        if copied.is_err() {
            // Read the rest so the checksum, not the decoder, names the damage.
            let _ = std::io::copy(&mut hashed, &mut std::io::sink());
        }
        (hashed, copied)
    };
    let (size, sha) = hashed.finish();
    if size != manifest.size_bytes {
        return Err(corrupt(format!(
            "it has {size} bytes; the manifest says {}",
            manifest.size_bytes
        )));
    }
    if sha != manifest.sha256 {
        return Err(corrupt(format!(
            "its SHA-256 is {sha}; the manifest says {}",
            manifest.sha256
        )));
    }
    copied.map_err(|e| corrupt(format!("it does not decompress: {e}")))
}

fn copy_decompressed<R: Read + Send>(
    manifest: &Manifest,
    source: R,
    out: &mut dyn Write,
) -> Result<u64, BackupError> {
    let mut plain = decompressing(manifest.compression, source)?;
    std::io::copy(&mut plain, out).map_err(|e| BackupError::Io(e.to_string()))
}

/// gpg's complaint about a truncated or altered file is still "corrupt".
fn checked_failure(manifest: &Manifest, e: BackupError) -> BackupError {
    match e {
        BackupError::Decryption(why) if !why.starts_with("no secret key") => BackupError::Corrupt {
            key: manifest.object.clone(),
            detail: format!("decryption failed ({why})"),
        },
        other => other,
    }
}
