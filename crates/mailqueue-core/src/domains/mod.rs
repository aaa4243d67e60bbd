//! Sending domains, in the shape of Resend's `/v1/domains`: a domain the
//! operator proves to own by publishing DNS records (a DKIM key, and a
//! return-path subdomain with its MX and SPF), so that mail from it is
//! signed and its bounces come back aligned.
//!
//! `name.rs` parses domain names; `records.rs` says which records a domain
//! asks for and decides, from what DNS answered, each record's status and
//! the domain's (a pure function: the lookups are an adapter's);
//! `schedule.rs` says when a domain is checked again; `senders.rs` finds
//! the domain that covers a sender's address; `keys.rs` holds the traits
//! behind which the keys' cryptography and DNS lookups live.

mod keys;
mod name;
mod records;
mod schedule;
mod senders;

pub use keys::{DkimKeys, DnsLookup, KeyError, MessageSigner, NewKey};
pub use name::{check_label, DomainName};
pub use records::{
    Check, DnsAnswer, DnsQuery, DnsRecord, RecordKind, RecordType, RecordsConfig, DMARC_RECOMMENDED,
};
pub use schedule::{next_check_after, CHECK_WINDOW};
pub use senders::{check_sender, covering_domain, SenderRefusal};

#[cfg(test)]
pub(crate) mod tests_support;

use crate::ids::DomainId;
use crate::webhooks::AccountEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Resend's status of a domain, and of each of its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// Created, never checked.
    NotStarted,
    /// A check was asked for and has not finished.
    Pending,
    Verified,
    /// Some required records are verified, others are not.
    PartiallyVerified,
    /// Checked, and the records are missing or wrong.
    Failed,
    /// DNS could not be asked (a timeout, SERVFAIL): checked again later.
    TemporaryFailure,
}

impl VerificationStatus {
    pub const ALL: [VerificationStatus; 6] = [
        Self::NotStarted,
        Self::Pending,
        Self::Verified,
        Self::PartiallyVerified,
        Self::Failed,
        Self::TemporaryFailure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "not_started",
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::PartiallyVerified => "partially_verified",
            Self::Failed => "failed",
            Self::TemporaryFailure => "temporary_failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Where Resend would send from; stored and echoed, it changes nothing here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    UsEast1,
    EuWest1,
    SaEast1,
    ApNortheast1,
}

impl Region {
    pub const ALL: [Region; 4] = [
        Self::UsEast1,
        Self::EuWest1,
        Self::SaEast1,
        Self::ApNortheast1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsEast1 => "us-east-1",
            Self::EuWest1 => "eu-west-1",
            Self::SaEast1 => "sa-east-1",
            Self::ApNortheast1 => "ap-northeast-1",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Whether mail from the domain may go to the relay without TLS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsPolicy {
    /// TLS when the relay offers it (the transport's own setting decides).
    #[default]
    Opportunistic,
    /// Never without TLS: a relay connection without it is not used.
    Enforced,
}

impl TlsPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opportunistic => "opportunistic",
            Self::Enforced => "enforced",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Opportunistic, Self::Enforced]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// The signature algorithm of a DKIM key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DkimAlgorithm {
    /// RSA-SHA256 with a 2048-bit key: what every verifier knows.
    #[default]
    Rsa2048,
    /// Ed25519-SHA256 (RFC 8463).
    Ed25519,
}

impl DkimAlgorithm {
    /// Its name, which is also the `k=` tag of the key's record.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa",
            Self::Ed25519 => "ed25519",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rsa" | "rsa2048" | "rsa-sha256" => Some(Self::Rsa2048),
            "ed25519" | "ed25519-sha256" => Some(Self::Ed25519),
            _ => None,
        }
    }
}

/// One DKIM key of a domain. The private key is sealed (encrypted under
/// the server's secret key) by the adapter that made it; the core never
/// sees it in the clear.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimKey {
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// The `p=` of the record: base64 of the SubjectPublicKeyInfo (RSA)
    /// or of the raw 32-byte key (Ed25519).
    pub public_key: String,
    /// The sealed private key, as the key adapter wrote it.
    pub sealed_private_key: String,
    pub status: VerificationStatus,
    /// Whether it signs. A rotation adds a key that does not sign until
    /// its record verifies; then it replaces the one that did.
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

impl DkimKey {
    /// A key just made, under `selector`, not yet seen in DNS.
    pub fn new(
        selector: impl Into<String>,
        algorithm: DkimAlgorithm,
        made: NewKey,
        active: bool,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            selector: selector.into(),
            algorithm,
            public_key: made.public_key,
            sealed_private_key: made.sealed_private_key,
            status: VerificationStatus::NotStarted,
            active,
            created_at: now,
        }
    }
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("status", &self.status)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// The statuses of the return-path and DMARC records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordStatuses {
    pub return_path_mx: VerificationStatus,
    pub return_path_spf: VerificationStatus,
    pub dmarc: VerificationStatus,
}

