//! The storage contract. PostgreSQL and SQLite implement it in
//! `mailqueue-store`; one conformance suite runs against both.
//!
//! Writes that belong together (emails with their idempotency record,
//! an attempt with the status it causes) happen in one transaction inside a
//! single call, so no caller ever holds a transaction open.

use crate::address::EmailAddress;
use crate::api_key::{ApiKeyPermission, TokenHash};
use crate::email::{AttachmentInfo, NewEmail, Priority};
use crate::events::WrittenEvents;
use crate::ids::{ApiKeyId, EmailId, EventId, IdempotencyFence, WebhookId};
use crate::status::EmailStatus;
use crate::suppression::{SuppressionReads, SuppressionStore};
use crate::webhooks::{
    ClaimedDelivery, DeliveryClaim, DeliveryReport, DisablePolicy, OutboxStats, SecretRotation,
    Webhook, WebhookAttempt, WebhookChange, WebhookDelivery, WebhookPage,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use crate::attempt::{
    AttemptKind, AttemptOutcome, AttemptRecord, AttemptResult, Claim, ClaimedEmail, DeferReason,
    HeldClaim, SuppressedRecipient,
};
pub use crate::error::StoreError;

/// Declares a trait that only gathers others, implemented for every type
/// that implements them all.
macro_rules! gathering {
    ($(#[$doc:meta])* $name:ident: $($part:path),+) => {
        $(#[$doc])*
        pub trait $name: $($part +)+ {}
        impl<T: $($part +)+> $name for T {}
    };
}
pub(crate) use gathering;

/// An email to insert, with the values the API computed for it.
#[derive(Clone, Debug)]
pub struct EmailToInsert {
    pub id: EmailId,
    pub api_key_id: Option<ApiKeyId>,
    pub message_id: String,
    pub created_at: DateTime<Utc>,
    pub email: NewEmail,
}

impl EmailToInsert {
    /// `scheduled` when `scheduled_at` lies after creation, `queued` otherwise.
    pub fn initial_status(&self) -> EmailStatus {
        match self.email.scheduled_at {
            Some(at) if at > self.created_at => EmailStatus::Scheduled,
            _ => EmailStatus::Queued,
        }
    }

    pub fn due_at(&self) -> DateTime<Utc> {
        self.email
            .scheduled_at
            .unwrap_or(self.created_at)
            .max(self.created_at)
    }

    pub fn due(&self) -> DueEmail {
        DueEmail {
            id: self.id,
            due_at: self.due_at(),
            priority: self.email.priority,
        }
    }
}

/// Who asked with which idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyScope {
    pub api_key_id: ApiKeyId,
    pub key: String,
}

/// The answer to remember for an idempotency key, recorded (with the
/// emails of its group) only while the key still carries `fence`.
///
/// It keeps the answer as the front end gave it, status and body, opaque
/// to the domain: a retried request must get the very answer the first
/// one got, byte for byte, and only the front end knows what that was
/// (the HTTP API its status and JSON; an SMTP front end would keep its
/// reply code and text the same way).
#[derive(Clone, Debug)]
pub struct IdempotentResponse {
    pub scope: IdempotencyScope,
    pub fence: IdempotencyFence,
    pub status: u16,
    pub body: String,
}

/// One request's worth of emails: committed, with its idempotency record,
/// together with the other groups of the same call. Cheap to clone (the
/// emails are shared), so a group can be handed to a committer task.
#[derive(Clone, Debug, Default)]
pub struct InsertGroup {
    pub emails: std::sync::Arc<[EmailToInsert]>,
    pub idempotency: Option<IdempotentResponse>,
}

/// The times that decide whether a known idempotency key still counts.
#[derive(Clone, Copy, Debug)]
pub struct IdempotencyWindow {
    pub now: DateTime<Utc>,
    pub stale_before: DateTime<Utc>,
    pub expired_before: DateTime<Utc>,
}

/// The start of an idempotent request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// No earlier request: this one proceeds and its answer will be recorded.
    Started,
    /// The same request was already answered: replay this answer.
    Replay { status: u16, body: String },
    /// The key was used with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// A stored email as the API shows it (attachment bytes excluded).
#[derive(Clone, Debug)]
pub struct EmailRecord {
    pub id: EmailId,
    pub status: EmailStatus,
    pub message_id: String,
    /// The email; its `attachments` are empty, see `attachments`.
    pub email: NewEmail,
    pub attachments: Vec<AttachmentInfo>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: u32,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_smtp_reply: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The type of the email's latest event.
    pub last_event: Option<crate::events::EventType>,
    /// When retention dropped its bodies and attachment bytes, if it did.
    pub content_purged_at: Option<DateTime<Utc>>,
}

/// `GET /v1/emails` parameters: newest first, keyset pagination.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Emails older than this one.
    pub after: Option<EmailId>,
    /// Emails newer than this one.
    pub before: Option<EmailId>,
    pub status: Option<EmailStatus>,
    pub limit: u32,
}

/// An email's place in the dispatch queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueEmail {
    pub id: EmailId,
    pub due_at: DateTime<Utc>,
    pub priority: Priority,
}

