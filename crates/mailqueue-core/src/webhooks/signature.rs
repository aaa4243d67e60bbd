//! Signing as Svix (Standard Webhooks) signs, which is how Resend signs:
//! `svix-signature` holds `v1,` and the base64 of HMAC-SHA256 over
//! `{svix-id}.{svix-timestamp}.{body}`, keyed with the bytes that the
//! secret `whsec_<base64>` encodes. Several signatures, separated by
//! spaces, let a receiver accept either of two secrets during a rotation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

const PREFIX: &str = "whsec_";

/// A webhook's signing secret, `whsec_` + base64 of the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// The secret of a key (24 random bytes, as Svix makes them).
    pub fn from_key(key: &[u8]) -> Self {
        Self(format!("{PREFIX}{}", STANDARD.encode(key)))
    }

    /// A stored or given secret; its key must be base64.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let encoded = raw
            .strip_prefix(PREFIX)
            .ok_or_else(|| "a signing secret starts with `whsec_`".to_string())?;
        match STANDARD.decode(encoded) {
            Ok(key) if !key.is_empty() => Ok(Self(raw.to_string())),
            _ => Err("a signing secret's key is base64 after `whsec_`".into()),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        STANDARD
            .decode(&self.0[PREFIX.len()..])
            .unwrap_or_else(|e| unreachable!("a parsed secret decodes: {e}"))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, message_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key())
            .unwrap_or_else(|e| unreachable!("HMAC takes keys of any length: {e}"));
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// Never shows the key.
impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(whsec_…)")
    }
}

/// The `svix-signature` header: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[SigningSecret],
    message_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (and of svix's
    /// own test suites).
    #[test]
    fn signs_the_standard_webhooks_example() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn rotation_signs_with_each_secret() {
        let a = SigningSecret::from_key(&[1; 24]);
        let b = SigningSecret::from_key(&[2; 24]);
        let header = signature_header(&[a.clone(), b.clone()], "id", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, [a.sign("id", 1, b"{}"), b.sign("id", 1, b"{}")]);
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn secrets_are_parsed_and_never_shown() {
        let s = SigningSecret::from_key(&[7; 24]);
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(s.expose()).unwrap(), s);
        assert!(SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(SigningSecret::parse("whsec_!!!").is_err());
        assert!(!format!("{s:?}").contains(&s.expose()[6..]));
    }
}
