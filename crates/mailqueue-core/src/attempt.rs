//! Attempts: a claim of an email by a worker, what the attempt ended in,
//! and its record.

use crate::address::EmailAddress;
use crate::delivery::{DeliveryError, RejectedRecipient, SmtpReply};
use crate::email::NewEmail;
use crate::ids::EmailId;
use crate::suppression::SuppressionOrigin;
use chrono::{DateTime, Utc};

/// One recorded attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: AttemptKind,
    pub smtp_code: Option<u16>,
    pub detail: String,
}

/// How an attempt ended, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptKind {
    Sent,
    TransientFailure,
    PermanentFailure,
    /// The worker disappeared while holding the lease.
    LeaseExpired,
}

impl AttemptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Sent => "sent",
            AttemptKind::TransientFailure => "transient_failure",
            AttemptKind::PermanentFailure => "permanent_failure",
            AttemptKind::LeaseExpired => "lease_expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Sent,
            Self::TransientFailure,
            Self::PermanentFailure,
            Self::LeaseExpired,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The terms of a claim: who holds it and until when.
#[derive(Clone, Debug)]
pub struct Claim {
    pub holder: String,
    pub now: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
}

/// Why a claimed email goes back unsent: a deferral, which counts no
/// attempt (River's snooze).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeferReason {
    /// Its lease has no room left for a whole send.
    Lease,
    Shutdown,
    /// The fleet's sending rate is used up until a later slot.
    RateLimit,
    /// A recipient domain's rate is used up until a later slot.
    DomainRateLimit,
    /// Every relay connection the fleet may open is in use.
    ConnectionLimit,
    /// The suppression list could not be read.
    SuppressionLookup,
}

impl DeferReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeferReason::Lease => "lease",
            DeferReason::Shutdown => "shutdown",
            DeferReason::RateLimit => "rate_limit",
            DeferReason::DomainRateLimit => "domain_rate_limit",
            DeferReason::ConnectionLimit => "connection_limit",
            DeferReason::SuppressionLookup => "suppression_lookup",
        }
    }
}

/// A claim as its worker knows it: the email and the claim's number,
/// which fences whatever the worker writes about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldClaim {
    pub id: EmailId,
    pub claim: u32,
}

/// An email handed to a worker, with everything needed to send it.
#[derive(Clone, Debug)]
pub struct ClaimedEmail {
    pub id: EmailId,
    pub message_id: String,
    pub created_at: DateTime<Utc>,
    pub email: NewEmail,
    /// The number this attempt takes if it is made (1 for the first):
    /// attempts are counted by their outcomes, never by a claim, so a
    /// deferral has nothing to undo.
    pub attempt: u32,
    /// The claim's number: it fences the outcome, so a worker whose lease
    /// was taken over cannot overwrite what the next claim writes.
    pub claim: u32,
    /// When the first attempt started (this one's start, for a first).
    pub first_attempt_at: DateTime<Utc>,
    /// Recipients taken out of `email` because they are suppressed (filled
    /// in by the delivery layer after the claim; stores leave it empty).
    pub suppressed: Vec<SuppressedRecipient>,
    /// Whether this claim wrote `email.sent` for a scheduled email whose
    /// time came (see [`crate::transition::comes_due`]).
    pub came_due: bool,
}

impl ClaimedEmail {
    /// The claim as its worker holds it.
    pub fn held(&self) -> HeldClaim {
        HeldClaim {
            id: self.id,
            claim: self.claim,
        }
    }
}

/// What an attempt ended in, ready to record.
#[derive(Clone, Debug)]
pub struct AttemptOutcome {
    pub email_id: EmailId,
    pub attempt: u32,
    /// The claim it was made under (see [`ClaimedEmail::claim`]).
    pub claim: u32,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub result: AttemptResult,
    /// Recipients refused for good at `RCPT TO` (the message went to the
    /// others, or to none).
    pub rejected: Vec<RejectedRecipient>,
    /// Recipients left out because they are on the suppression list.
    pub suppressed: Vec<SuppressedRecipient>,
}

/// A recipient not sent to because of the suppression list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuppressedRecipient {
    pub address: EmailAddress,
    pub origin: SuppressionOrigin,
}

#[derive(Clone, Debug)]
pub enum AttemptResult {
    Sent(SmtpReply),
    RetryAt(DeliveryError, DateTime<Utc>),
    Failed(DeliveryError),
    /// Every recipient is suppressed: nothing was sent, and nothing will be.
    Suppressed,
}
