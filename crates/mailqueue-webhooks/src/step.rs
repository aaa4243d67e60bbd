//! One round of webhook delivery by hand: what the dispatcher does
//! continuously, made deterministic for tests and tools.

use crate::dispatcher::{account, claim_terms, send_timed};
use crate::{send, Webhooks, CLAIM_AHEAD};
use mailqueue_core::store::StoreError;
use mailqueue_core::webhooks::DeliveryReport;

/// Why a round stopped short.
#[derive(Debug)]
pub enum StepError {
    /// The HTTP client could not be built (its TLS roots, say).
    Client(String),
    Store(StoreError),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Client(e) => write!(f, "the webhook client cannot be built: {e}"),
            StepError::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StepError {}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::Store(e)
    }
}

impl Webhooks {
    /// Claims up to `max` due deliveries (as many of one webhook as a
    /// process may hold), sends them one after another, records their
    /// reports and returns them, leaving no task behind.
    pub async fn step(&self, max: u32) -> Result<Vec<DeliveryReport>, StepError> {
        let client = send::client(&self.settings).map_err(StepError::Client)?;
        let allowance = self.settings.per_webhook.max(1) * CLAIM_AHEAD;
        let terms = claim_terms(self, max, allowance, Vec::new());
        let claimed = self.store.claim_webhook_deliveries(&terms).await?;
        let mut reports = Vec::with_capacity(claimed.len());
        for c in &claimed {
            reports.push(send_timed(self, &client, c).await);
        }
        let (holder, disable) = (&self.settings.holder, &self.settings.disable);
        self.store
            .record_webhook_deliveries(holder, &reports, disable)
            .await?;
        account(self, &reports);
        Ok(reports)
    }
}
