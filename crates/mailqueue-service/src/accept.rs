//! Accepting emails: ids and Message-IDs, idempotency, "commit, then
//! enqueue".
//!
//! With an idempotency key, the key is recorded as in progress before
//! anything is stored, and the answer is committed in the same transaction
//! as the emails, so a crash leaves either nothing or both. A key is scoped
//! to its API key; a request still in progress for longer than
//! `IN_PROGRESS_TIMEOUT` is presumed dead and may be taken over. Each
//! request holds the key under its own fence, and its emails commit only
//! while the key still carries that fence: a request that was merely
//! stalled (a store failing over, an I/O stall) and then taken over fails
//! with `concurrent_idempotent_requests` instead of sending a second email.

use crate::{EmailService, ServiceError};
use mailqueue_core::store::{
    DueEmail, EmailToInsert, IdempotencyBegin, IdempotencyScope, IdempotencyWindow,
    IdempotentResponse, InsertGroup, StoreError,
};
use mailqueue_core::transition::{self, WrittenEvents};
use mailqueue_core::{ApiKeyId, EmailId, EmailStatus, IdempotencyFence, NewEmail};

const IN_PROGRESS_TIMEOUT: chrono::Duration = chrono::Duration::seconds(60);

/// An idempotency key presented with a request, and the request's
/// fingerprint (what must match for the earlier answer to be replayed).
#[derive(Clone, Debug)]
pub struct Idempotency {
    pub scope: IdempotencyScope,
    pub fingerprint: [u8; 32],
}

/// An email that the request stores.
#[derive(Clone, Copy, Debug)]
pub struct AcceptedEmail {
    pub id: EmailId,
    pub status: EmailStatus,
}

/// How an accept ended: committed now, or answered before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// The emails are committed; `body` is the answer recorded with them.
    Committed { body: String },
    /// The same request was answered before: this is that answer.
    Replay { status: u16, body: String },
}

impl EmailService {
    /// Stores `emails` for `api_key`. `answer` turns the accepted emails into
    /// the front end's answer (status and body), which is committed with
    /// them when the request is idempotent, and replayed for a repeat.
    pub async fn accept(
        &self,
        api_key: ApiKeyId,
        emails: Vec<NewEmail>,
        idempotency: Option<Idempotency>,
        answer: impl FnOnce(&[AcceptedEmail]) -> (u16, String),
    ) -> Result<AcceptOutcome, ServiceError> {
        let now = self.now();
        let fence = IdempotencyFence::generate(now);
        if let Some(i) = &idempotency {
            if let Some(replay) = self.begin_idempotent(i, fence).await? {
                return Ok(replay);
            }
        }
        let inserts: Vec<EmailToInsert> = emails
            .into_iter()
            .map(|email| {
                let id = EmailId::generate(now);
                // A submitted message already carries its own.
                let message_id = match &email.submitted {
                    Some(s) => s.message_id.clone(),
                    None => self.message_id_for(id, &email),
                };
                EmailToInsert {
                    id,
                    api_key_id: Some(api_key),
                    message_id,
                    created_at: now,
                    email,
                }
            })
            .collect();
        let accepted: Vec<AcceptedEmail> = inserts
            .iter()
            .map(|e| AcceptedEmail {
                id: e.id,
                status: e.initial_status(),
            })
            .collect();
        let (status, body) = answer(&accepted);
        let due: Vec<DueEmail> = inserts.iter().map(EmailToInsert::due).collect();
        let accepted_events: WrittenEvents = inserts.iter().map(transition::accepted).collect();
        let group = InsertGroup {
            emails: inserts.into(),
            idempotency: idempotency.as_ref().map(|i| IdempotentResponse {
                scope: i.scope.clone(),
                fence,
                status,
                body: body.clone(),
            }),
        };
        if let Err(e) = self.commit_then_enqueue(group, due.clone()).await {
            if let Some(i) = &idempotency {
                if let Err(e) = self.store.abandon_idempotent_request(&i.scope, fence).await {
                    tracing::warn!(error = %e, "could not release an idempotency key after a failed commit");
                }
            }
            return Err(match e {
                StoreError::Superseded(why) => {
                    tracing::warn!(%why, "an idempotent request lost its key before it committed; nothing was stored");
                    ServiceError::IdempotencyInProgress
                }
                e => e.into(),
            });
        }
        self.metrics.emails_accepted.inc_by(due.len() as u64);
        // An insert writes the events of all its emails or of none.
        self.metrics.count_events(&accepted_events);
        Ok(AcceptOutcome::Committed { body })
    }

    /// Commits the emails, then enqueues them, in a task of its own: a
    /// request dropped while it waits (its client gone, a connection cut by
    /// a load balancer) may still be committed, and its emails must then
    /// reach the queue at once, not at the reconciler's next pass.
    async fn commit_then_enqueue(
        &self,
        group: InsertGroup,
        due: Vec<DueEmail>,
    ) -> Result<(), StoreError> {
        let inserts = self.inserts.clone();
        let queue = self.queue.clone();
        let task = tokio::spawn(async move {
            inserts.insert_emails(&[group]).await?;
            crate::enqueue_committed(queue.as_ref(), &due, "accepted emails were").await;
            Ok(())
        });
        match task.await {
            Ok(committed) => committed,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::Failed(format!("the commit was abandoned: {e}"))),
        }
    }

    /// The Message-ID of an email built here: its id at the configured
    /// domain, or at its sender's.
    fn message_id_for(&self, id: EmailId, email: &NewEmail) -> String {
        let domain = self
            .message_id_domain()
            .unwrap_or(email.from.address.domain());
        format!("<{id}@{domain}>")
    }

    /// The domain of the Message-IDs made here, when one is configured.
    pub fn message_id_domain(&self) -> Option<&str> {
        self.settings.message_id_domain.as_deref()
    }

    /// Records the key as in progress, or says what to answer instead.
    async fn begin_idempotent(
        &self,
        i: &Idempotency,
        fence: IdempotencyFence,
    ) -> Result<Option<AcceptOutcome>, ServiceError> {
        let now = self.now();
        let ttl = chrono::Duration::from_std(self.settings.idempotency_ttl)
            .unwrap_or(chrono::Duration::hours(24));
        let window = IdempotencyWindow {
            now,
            stale_before: now - IN_PROGRESS_TIMEOUT,
            expired_before: now - ttl,
        };
        match self
            .store
            .begin_idempotent_request(&i.scope, &i.fingerprint, &window, fence)
            .await?
        {
            IdempotencyBegin::Started => Ok(None),
            IdempotencyBegin::Replay { status, body } => {
                Ok(Some(AcceptOutcome::Replay { status, body }))
            }
            IdempotencyBegin::Mismatch => Err(ServiceError::IdempotencyMismatch),
            IdempotencyBegin::InProgress => Err(ServiceError::IdempotencyInProgress),
        }
    }
}
