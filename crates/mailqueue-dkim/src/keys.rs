//! Generating DKIM keys (AWS-LC) and signing with them (`mail-auth`
//! signs over the keys of `signing_keys.rs`; the private keys are opened
//! from their sealed form when a signer is made).

use crate::sealing::KeySealer;
use crate::signing_keys::{AwsEd25519Key, AwsRsaKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use mail_auth::common::crypto::SigningKey;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use mailqueue_core::domains::{
    DkimAlgorithm, DkimKey, DkimKeys, DomainName, KeyError, MessageSigner, NewKey,
};
use std::sync::Arc;

/// The headers a signature covers. `From` is listed twice: the second,
/// absent, entry oversigns it, so no second `From` can be added. Those the
/// message lacks are signed as absent, so none can be added either.
pub const SIGNED_HEADERS: [&str; 10] = [
    "From",
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
];

/// Keys generated here, sealed by `sealer`.
pub struct MailAuthKeys {
    sealer: KeySealer,
}

impl MailAuthKeys {
    pub fn new(sealer: KeySealer) -> Self {
        Self { sealer }
    }
}

fn failed(what: &str) -> impl Fn(String) -> KeyError + '_ {
    move |e| KeyError::Failed(format!("{what}: {e}"))
}

/// Returns the private key's DER (PKCS #8) and the record's `p=` bytes
/// (the SubjectPublicKeyInfo for RSA, as RFC 6376 asks; the raw key for
/// Ed25519, as RFC 8463 asks).
fn generate_pair(algorithm: DkimAlgorithm) -> Result<(Vec<u8>, Vec<u8>), String> {
    match algorithm {
        DkimAlgorithm::Rsa2048 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| e.to_string())?;
            let private = pair.as_der().map_err(|e| e.to_string())?;
            let public = pair.public_key().as_der().map_err(|e| e.to_string())?;
            Ok((private.as_ref().to_vec(), public.as_ref().to_vec()))
        }
        DkimAlgorithm::Ed25519 => {
            let random = aws_lc_rs::rand::SystemRandom::new();
            let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&random)
                .map_err(|e| e.to_string())?;
            let public = AwsEd25519Key::from_pkcs8(pkcs8.as_ref())?.public_key();
            Ok((pkcs8.as_ref().to_vec(), public))
        }
    }
}

impl DkimKeys for MailAuthKeys {
    fn generate(&self, algorithm: DkimAlgorithm) -> Result<NewKey, KeyError> {
        let (private, public) = generate_pair(algorithm).map_err(failed("generating a key"))?;
        Ok(NewKey {
            public_key: B64.encode(public),
            sealed_private_key: self
                .sealer
                .seal(&private)
                .map_err(failed("sealing a key"))?,
        })
    }

    fn signer(
        &self,
        domain: &DomainName,
        key: &DkimKey,
    ) -> Result<Arc<dyn MessageSigner>, KeyError> {
        let unreadable = |e: String| KeyError::Unreadable(domain.to_string(), e);
        let der = self
            .sealer
            .open(&key.sealed_private_key)
            .map_err(unreadable)?;
        let describe = format!("d={} s={}", domain, key.selector);
        let signer: Arc<dyn MessageSigner> = match key.algorithm {
            DkimAlgorithm::Rsa2048 => {
                let k = AwsRsaKey::from_pkcs8(&der).map_err(unreadable)?;
                Arc::new(Signer {
                    inner: template(k, domain, &key.selector),
                    describe,
                })
            }
            DkimAlgorithm::Ed25519 => {
                let k = AwsEd25519Key::from_pkcs8(&der).map_err(unreadable)?;
                Arc::new(Signer {
                    inner: template(k, domain, &key.selector),
                    describe,
                })
            }
        };
        Ok(signer)
    }
}

fn template<K: SigningKey>(key: K, domain: &DomainName, selector: &str) -> DkimSigner<K, Done> {
    DkimSigner::from_key(key)
        .domain(domain.as_str())
        .selector(selector)
        .headers(SIGNED_HEADERS)
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
}

struct Signer<K: SigningKey> {
    inner: DkimSigner<K, Done>,
    describe: String,
}

impl<K> MessageSigner for Signer<K>
where
    K: SigningKey + Send + Sync + 'static,
{
    fn signature_header(&self, message: &[u8]) -> Result<String, String> {
        self.inner
            .sign(message)
            .map(|signature| signature.to_header())
            .map_err(|e| format!("signing with {} failed: {e}", self.describe))
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use mailqueue_core::domains::VerificationStatus;

    fn key(keys: &MailAuthKeys, algorithm: DkimAlgorithm) -> DkimKey {
        let new = keys.generate(algorithm).unwrap();
        DkimKey {
            status: VerificationStatus::Verified,
            ..DkimKey::new("mq1", algorithm, new, true, Utc::now())
        }
    }

    #[test]
    fn both_algorithms_sign_relaxed_with_from_oversigned() {
        let keys = MailAuthKeys::new(KeySealer::new(None));
        let domain = DomainName::parse("acme.com").unwrap();
        let message = b"From: a@acme.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nbody\r\n";
        for (algorithm, a) in [
            (DkimAlgorithm::Rsa2048, "a=rsa-sha256"),
            (DkimAlgorithm::Ed25519, "a=ed25519-sha256"),
        ] {
            let k = key(&keys, algorithm);
            let header = keys
                .signer(&domain, &k)
                .unwrap()
                .signature_header(message)
                .unwrap();
            assert!(header.starts_with("DKIM-Signature: v=1; "), "{header}");
            assert!(header.ends_with("\r\n"));
            assert!(header.contains(a), "{header}");
            assert!(header.contains("c=relaxed/relaxed"));
            assert!(header.contains("d=acme.com") && header.contains("s=mq1"));
            let h = header
                .split("h=")
                .nth(1)
                .unwrap()
                .split(';')
                .next()
                .unwrap();
            let h: String = h.split_whitespace().collect();
            assert_eq!(h.matches("From").count(), 2, "{h}");
        }
    }
}
