//! Private keys at rest: sealed with AES-256-GCM under a key derived
//! (HKDF-SHA256) from the server's secret (`MAILQUEUE_SECRET_KEY`).
//!
//! A sealed key reads `aes256gcm:<base64 of nonce, ciphertext and tag>`.
//! Without a secret (allowed only on the embedded SQLite store) a key is
//! kept as `plain:<base64>`, and the server says so at start.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

const SEALED: &str = "aes256gcm:";
const PLAIN: &str = "plain:";
/// Binds a sealed key to its use: a blob sealed for something else does
/// not open as a DKIM key.
const AAD: &[u8] = b"mailqueue dkim private key v1";

/// The server's secret, from which the sealing key is derived. `Debug`
/// does not print it.
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// At least 32 characters: a passphrase shorter than that is guessable.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.len() < 32 {
            return Err(format!(
                "MAILQUEUE_SECRET_KEY has {} characters; it needs at least 32 (for example `openssl rand -hex 32`)",
                raw.len()
            ));
        }
        Ok(Self(raw.as_bytes().to_vec()))
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// Seals and opens private keys.
pub struct KeySealer {
    key: Option<LessSafeKey>,
    random: SystemRandom,
}

struct AeadKeyLen;

impl aws_lc_rs::hkdf::KeyType for AeadKeyLen {
    fn len(&self) -> usize {
        AES_256_GCM.key_len()
    }
}

impl KeySealer {
    /// `None`: keys are kept unsealed (the embedded store only).
    pub fn new(secret: Option<&SecretKey>) -> Self {
        let key = secret.map(|secret| {
            let salt = aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, b"mailqueue");
            let mut bytes = [0u8; 32];
            salt.extract(&secret.0)
                .expand(&[b"dkim private keys"], AeadKeyLen)
                .and_then(|okm| okm.fill(&mut bytes))
                .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
            let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
                .unwrap_or_else(|_| unreachable!("32 bytes is an AES-256 key"));
            LessSafeKey::new(unbound)
        });
        Self {
            key,
            random: SystemRandom::new(),
        }
    }

    pub fn seal(&self, private_key: &[u8]) -> Result<String, String> {
        let Some(key) = &self.key else {
            return Ok(format!("{PLAIN}{}", B64.encode(private_key)));
        };
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| "the system's random source failed".to_string())?;
        let mut sealed = private_key.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(AAD),
            &mut sealed,
        )
        .map_err(|_| "sealing the key failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED}{}", B64.encode(out)))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, String> {
        if let Some(plain) = sealed.strip_prefix(PLAIN) {
            return B64
                .decode(plain)
                .map_err(|e| format!("the stored key is not base64: {e}"));
        }
        let Some(blob) = sealed.strip_prefix(SEALED) else {
            return Err("the stored key is in an unknown format".into());
        };
        let Some(key) = &self.key else {
            return Err("it is sealed, and MAILQUEUE_SECRET_KEY is not set".into());
        };
        let mut blob = B64
            .decode(blob)
            .map_err(|e| format!("the stored key is not base64: {e}"))?;
        if blob.len() < NONCE_LEN {
            return Err("the stored key is truncated".into());
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&blob[..NONCE_LEN]);
        let opened = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut blob[NONCE_LEN..],
            )
            .map_err(|_| "it does not open with MAILQUEUE_SECRET_KEY (another secret sealed it, or it was altered)".to_string())?;
        Ok(opened.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretKey {
        SecretKey::parse(s).unwrap()
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_secret() {
        let sealer = KeySealer::new(Some(&secret(&"a".repeat(32))));
        let sealed = sealer.seal(b"private key bytes").unwrap();
        assert!(sealed.starts_with(SEALED));
        assert!(!sealed.contains("private"));
        assert_eq!(sealer.open(&sealed).unwrap(), b"private key bytes");
        assert_ne!(
            sealer.seal(b"private key bytes").unwrap(),
            sealed,
            "fresh nonce"
        );
        let other = KeySealer::new(Some(&secret(&"b".repeat(32))));
        assert!(other.open(&sealed).is_err());
        assert!(KeySealer::new(None).open(&sealed).is_err());
        let mut altered = sealed.clone();
        altered.replace_range(20..21, if &sealed[20..21] == "A" { "B" } else { "A" });
        assert!(sealer.open(&altered).is_err());
    }

    #[test]
    fn short_secrets_are_refused_and_plain_keys_read_back() {
        assert!(SecretKey::parse("short").is_err());
        let plain = KeySealer::new(None);
        let kept = plain.seal(b"bytes").unwrap();
        assert!(kept.starts_with(PLAIN));
        assert_eq!(plain.open(&kept).unwrap(), b"bytes");
    }
}
