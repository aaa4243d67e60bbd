//! The keys `mail-auth` signs with, on AWS-LC (`aws-lc-rs`): its RSA
//! signing runs at OpenSSL's speed, twice as fast as `ring`'s, and its
//! Ed25519 faster still (see BENCHMARKS.md, DKIM signing). `mail-auth`
//! canonicalizes and hashes; these only sign what it hands them.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};
use mail_auth::common::crypto::{Algorithm, HashContext, HashImpl, Sha256, SigningKey};
use mail_auth::common::headers::Writable;

fn crypto(e: impl std::fmt::Display) -> mail_auth::Error {
    mail_auth::Error::CryptoError(e.to_string())
}

/// RSA with SHA-256 (PKCS #1 v1.5), from a PKCS #8 private key.
pub struct AwsRsaKey {
    inner: RsaKeyPair,
    random: SystemRandom,
}

impl AwsRsaKey {
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        Ok(Self {
            inner: RsaKeyPair::from_pkcs8(der).map_err(|e| e.to_string())?,
            random: SystemRandom::new(),
        })
    }
}

impl SigningKey for AwsRsaKey {
    type Hasher = Sha256;

    /// The signature of the canonical headers (the key hashes them).
    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        let mut data = Vec::with_capacity(512);
        input.write(&mut data);
        let mut signature = vec![0; self.inner.public_modulus_len()];
        self.inner
            .sign(&RSA_PKCS1_SHA256, &self.random, &data, &mut signature)
            .map_err(crypto)?;
        Ok(signature)
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::RsaSha256
    }
}

/// Ed25519 over the SHA-256 of the canonical headers (RFC 8463), from a
/// PKCS #8 private key.
pub struct AwsEd25519Key {
    inner: Ed25519KeyPair,
}

impl AwsEd25519Key {
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        Ok(Self {
            inner: Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| e.to_string())?,
        })
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public_key().as_ref().to_vec()
    }
}

impl SigningKey for AwsEd25519Key {
    type Hasher = Sha256;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        let mut hash = <Sha256 as HashImpl>::hasher();
        input.write(&mut hash);
        Ok(self.inner.sign(hash.complete().as_ref()).as_ref().to_vec())
    }

    fn algorithm(&self) -> Algorithm {
        Algorithm::Ed25519Sha256
    }
}