/// Emails moved out of `sending` by the rescuer or at a stop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Those back in the queue (the others were given up).
    pub requeued: Vec<DueEmail>,
    pub events: WrittenEvents,
}

impl Recovered {
    /// How many emails were moved: each writes one event, back in the
    /// queue or given up.
    pub fn moved(&self) -> u64 {
        self.events.total()
    }
}

/// The effect of a request to change an email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Changed: the email's place in the queue, and the events written.
    Changed(DueEmail, WrittenEvents),
    NotFound,
    /// The email's status does not allow the change.
    TooLate(EmailStatus),
}

/// Counts for the metrics endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub by_status: Vec<(EmailStatus, u64)>,
    /// The due time of the oldest email that is due and not yet claimed.
    pub oldest_due_at: Option<DateTime<Utc>>,
}

/// Committing new emails: the one write the group committer batches.
#[async_trait]
pub trait EmailInserts: Send + Sync + 'static {
    /// Commits every group in one transaction: all or none.
    async fn insert_emails(&self, groups: &[InsertGroup]) -> Result<(), StoreError>;
}

/// The changes a client asks for on an existing email.
#[async_trait]
pub trait EmailChanges: Send + Sync + 'static {
    /// Moves a pending email to a new time.
    async fn reschedule_email(
        &self,
        id: EmailId,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError>;
    async fn cancel_email(
        &self,
        id: EmailId,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError>;
    /// Queues a `failed` email again, with a fresh retry window.
    async fn retry_failed_email(
        &self,
        id: EmailId,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError>;
}

/// What the API and the metrics read of emails.
#[async_trait]
pub trait EmailReads: Send + Sync + 'static {
    async fn get_email(&self, id: EmailId) -> Result<Option<EmailRecord>, StoreError>;
    /// At most `limit` emails, newest first.
    async fn list_emails(&self, query: &ListQuery) -> Result<Vec<EmailRecord>, StoreError>;
    async fn list_attempts(&self, id: EmailId) -> Result<Vec<AttemptRecord>, StoreError>;
    /// The email's events, oldest first.
    async fn list_email_events(
        &self,
        id: EmailId,
    ) -> Result<Vec<crate::events::EmailEvent>, StoreError>;
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError>;
}

/// What a delivery worker does to the emails it sends: claims under a
/// lease, keeps the leases, gives back what it did not start, records
/// outcomes, and looks the recipients up on the suppression list.
#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    /// Claims those of `ids` that are still pending and due, in one statement.
    async fn claim_emails(
        &self,
        ids: &[EmailId],
        claim: &Claim,
    ) -> Result<Vec<ClaimedEmail>, StoreError>;
    /// Records attempts and moves their emails on, in one transaction. An
    /// outcome whose attempt no longer holds the email only adds history.
    /// Returns the events written: none for an outcome that did not apply.
    async fn record_outcomes(
        &self,
        outcomes: &[AttemptOutcome],
    ) -> Result<WrittenEvents, StoreError>;
    /// Extends to `until` the leases that `holder` still holds and that have
    /// not expired at `now`; returns the ids whose lease was extended. An
    /// expired lease is never revived: the rescuer may already own it.
    async fn renew_leases(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<EmailId>, StoreError>;
    /// Defers claimed emails whose send never started (a rate limit, a
    /// lease without room, no relay connection, a shutdown): each goes back
    /// to the queue, due at `due_at`. A claim counts no attempt, so nothing
    /// is undone and no history is written. Only claims `holder` still
    /// holds under the given claim number move; returns those.
    async fn defer_claims(
        &self,
        holder: &str,
        claims: &[HeldClaim],
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError>;
    /// Which of `addresses` are on the suppression list, and why: one
    /// indexed lookup for a whole batch of claimed emails.
    async fn suppressed_among(
        &self,
        addresses: &[EmailAddress],
    ) -> Result<Vec<SuppressedRecipient>, StoreError>;
}

/// Getting emails back whose worker is gone, and rebuilding the queue:
/// the fleet's maintenance.
#[async_trait]
pub trait LeaseRecovery: Send + Sync + 'static {
    /// Returns emails whose lease expired before `now` to the queue, or fails
    /// those whose first attempt is older than `give_up_before`.
    async fn rescue_expired_leases(
        &self,
        now: DateTime<Utc>,
        give_up_before: DateTime<Utc>,
    ) -> Result<Recovered, StoreError>;
    /// Returns every email leased by `holder` to the queue at once, counting
    /// the attempt each was in (its send may have begun).
    async fn release_leases(
        &self,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<Recovered, StoreError>;
    /// Pending emails in id order after `after`: the source for rebuilding a queue.
    async fn pending_emails(
        &self,
        after: Option<EmailId>,
        limit: u32,
    ) -> Result<Vec<DueEmail>, StoreError>;
}

/// Whether the store works, and leaving it tidy at shutdown.
#[async_trait]
pub trait StoreHealth: Send + Sync + 'static {
    /// Whether the store serves reads and writes. After a failed write it
    /// probes with a committed write, and stays failing until one works.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Leaves the store in its most portable state (SQLite: the write-ahead
    /// log checkpointed into the main file and emptied). Called at shutdown,
    /// after the last write; reads still work afterwards.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

gathering! {
    /// Every operation on emails, for the stores to implement whole.
    EmailStore: EmailInserts, EmailChanges, EmailReads, DeliveryStore, LeaseRecovery, StoreHealth
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Records the start of a request, fenced with `fence`, unless the key
    /// is known. A key first used before `window.expired_before` counts as
    /// unknown; a request still in progress since before
    /// `window.stale_before` is presumed dead and taken over: the key gets
    /// the new fence, so the old request can no longer commit (see
    /// [`IdempotentResponse`]).
    async fn begin_idempotent_request(
        &self,
        scope: &IdempotencyScope,
        request_hash: &[u8; 32],
        window: &IdempotencyWindow,
        fence: IdempotencyFence,
    ) -> Result<IdempotencyBegin, StoreError>;
    /// Forgets a started request that failed before it committed anything,
    /// if the key still carries its fence (a request that took it over
    /// keeps it).
    async fn abandon_idempotent_request(
        &self,
        scope: &IdempotencyScope,
        fence: IdempotencyFence,
    ) -> Result<(), StoreError>;
    /// Deletes keys created before `before`; returns how many.
    async fn purge_idempotency_keys(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// A stored API key (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub name: String,
    pub token_prefix: String,
    pub permission: ApiKeyPermission,
    /// The one domain a `sending_access` key may send from, if limited.
    pub domain_id: Option<crate::ids::DomainId>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Which keys a revocation means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiKeySelector {
    Id(ApiKeyId),
    /// Every active key of that name.
    Name(String),
}

impl ApiKeySelector {
    /// What an operator typed: an id when it reads as one, else a name.
    pub fn id_or_name(raw: &str) -> Self {
        raw.parse()
            .map(Self::Id)
            .unwrap_or_else(|_| Self::Name(raw.to_string()))
    }
}

/// Looking API keys up (authentication and listing).
#[async_trait]
pub trait ApiKeyReads: Send + Sync + 'static {
    /// The active key with this hash, if any.
    async fn find_api_key(&self, hash: &TokenHash) -> Result<Option<ApiKeyRecord>, StoreError>;
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
}

/// Creating and revoking API keys (the service's use cases).
#[async_trait]
pub trait ApiKeyChanges: Send + Sync + 'static {
    async fn create_api_key(&self, key: &ApiKeyRecord, hash: &TokenHash) -> Result<(), StoreError>;
    /// Revokes the active keys `key` selects; returns how many were revoked.
    async fn revoke_api_key(
        &self,
        key: &ApiKeySelector,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

gathering! {
    /// Every operation on API keys.
    ApiKeyStore: ApiKeyReads, ApiKeyChanges
}

/// Leases that let one process of a fleet run a task for everyone (the
/// rescuer and the reconciler): whoever holds the named lease runs it, and
/// another process takes over once it expires.
#[async_trait]
pub trait MaintenanceLeases: Send + Sync + 'static {
    /// Takes the lease `name` for `holder` until `until`, if it is free,
    /// expired at `now`, or already `holder`'s. Returns whether `holder`
    /// holds it now.
    async fn hold_maintenance_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up (at shutdown), so another process takes over at once.
    async fn release_maintenance_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

/// Reading webhooks and their deliveries (the API's side).
#[async_trait]
pub trait WebhookReads: Send + Sync + 'static {
    async fn get_webhook(&self, id: WebhookId) -> Result<Option<Webhook>, StoreError>;
    async fn list_webhooks(
        &self,
        page: &WebhookPage<WebhookId>,
    ) -> Result<Vec<Webhook>, StoreError>;
    /// The webhook's deliveries, newest event first.
    async fn list_webhook_deliveries(
        &self,
        id: WebhookId,
        page: &WebhookPage<EventId>,
    ) -> Result<Vec<WebhookDelivery>, StoreError>;
    async fn get_webhook_delivery(
        &self,
        id: WebhookId,
        event: EventId,
    ) -> Result<Option<WebhookDelivery>, StoreError>;
    /// The attempts of a delivery, oldest first.
    async fn list_webhook_attempts(
        &self,
        id: WebhookId,
        event: EventId,
    ) -> Result<Vec<WebhookAttempt>, StoreError>;
}

/// Changing webhooks (the service's use cases).
#[async_trait]
pub trait WebhookChanges: Send + Sync + 'static {
    async fn create_webhook(&self, webhook: &Webhook) -> Result<(), StoreError>;
    /// Applies the change; enabling also forgets past failures and the
    /// reason of a disabling. `None` when no such webhook exists.
    async fn update_webhook(
        &self,
        id: WebhookId,
        change: &WebhookChange,
    ) -> Result<Option<Webhook>, StoreError>;
    /// Applies a rotation decided by [`Webhook::rotation`] if the
    /// webhook's signing secret is still the one it replaces; whether it
    /// did (not when the webhook is gone or was rotated meanwhile).
    async fn rotate_webhook_secret(
        &self,
        id: WebhookId,
        rotation: &SecretRotation,
    ) -> Result<bool, StoreError>;
    /// Deletes the webhook with its deliveries; whether it existed.
    async fn delete_webhook(&self, id: WebhookId) -> Result<bool, StoreError>;
    /// Queues the delivery again, due at `now`, with the whole schedule
    /// ahead of it; whether it exists.
    async fn replay_webhook_delivery(
        &self,
        id: WebhookId,
        event: EventId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// The webhook outbox, as the senders see it. Events queue their
/// deliveries in the transaction that writes them (see
/// `DeliveryStore::record_outcomes`); the senders claim them with a lease,
/// each at most `per_webhook` of one webhook at once, and record each
/// attempt fenced by holder and attempt number.
#[async_trait]
pub trait WebhookOutbox: Send + Sync + 'static {
    /// Claims due deliveries of enabled webhooks, oldest due first.
    async fn claim_webhook_deliveries(
        &self,
        claim: &DeliveryClaim,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// Records attempts, moves their deliveries on (unless `holder` no
    /// longer holds them at that attempt) and keeps each webhook's failing
    /// streak, disabling those `policy` says have failed too long.
    async fn record_webhook_deliveries(
        &self,
        holder: &str,
        reports: &[DeliveryReport],
        policy: &DisablePolicy,
    ) -> Result<(), StoreError>;
    async fn webhook_outbox_stats(&self) -> Result<OutboxStats, StoreError>;
}

gathering! {
    /// Every operation on webhooks.
    WebhookStore: WebhookReads, WebhookChanges, WebhookOutbox
}

/// A report that arrived at the bounce domain and could not be read as a
/// DSN or a complaint about an email sent (or named nothing that was):
/// kept whole for an operator, never bounced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnclassifiedReport {
    pub id: uuid::Uuid,
    pub received_at: DateTime<Utc>,
    /// `MAIL FROM` (empty for the null sender of most reports).
    pub mail_from: String,
    pub rcpt_to: String,
    /// The email its return address named.
    pub email_id: Option<EmailId>,
    /// Why it was not applied, in one line.
    pub reason: String,
    pub message: Vec<u8>,
}

/// What reports that arrive after sending write.
#[async_trait]
pub trait ReportStore: Send + Sync + 'static {
    /// Writes the events (with their webhook deliveries) and suppressions
    /// of `report` in one transaction, if its email is still stored;
    /// returns the events written (none for an email that is gone).
    async fn record_report(
        &self,
        report: &crate::transition::ReportTransition,
    ) -> Result<WrittenEvents, StoreError>;
    async fn keep_unclassified_report(&self, report: &UnclassifiedReport)
        -> Result<(), StoreError>;
}

gathering! {
    /// What the HTTP API reads; it changes nothing itself, the service does.
    ApiReads: EmailReads, WebhookReads, SuppressionReads, ApiKeyReads
}

gathering! {
    /// Everything the service needs from its database.
    Store: EmailStore, ApiReads, IdempotencyStore, ApiKeyStore, MaintenanceLeases,
        SuppressionStore, WebhookStore, crate::retention::RetentionStore, ReportStore,
        crate::domains::DomainStore
}
