//! What the submission server needs of the rest of mailqueue: API keys to
//! authenticate with, and the accept use case (`EmailService::accept`), so
//! that idempotency, suppressions, events and webhooks apply as they do
//! over HTTP. Its answers are SMTP replies.

use crate::auth::{AuthFailures, Credentials, USER};
use crate::intake::{Envelope, Intake};
use crate::message::{self, PreparedMessage};
use crate::reply::Reply;
use crate::settings::SessionSettings;
use async_trait::async_trait;
use mailqueue_core::api_key::TokenHash;
use mailqueue_core::store::{ApiKeyReads, ApiKeyRecord, IdempotencyScope, StoreError};
use mailqueue_core::{ApiKeyId, EmailAddress, Mailbox};
use mailqueue_service::{AcceptOutcome, EmailService, Idempotency, ServiceError};
use std::net::IpAddr;
use std::sync::Arc;

/// The submission server's shared state: one per listener set.
pub struct Submission {
    pub service: Arc<EmailService>,
    pub keys: Arc<dyn ApiKeyReads>,
    pub settings: SessionSettings,
    pub failures: AuthFailures,
}

impl Submission {
    pub fn new(
        service: Arc<EmailService>,
        keys: Arc<dyn ApiKeyReads>,
        settings: SessionSettings,
    ) -> Self {
        Self {
            service,
            keys,
            settings,
            failures: AuthFailures::default(),
        }
    }

    /// Accepts the message for `key`; `250` only once it is committed.
    async fn submit(&self, key: ApiKeyId, prepared: PreparedMessage) -> Reply {
        let idempotency = prepared.idempotency_key.map(|k| Idempotency {
            scope: IdempotencyScope {
                api_key_id: key,
                key: k,
            },
            fingerprint: prepared.fingerprint,
        });
        // The answer the HTTP API gives, so that a key used on both front
        // ends replays the same email.
        let outcome = self
            .service
            .accept(key, vec![prepared.email], idempotency, |accepted| {
                let body = serde_json::json!({"id": accepted[0].id.to_string(), "status": accepted[0].status});
                (202, body.to_string())
            })
            .await;
        match outcome {
            Ok(AcceptOutcome::Committed { body }) => queued(&body),
            Ok(AcceptOutcome::Replay { status, body }) if (200..300).contains(&status) => {
                queued(&body)
            }
            Ok(AcceptOutcome::Replay { status, .. }) => Reply::new(
                554,
                "5.7.0",
                format!("the idempotency key was answered {status} before"),
            ),
            Err(e) => refusal(&e),
        }
    }
}

#[async_trait]
impl Intake for Submission {
    fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    fn auth(&self) -> Option<&AuthFailures> {
        Some(&self.failures)
    }

    /// The active API key the credentials name; `Ok(None)` when they name
    /// none (a wrong user, an unknown or revoked key), the reply to give
    /// when the keys cannot be read.
    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<ApiKeyRecord>, Reply> {
        if credentials.user != USER || credentials.password.is_empty() {
            return Ok(None);
        }
        match self
            .keys
            .find_api_key(&TokenHash::of(&credentials.password))
            .await
        {
            Ok(key) => Ok(key.filter(|k| k.revoked_at.is_none())),
            Err(e) => {
                tracing::warn!(error = %e, "the API keys cannot be read to authenticate an SMTP client");
                Err(Reply::new(
                    454,
                    "4.7.0",
                    "temporary authentication failure; try again later",
                ))
            }
        }
    }

    /// A submitted message needs a sender: it is where bounces go. It
    /// must be one the key may send from (its domain, a verified domain
    /// when the server requires one).
    async fn sender(
        &self,
        from: &str,
        key: Option<&ApiKeyRecord>,
    ) -> Result<Option<EmailAddress>, Reply> {
        if from.is_empty() {
            return Err(Reply::new(
                553,
                "5.1.7",
                "a message submitted here needs a sender address",
            ));
        }
        let address = EmailAddress::parse(from).map_err(|e| {
            Reply::new(
                553,
                "5.1.7",
                format!("the sender address is not valid: {e}"),
            )
        })?;
        self.check_sender(&address, key).await?;
        Ok(Some(address))
    }

    fn recipient(&self, to: &str) -> Result<Mailbox, Reply> {
        EmailAddress::parse(to)
            .map(|address| Mailbox {
                name: None,
                address,
            })
            .map_err(|e| {
                Reply::new(
                    553,
                    "5.1.3",
                    format!("the recipient address is not valid: {e}"),
                )
            })
    }

    async fn deliver(
        &self,
        _peer: IpAddr,
        key: Option<ApiKeyRecord>,
        envelope: Envelope,
        message: Vec<u8>,
    ) -> Reply {
        let (Some(key), Some(from)) = (key, envelope.from) else {
            return Reply::new(530, "5.7.0", "Authentication required");
        };
        let envelope = message::Envelope {
            from,
            to: envelope.to,
        };
        match message::prepare(
            &message,
            envelope,
            self.service.now(),
            self.service.message_id_domain(),
        ) {
            Err(e) => Reply::new(554, "5.6.0", e.to_string()),
            Ok(prepared) => {
                // The `From` a recipient sees is held to the same rules.
                if let Err(reply) = self
                    .check_sender(&prepared.email.from.address, Some(&key))
                    .await
                {
                    return reply;
                }
                self.submit(key.id, prepared).await
            }
        }
    }
}

impl Submission {
    /// 550 5.7.1 for a sender the key may not use; 451 when the domains
    /// cannot be read now.
    async fn check_sender(
        &self,
        sender: &EmailAddress,
        key: Option<&ApiKeyRecord>,
    ) -> Result<(), Reply> {
        match self
            .service
            .check_senders(key.and_then(|k| k.domain_id), &[sender])
            .await
        {
            Ok(()) => Ok(()),
            Err(ServiceError::SenderRefused(why)) => Err(Reply::new(550, "5.7.1", why.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "the sending domains cannot be read to check a sender");
                Err(Reply::new(
                    451,
                    "4.3.0",
                    "the sender cannot be checked now; try again later",
                ))
            }
        }
    }
}

/// `250 2.0.0 queued as <id>`, the id read from the recorded answer.
fn queued(body: &str) -> Reply {
    let id = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string));
    match id {
        Some(id) => Reply::new(250, "2.0.0", format!("queued as {id}")),
        None => Reply::new(250, "2.0.0", "queued"),
    }
}

/// The reply to a failed accept: nothing was stored. Whatever the store
/// may get over is a 4xx, so that the client tries again.
fn refusal(e: &ServiceError) -> Reply {
    match e {
        ServiceError::Store(StoreError::Full(_)) => {
            Reply::new(452, "4.3.1", "insufficient system storage; try again later")
        }
        ServiceError::Store(StoreError::Rejected(why)) => {
            Reply::new(554, "5.3.0", format!("the message cannot be stored: {why}"))
        }
        ServiceError::IdempotencyMismatch => Reply::new(
            554,
            "5.7.0",
            "the Resend-Idempotency-Key was used with a different message",
        ),
        ServiceError::IdempotencyInProgress => Reply::new(
            451,
            "4.3.0",
            "a message with this Resend-Idempotency-Key is still being accepted; try again later",
        ),
        e => {
            tracing::warn!(error = %e, "a message submitted over SMTP could not be stored");
            Reply::new(
                451,
                "4.3.0",
                "the message could not be stored; try again later",
            )
        }
    }
}
