//! What a listener does with what its clients send: the submission port
//! (AUTH with an API key, any recipient, the accept use case) or the
//! bounce domain's MX (no AUTH, return addresses only, reports applied).
//! The session speaks the protocol; its intake decides.

use crate::auth::{AuthFailures, Credentials};
use crate::reply::Reply;
use crate::settings::SessionSettings;
use async_trait::async_trait;
use mailqueue_core::store::ApiKeyRecord;
use mailqueue_core::{EmailAddress, Mailbox};
use std::net::IpAddr;

/// A transaction's envelope as the session took it.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// `MAIL FROM`; `None` for the null sender (`<>`).
    pub from: Option<EmailAddress>,
    /// Each `RCPT TO` once.
    pub to: Vec<Mailbox>,
}

#[async_trait]
pub trait Intake: Send + Sync + 'static {
    fn settings(&self) -> &SessionSettings;

    /// The failed authentications per client address, when AUTH is
    /// offered (and required before MAIL); `None` when it is not.
    fn auth(&self) -> Option<&AuthFailures>;

    /// The key the credentials name; `Ok(None)` when they name none, the
    /// reply to give when that cannot be known now.
    async fn authenticate(&self, credentials: &Credentials) -> Result<Option<ApiKeyRecord>, Reply>;

    /// `MAIL FROM`'s address as taken (by the key the session
    /// authenticated with, if any), or the refusal.
    async fn sender(
        &self,
        from: &str,
        key: Option<&ApiKeyRecord>,
    ) -> Result<Option<EmailAddress>, Reply>;

    /// A `RCPT TO` as taken, or the refusal.
    fn recipient(&self, to: &str) -> Result<Mailbox, Reply>;

    /// The reply to a message read whole: a 250 only once it is kept.
    async fn deliver(
        &self,
        peer: IpAddr,
        key: Option<ApiKeyRecord>,
        envelope: Envelope,
        message: Vec<u8>,
    ) -> Reply;
}