impl Default for RecordStatuses {
    fn default() -> Self {
        Self {
            return_path_mx: VerificationStatus::NotStarted,
            return_path_spf: VerificationStatus::NotStarted,
            dmarc: VerificationStatus::NotStarted,
        }
    }
}

/// A sending domain as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub id: DomainId,
    pub name: DomainName,
    pub status: VerificationStatus,
    pub region: Region,
    /// The label of the return-path subdomain (`send` in `send.acme.com`).
    pub custom_return_path: String,
    pub open_tracking: bool,
    pub click_tracking: bool,
    pub tls: TlsPolicy,
    /// Stored and echoed: tracking is not built yet.
    pub tracking_subdomain: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The signing key first, then a rotation's next key, if any.
    pub dkim_keys: Vec<DkimKey>,
    pub records: RecordStatuses,
    /// When a check was asked for (by the API or the schedule) that has
    /// not found the domain verified since: the start of the window in
    /// which unverified domains are checked again.
    pub verify_requested_at: Option<DateTime<Utc>>,
    pub checked_at: Option<DateTime<Utc>>,
    /// When the maintenance leader checks the domain next; never when `None`.
    pub next_check_at: Option<DateTime<Utc>>,
    /// Bumped by every write: a write based on an older read is refused,
    /// so a check, a change and a rotation never undo each other.
    pub revision: i64,
}

impl Domain {
    /// The key that signs, if its record was seen in DNS.
    pub fn signing_key(&self) -> Option<&DkimKey> {
        self.dkim_keys
            .iter()
            .find(|k| k.active && k.status == VerificationStatus::Verified)
    }

    /// The return-path subdomain (`send.acme.com`).
    pub fn return_path_domain(&self) -> String {
        format!("{}.{}", self.custom_return_path, self.name)
    }

    /// A check asked for at `now`: due at once, and pending unless the
    /// domain is verified (it stays so, and keeps sending, until a check
    /// finds otherwise).
    pub fn check_requested(&mut self, now: DateTime<Utc>) {
        if self.status != VerificationStatus::Verified {
            self.status = VerificationStatus::Pending;
        }
        self.verify_requested_at = Some(now);
        self.next_check_at = Some(now);
    }
}

/// What `PATCH /v1/domains/{id}` may change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainChange {
    pub open_tracking: Option<bool>,
    pub click_tracking: Option<bool>,
    pub tls: Option<TlsPolicy>,
    pub tracking_subdomain: Option<String>,
}

impl DomainChange {
    pub fn apply(&self, domain: &mut Domain) {
        if let Some(v) = self.open_tracking {
            domain.open_tracking = v;
        }
        if let Some(v) = self.click_tracking {
            domain.click_tracking = v;
        }
        if let Some(v) = self.tls {
            domain.tls = v;
        }
        if let Some(v) = &self.tracking_subdomain {
            domain.tracking_subdomain = Some(v.clone());
        }
    }
}

/// `GET /v1/domains` parameters: newest first, keyset pagination.
#[derive(Clone, Debug, Default)]
pub struct DomainPage {
    pub after: Option<DomainId>,
    pub before: Option<DomainId>,
    pub limit: u32,
}

/// Storing sending domains.
#[async_trait::async_trait]
pub trait DomainStore: Send + Sync + 'static {
    /// Stores a new domain and its `domain.created` event (with its
    /// webhook deliveries) in one transaction; `false` when one of that
    /// name exists (nothing written).
    async fn create_domain(
        &self,
        domain: &Domain,
        event: &AccountEvent,
    ) -> Result<bool, crate::error::StoreError>;
    async fn get_domain(&self, id: DomainId) -> Result<Option<Domain>, crate::error::StoreError>;
    async fn list_domains(
        &self,
        page: &DomainPage,
    ) -> Result<Vec<Domain>, crate::error::StoreError>;
    /// Every domain: there are few, and senders are checked against them.
    async fn all_domains(&self) -> Result<Vec<Domain>, crate::error::StoreError>;
    /// Writes `domain` if the stored one still has `domain.revision`
    /// (then stored with the next revision), with its event if the change
    /// calls for one; whether it did.
    async fn save_domain(
        &self,
        domain: &Domain,
        event: Option<&AccountEvent>,
    ) -> Result<bool, crate::error::StoreError>;
    /// Deletes the domain if it still has `revision`, with its
    /// `domain.deleted` event; whether it did.
    async fn delete_domain(
        &self,
        id: DomainId,
        revision: i64,
        event: &AccountEvent,
    ) -> Result<bool, crate::error::StoreError>;
    /// Domains whose next check is due at `now`, at most `limit`.
    async fn domains_due_for_check(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Domain>, crate::error::StoreError>;
}
