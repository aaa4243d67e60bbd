//! Reading a stored backup back: download, check the SHA-256 and size
//! against the manifest, decrypt with gpg, decompress. Shared by restore
//! and verify, with the scratch files they write the plaintext to.

use crate::destination::Destination;
use crate::error::BackupError;
use crate::gpg::Decryption;
use crate::manifest::Manifest;
use crate::progress::Progress;
use crate::stages::{decompressing, HashingReader};
use crate::transfer::DownloadReader;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A scratch file or directory of this process, removed when dropped,
/// whether the work on it succeeded or not.
pub struct Scratch(PathBuf);

impl Scratch {
    /// `<dir>/.mailqueue-<what>-<pid>`, cleared of any leftover.
    pub fn new(dir: &Path, what: &str) -> Self {
        let scratch = Self(dir.join(format!(".mailqueue-{what}-{}", std::process::id())));
        scratch.remove();
        scratch
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    fn remove(&self) {
        let _ = if self.0.is_dir() {
            std::fs::remove_dir_all(&self.0)
        } else {
            std::fs::remove_file(&self.0)
        };
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Downloads, checks and decrypts the backup into a new file at `path`
/// (mode 0600); `durable` syncs it to disk (for files that stay, not
/// scratch copies).
pub async fn write_plaintext(
    dest: &Destination,
    manifest: &Manifest,
    path: &Path,
    durable: bool,
) -> Result<(), BackupError> {
    let (dest, manifest, path) = (dest.clone(), manifest.clone(), path.to_path_buf());
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || -> Result<(), BackupError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .map_err(|e| BackupError::io(format!("creating {}", path.display()), e))?;
        read_plaintext(&dest, &manifest, handle, &mut file)?;
        if durable {
            file.sync_all()
                .map_err(|e| BackupError::io(format!("writing {}", path.display()), e))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| BackupError::Io(format!("the restore stage stopped: {e}")))?
}

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
        return Err(manifest.corrupt(format!(
            "it has {size} bytes; the manifest says {}",
            manifest.size_bytes
        )));
    }
    if sha != manifest.sha256 {
        return Err(manifest.corrupt(format!(
            "its SHA-256 is {sha}; the manifest says {}",
            manifest.sha256
        )));
    }
    copied.map_err(|e| manifest.corrupt(format!("it does not decompress: {e}")))
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
        BackupError::Decryption(why) if !why.starts_with("no secret key") => {
            manifest.corrupt(format!("decryption failed ({why})"))
        }
        other => other,
    }
}
