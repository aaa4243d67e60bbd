//! The delivery side of mailqueue.
//!
//! A dispatcher takes due ids from the [`DispatchQueue`], claims them in the
//! store with a lease (one statement, no lock kept), and starts one send per
//! claimed email, never more than `concurrency` at once. Each send ends in
//! an [`AttemptOutcome`] that the recorder writes in batches; retries go
//! back into the queue only after their outcome is committed. A rescuer
//! returns emails whose lease expired (their worker died), and a reconciler
//! rebuilds the queue from the store, so nothing depends on the queue
//! remembering anything.
//!
//! [`DispatchQueue`]: mailqueue_core::queue::DispatchQueue
//! [`AttemptOutcome`]: mailqueue_core::store::AttemptOutcome

mod admission;
mod dispatcher;
pub use dispatcher::UNRECORDED_PER_SLOT;
mod lease_book;
mod maintenance;
mod recorder;
mod retention;
mod round;
mod send;
mod signing;
mod sources;
mod step;
mod suppressions;

pub use signing::{SenderSetup, SendingDomains};
pub use sources::{OsJitter, TokioClock};
pub use step::{Step, StepError};

use mailqueue_core::queue::DispatchQueue;
use mailqueue_core::random::Jitter;
use mailqueue_core::rate::{RateLimiter, RateLimits};
use mailqueue_core::retention::RetentionPolicy;
use mailqueue_core::store::Store;
use mailqueue_core::transport::Transport;
use mailqueue_core::{Clock, RetryPolicy};
use mailqueue_metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// How the workers behave.
#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// Most sends in flight at once.
    pub concurrency: usize,
    /// How long a claim is valid before another worker may take it over;
    /// renewed while this process holds it. Must exceed `send_timeout`.
    pub lease: Duration,
    /// Names this process in leases (`host:pid:…`).
    pub holder: String,
    /// Upper bound on one send, including connecting. A send starts only
    /// while its lease has at least this much time left.
    pub send_timeout: Duration,
    /// How long, at shutdown, outcomes may wait for an unavailable store.
    pub shutdown_grace: Duration,
    pub rescue_interval: Duration,
    pub reconcile_interval: Duration,
    /// How long the maintenance lease lasts: the longest the fleet goes
    /// without a maintainer when the holder dies.
    pub maintenance_lease: Duration,
    /// How long idempotency keys are kept (the maintainer purges older ones).
    pub idempotency_ttl: Duration,
    /// How long finished emails and their contents are kept.
    pub retention: RetentionPolicy,
    /// How often the maintainer looks for emails past retention.
    pub retention_interval: Duration,
    /// Sending rates of the fleet and per recipient domain.
    pub rate_limits: RateLimits,
    /// Longest idle wait before looking at the queue again.
    pub idle_poll: Duration,
    /// With a bounce domain, the return address each email is sent from,
    /// so that late bounces and complaints come back to mailqueue.
    pub return_paths: Option<mailqueue_core::return_path::ReturnPaths>,
}

/// Everything the workers need, passed in explicitly.
#[derive(Clone)]
pub struct Delivery {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn DispatchQueue>,
    pub transport: Arc<dyn Transport>,
    /// Keeps the rate limits; needed only when `settings.rate_limits` has any.
    pub limiter: Option<Arc<dyn RateLimiter>>,
    pub clock: Arc<dyn Clock>,
    /// Spreads the retries ([`OsJitter`] in production).
    pub jitter: Arc<dyn Jitter>,
    pub policy: RetryPolicy,
    pub metrics: Arc<Metrics>,
    pub settings: DeliverySettings,
    /// The sending domains: DKIM signers, return paths, TLS policy.
    pub senders: Option<Arc<SendingDomains>>,
    /// What else the maintenance leader runs (domain checks).
    pub leader_tasks: Vec<Arc<dyn mailqueue_core::upkeep::LeaderTask>>,
}

/// Running workers; [`DeliveryHandle::shutdown`] stops them cleanly.
pub struct DeliveryHandle {
    stop: watch::Sender<bool>,
    dispatcher: JoinHandle<JoinSet<()>>,
    recorder: JoinHandle<()>,
    maintenance: JoinHandle<()>,
    retention: JoinHandle<()>,
    keeper: JoinHandle<()>,
    book: Arc<lease_book::LeaseBook>,
    delivery: Arc<Delivery>,
}

impl Delivery {
    /// Starts the dispatcher, the recorder, the lease keeper, the
    /// maintenance loop and the retention task it leads.
    pub fn start(self) -> DeliveryHandle {
        let delivery = Arc::new(self);
        let (stop, stopped) = watch::channel(false);
        let (outcomes, outcome_rx) = mpsc::channel(delivery.settings.concurrency.max(1) * 4);
        let slots = Arc::new(Semaphore::new(delivery.settings.concurrency.max(1)));
        let book = Arc::new(lease_book::LeaseBook::default());
        let recorder = tokio::spawn(recorder::run(
            delivery.clone(),
            outcome_rx,
            stopped.clone(),
            delivery.settings.shutdown_grace,
        ));
        let dispatcher = tokio::spawn(dispatcher::run(
            delivery.clone(),
            book.clone(),
            stopped.clone(),
            outcomes,
            slots,
        ));
        let keeper = tokio::spawn(lease_book::keep_leases(
            delivery.clone(),
            book.clone(),
            stopped.clone(),
        ));
        let (leading_tx, leading) = watch::channel(false);
        let retention = tokio::spawn(retention::run(
            delivery.clone(),
            book.clone(),
            leading,
            stopped.clone(),
        ));
        let maintenance = tokio::spawn(maintenance::run(delivery.clone(), leading_tx, stopped));
        DeliveryHandle {
            stop,
            dispatcher,
            recorder,
            maintenance,
            retention,
            keeper,
            book,
            delivery,
        }
    }
}

impl DeliveryHandle {
    /// Stops claiming, releases the claims never started (unattempted),
    /// lets sends in flight finish for up to `grace`, writes their outcomes,
    /// then returns the emails of sends cut short to the queue.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut sends = match self.dispatcher.await {
            Ok(sends) => sends,
            Err(e) => {
                tracing::error!(error = %e, "the dispatcher ended abnormally");
                JoinSet::new()
            }
        };
        let _ = self.keeper.await;
        let d = &self.delivery;
        let unstarted = self.book.unstarted();
        let now = d.clock.now();
        lease_book::defer(
            d,
            &self.book,
            &unstarted,
            now,
            mailqueue_core::store::DeferReason::Shutdown,
        )
        .await;
        while sends.try_join_next().is_some() {}
        let in_flight = self.book.in_flight();
        if in_flight > 0 {
            tracing::info!(in_flight, "waiting for sends in flight to finish");
        }
        let drained =
            tokio::time::timeout(grace, async { while sends.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                remaining = sends.len(),
                "sends did not finish within the grace period; stopping them"
            );
            sends.abort_all();
            while sends.join_next().await.is_some() {}
        }
        let _ = self.recorder.await;
        let _ = self.maintenance.await;
        let _ = self.retention.await;
        match d
            .store
            .release_leases(&d.settings.holder, d.clock.now())
            .await
        {
            Ok(released) if !released.requeued.is_empty() => {
                d.metrics.count_events(&released.events);
                tracing::info!(
                    count = released.requeued.len(),
                    "returned interrupted emails to the queue"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not return interrupted emails; their leases will expire")
            }
        }
    }
}
