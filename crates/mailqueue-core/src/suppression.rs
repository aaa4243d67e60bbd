//! The suppression list: addresses not to send to. Addresses are compared
//! without case, local part included: RFC 5321 leaves the local part's case
//! to the receiving host, but real mailboxes fold it, so `Gone@example.com`
//! on the list stops mail to `gone@example.com` (which would only bounce
//! again). The list keeps every address in lower case.

use crate::address::EmailAddress;
use crate::error::StoreError;
use crate::ids::{EmailId, SuppressionId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::fmt;
use std::str::FromStr;

/// Why an address is on the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SuppressionOrigin {
    /// A permanent bounce (added automatically).
    Bounce,
    Complaint,
    /// Added through the API.
    Manual,
}

impl SuppressionOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionOrigin::Bounce => "bounce",
            SuppressionOrigin::Complaint => "complaint",
            SuppressionOrigin::Manual => "manual",
        }
    }

    /// Resend's `reason` in an `email.suppressed` event.
    pub fn event_reason(self) -> &'static str {
        match self {
            SuppressionOrigin::Bounce => "previous_bounce",
            SuppressionOrigin::Complaint => "previous_complaint",
            SuppressionOrigin::Manual => "manual",
        }
    }
}

impl fmt::Display for SuppressionOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SuppressionOrigin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Bounce, Self::Complaint, Self::Manual]
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not an origin: use bounce, complaint or manual"))
    }
}

/// The form an address is kept and compared in: all of it in lower case
/// (addresses are ASCII, see [`EmailAddress`]).
pub fn suppression_key(address: &EmailAddress) -> String {
    address.as_str().to_ascii_lowercase()
}

/// An address on the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    pub id: SuppressionId,
    /// In the form of [`suppression_key`].
    pub email: String,
    pub origin: SuppressionOrigin,
    pub reason: Option<String>,
    /// The email whose bounce added it, for origin `bounce`.
    pub email_id: Option<EmailId>,
    pub created_at: DateTime<Utc>,
}

/// An entry named by its id or by its address (in [`suppression_key`] form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuppressionRef {
    Id(SuppressionId),
    Email(String),
}

/// A page of the list, newest first (ids are UUIDv7).
#[derive(Clone, Debug, Default)]
pub struct SuppressionQuery {
    pub origin: Option<SuppressionOrigin>,
    pub limit: u32,
    /// Older than this entry.
    pub after: Option<SuppressionId>,
    /// Newer than this entry (read oldest first, then flipped by the caller).
    pub before: Option<SuppressionId>,
}

/// Reading the suppression list.
#[async_trait]
pub trait SuppressionReads: Send + Sync + 'static {
    async fn list_suppressions(
        &self,
        query: &SuppressionQuery,
    ) -> Result<Vec<Suppression>, StoreError>;
    async fn get_suppression(
        &self,
        entry: &SuppressionRef,
    ) -> Result<Option<Suppression>, StoreError>;
}

/// Changing the suppression list by hand (the service's use cases). Bounces
/// add to it in the transaction of their outcome (see
/// `DeliveryStore::record_outcomes`).
#[async_trait]
pub trait SuppressionChanges: Send + Sync + 'static {
    /// Lists each address not yet listed, in one transaction; answers the
    /// entry of every address, the new or the one already there.
    async fn add_suppressions(
        &self,
        entries: &[Suppression],
    ) -> Result<Vec<Suppression>, StoreError>;
    /// Removes the named entries in one transaction; for each reference,
    /// the entry it removed, if there was one.
    async fn remove_suppressions(
        &self,
        entries: &[SuppressionRef],
    ) -> Result<Vec<Option<Suppression>>, StoreError>;
}

crate::store::gathering! {
    /// Every operation on the suppression list.
    SuppressionStore: SuppressionReads, SuppressionChanges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_address_is_compared_without_case() {
        let a = EmailAddress::parse("John.Doe@Example.COM").unwrap();
        assert_eq!(suppression_key(&a), "john.doe@example.com");
    }
}
