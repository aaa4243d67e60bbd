//! Webhook delivery: at least once, from the durable outbox.
//!
//! Events queue one delivery per subscribed webhook in the transaction
//! that writes them. A dispatcher claims due deliveries under a lease, a
//! few times as many as it sends at once (at most [`CLAIM_AHEAD`] times
//! `per_webhook` of one webhook held by the process, so a slow endpoint
//! cannot take every slot), POSTs each as Resend's payload signed
//! with Svix's headers (`send.rs`; at most `per_webhook` requests to one
//! webhook at once per process), and hands the reports to a recorder
//! that writes them in batches, fenced by holder and attempt. A worker
//! that dies leaves its leases to expire; the deliveries are claimed again
//! with the same `svix-id`. Connections go only to public addresses
//! (`resolver.rs`) unless configured otherwise.

mod dispatcher;
mod resolver;
mod send;
mod step;

pub use send::AttemptError;
pub use step::StepError;

use mailqueue_core::store::WebhookOutbox;
use mailqueue_core::webhooks::{DisablePolicy, RetrySchedule};
use mailqueue_core::Clock;
use mailqueue_metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the webhook senders behave.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Names this process in leases.
    pub holder: String,
    /// Most requests in flight in this process.
    pub concurrency: usize,
    /// Most requests to one webhook in flight at once in this process,
    /// which holds at most [`CLAIM_AHEAD`] times as many of its deliveries.
    pub per_webhook: u32,
    /// Longest one request may take, connecting included.
    pub timeout: Duration,
    pub schedule: RetrySchedule,
    pub disable: DisablePolicy,
    /// Whether endpoints may be reached at private addresses.
    pub allow_private: bool,
    /// How long an idle dispatcher waits before looking again.
    pub poll: Duration,
}

/// How many deliveries a process claims per request it may have in
/// flight, so requests follow one another without waiting for the store
/// (reports written, then the next claim).
pub const CLAIM_AHEAD: u32 = 4;

impl WebhookSettings {
    /// A claim's lease: the requests to the same webhook claimed before it
    /// (each bounded by the timeout), its own, and room to record it.
    fn lease(&self) -> Duration {
        self.timeout * (CLAIM_AHEAD + 1) + Duration::from_secs(10)
    }
}

/// Everything the webhook senders need, passed in explicitly.
#[derive(Clone)]
pub struct Webhooks {
    pub store: Arc<dyn WebhookOutbox>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub settings: WebhookSettings,
}

/// Running senders; [`WebhooksHandle::shutdown`] stops them.
pub struct WebhooksHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Webhooks {
    /// Starts the dispatcher and its recorder.
    pub fn start(self) -> Result<WebhooksHandle, String> {
        let client = send::client(&self.settings)?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(dispatcher::run(Arc::new(self), client, stopped));
        Ok(WebhooksHandle { stop, task })
    }
}

impl WebhooksHandle {
    /// Stops claiming, lets requests in flight finish (each is bounded by
    /// the timeout) and records them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the webhook dispatcher ended abnormally");
        }
    }
}
