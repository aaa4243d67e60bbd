//! OpenPGP: we encrypt in process (rpgp) to recipients' public keys, which
//! `gpg --export` takes from the operator's keyring; we decrypt with stock
//! `gpg --decrypt`, which holds the private keys. What we write is thus
//! checked by the tool operators use.

use crate::error::BackupError;
use pgp::composed::{Deserializable, MessageBuilder, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::types::KeyDetails;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// A recipient's key, ready to encrypt to.
pub struct Recipient {
    pub fingerprint: String,
    key: SignedPublicKey,
}

/// Looks up every recipient in gpg's keyring.
pub fn recipients(names: &[String]) -> Result<Vec<Recipient>, BackupError> {
    names.iter().map(|name| recipient(name)).collect()
}

fn recipient(name: &str) -> Result<Recipient, BackupError> {
    let out = Command::new("gpg")
        .args(["--batch", "--export", "--", name])
        .stderr(Stdio::piped())
        .output()
        .map_err(BackupError::cannot_start("gpg"))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(BackupError::Encryption(format!(
            "gpg has no public key for GPG_RECIPIENT `{name}`; import it with `gpg --import`"
        )));
    }
    let mut keys = SignedPublicKey::from_bytes_many(&out.stdout[..]).map_err(|e| {
        BackupError::Encryption(format!("the public key of `{name}` cannot be read: {e}"))
    })?;
    let key = match keys.next() {
        Some(Ok(key)) => key,
        Some(Err(e)) => {
            return Err(BackupError::Encryption(format!(
                "the public key of `{name}` cannot be read: {e}"
            )))
        }
        None => {
            return Err(BackupError::Encryption(format!(
                "gpg exported no key for `{name}`"
            )))
        }
    };
    if keys.next().is_some() {
        return Err(BackupError::Encryption(format!(
            "GPG_RECIPIENT `{name}` matches several keys; use a fingerprint"
        )));
    }
    if encryption_subkey(&key).is_none() && !key.primary_key.algorithm().can_encrypt() {
        return Err(BackupError::Encryption(format!(
            "the key of `{name}` has no encryption key"
        )));
    }
    Ok(Recipient {
        fingerprint: hex::encode_upper(key.primary_key.fingerprint().as_bytes()),
        key,
    })
}

/// The first subkey bound for encryption.
fn encryption_subkey(key: &SignedPublicKey) -> Option<&SignedPublicSubKey> {
    key.public_subkeys.iter().find(|sub| {
        sub.key.algorithm().can_encrypt()
            && sub
                .signatures
                .iter()
                .any(|sig| sig.key_flags().encrypt_storage() || sig.key_flags().encrypt_comms())
    })
}

/// Encrypts everything `source` yields into `out` as one OpenPGP message.
pub fn encrypt<R: Read, W: Write>(
    source: R,
    recipients: &[Recipient],
    out: W,
) -> Result<(), BackupError> {
    let mut rng = rand::thread_rng();
    let mut builder =
        MessageBuilder::from_reader("", source).seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    for r in recipients {
        match encryption_subkey(&r.key) {
            Some(sub) => builder.encrypt_to_key(&mut rng, &sub.key),
            None => builder.encrypt_to_key(&mut rng, &r.key.primary_key),
        }
        .map_err(|e| BackupError::Encryption(format!("to {}: {e}", r.fingerprint)))?;
    }
    builder
        .to_writer(&mut rng, out)
        .map_err(|e| BackupError::Encryption(e.to_string()))
}

/// `gpg --decrypt` as a stage: feeds `source` to gpg from a thread and
/// returns gpg's output. [`Decryption::finish`] reports gpg's verdict.
pub struct Decryption<R> {
    child: std::process::Child,
    feeder: Option<std::thread::JoinHandle<(R, std::io::Result<u64>)>>,
}

impl<R: Read + Send + 'static> Decryption<R> {
    pub fn start(mut source: R) -> Result<(Self, std::process::ChildStdout), BackupError> {
        let mut child = Command::new("gpg")
            .args(["--batch", "--quiet", "--yes", "--decrypt"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(BackupError::cannot_start("gpg"))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| BackupError::Decryption("gpg has no stdin".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BackupError::Decryption("gpg has no stdout".into()))?;
        let feeder = std::thread::spawn(move || {
            let copied = std::io::copy(&mut source, &mut stdin);
            drop(stdin);
            (source, copied)
        });
        Ok((
            Self {
                child,
                feeder: Some(feeder),
            },
            stdout,
        ))
    }

    /// Waits for gpg and hands the source back; an error carries gpg's
    /// own explanation.
    pub fn finish(mut self) -> Result<R, BackupError> {
        let fed = self
            .feeder
            .take()
            .map(|f| f.join())
            .ok_or_else(|| BackupError::Decryption("gpg was not fed".into()))?
            .map_err(|_| BackupError::Decryption("the thread feeding gpg panicked".into()))?;
        let output = self
            .child
            .wait_with_output()
            .map_err(|e| BackupError::io("waiting for gpg", e))?;
        if !output.status.success() {
            return Err(BackupError::Decryption(explain_gpg_failure(
                &String::from_utf8_lossy(&output.stderr),
            )));
        }
        match fed {
            (_, Err(e)) => Err(BackupError::io("reading the backup for gpg", e)),
            (source, Ok(_)) => Ok(source),
        }
    }
}

/// The line of gpg's complaint that matters, phrased for an operator.
fn explain_gpg_failure(stderr: &str) -> String {
    if stderr.contains("No secret key") {
        return "no secret key for this backup in gpg's keyring (check GNUPGHOME, or import the private key of a recipient listed in the manifest)".into();
    }
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.trim_start_matches("gpg: ").trim())
        .filter(|l| {
            !l.is_empty() && !l.starts_with("keyblock resource") && !l.starts_with("encrypted with")
        })
        .collect();
    match lines.last() {
        Some(line) => format!("gpg: {line}"),
        None => "gpg exited with an error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::explain_gpg_failure;

    #[test]
    fn a_missing_secret_key_is_named_as_such() {
        let stderr = "gpg: keyblock resource '/x/pubring.kbx': No such file or directory\n\
                      gpg: encrypted with cv25519 key, ID 0x1\ngpg: decryption failed: No secret key\n";
        assert!(explain_gpg_failure(stderr).starts_with("no secret key"));
        assert_eq!(
            explain_gpg_failure("gpg: problem reading source (5 bytes remaining)\n"),
            "gpg: problem reading source (5 bytes remaining)"
        );
    }
}
