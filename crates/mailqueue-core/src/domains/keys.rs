//! The narrow traits behind which DKIM keys and DNS lookups live (the
//! cryptography and the resolver are adapters of `mailqueue-dkim`).

use super::DkimKey;
use super::{DkimAlgorithm, DnsAnswer, DnsQuery, DomainName};
use async_trait::async_trait;
use std::sync::Arc;

/// A fresh key: what its record publishes, and the private key sealed.
#[derive(Clone)]
pub struct NewKey {
    pub public_key: String,
    pub sealed_private_key: String,
}

/// Why a key could not be made or used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Keys cannot be stored safely: no secret key to seal them with.
    #[error("{0}")]
    NoSecretKey(String),
    /// The sealed key does not open with this server's secret key.
    #[error("the DKIM key of {0} cannot be opened: {1}")]
    Unreadable(String, String),
    #[error("{0}")]
    Failed(String),
}

/// Signs a whole message (CRLF lines) for one domain.
pub trait MessageSigner: Send + Sync + 'static {
    /// The `DKIM-Signature` header to put first, ending in CRLF.
    fn signature_header(&self, message: &[u8]) -> Result<String, String>;
    /// The signing domain and selector, for logs.
    fn describe(&self) -> String;
}

/// Making, sealing and opening DKIM keys.
pub trait DkimKeys: Send + Sync + 'static {
    fn generate(&self, algorithm: DkimAlgorithm) -> Result<NewKey, KeyError>;
    /// A signer with `key` for `domain`.
    fn signer(
        &self,
        domain: &DomainName,
        key: &DkimKey,
    ) -> Result<Arc<dyn MessageSigner>, KeyError>;
}

/// Asking DNS.
#[async_trait]
pub trait DnsLookup: Send + Sync + 'static {
    async fn lookup(&self, query: &DnsQuery) -> DnsAnswer;
}
