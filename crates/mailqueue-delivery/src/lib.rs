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

mod dispatcher;
mod maintenance;
mod recorder;
mod send;

use mailqueue_core::queue::DispatchQueue;
use mailqueue_core::store::EmailStore;
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
    /// How long a claim is valid; a send taking longer may be repeated.
    pub lease: Duration,
    /// Names this process in leases (`host:pid:…`).
    pub holder: String,
    /// Upper bound on one send, including connecting.
    pub send_timeout: Duration,
    pub rescue_interval: Duration,
    pub reconcile_interval: Duration,
    /// Longest idle wait before looking at the queue again.
    pub idle_poll: Duration,
}

/// Everything the workers need, passed in explicitly.
#[derive(Clone)]
pub struct Delivery {
    pub store: Arc<dyn EmailStore>,
    pub queue: Arc<dyn DispatchQueue>,
    pub transport: Arc<dyn Transport>,
    pub clock: Arc<dyn Clock>,
    pub policy: RetryPolicy,
    pub metrics: Arc<Metrics>,
    pub settings: DeliverySettings,
}

/// Running workers; [`DeliveryHandle::shutdown`] stops them cleanly.
pub struct DeliveryHandle {
    stop: watch::Sender<bool>,
    dispatcher: JoinHandle<JoinSet<()>>,
    recorder: JoinHandle<()>,
    maintenance: JoinHandle<()>,
    delivery: Arc<Delivery>,
}

impl Delivery {
    /// Starts the dispatcher, the recorder and the maintenance loop.
    pub fn start(self) -> DeliveryHandle {
        let delivery = Arc::new(self);
        let (stop, stopped) = watch::channel(false);
        let (outcomes, outcome_rx) = mpsc::channel(delivery.settings.concurrency.max(1) * 4);
        let slots = Arc::new(Semaphore::new(delivery.settings.concurrency.max(1)));
        let recorder = tokio::spawn(recorder::run(delivery.clone(), outcome_rx));
        let dispatcher = tokio::spawn(dispatcher::run(
            delivery.clone(),
            stopped.clone(),
            outcomes,
            slots,
        ));
        let maintenance = tokio::spawn(maintenance::run(delivery.clone(), stopped));
        DeliveryHandle {
            stop,
            dispatcher,
            recorder,
            maintenance,
            delivery,
        }
    }
}

impl DeliveryHandle {
    /// Stops claiming, lets sends in flight finish for up to `grace`, writes
    /// their outcomes, then returns the emails of sends cut short to the queue.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        let mut sends = match self.dispatcher.await {
            Ok(sends) => sends,
            Err(e) => {
                tracing::error!(error = %e, "the dispatcher ended abnormally");
                JoinSet::new()
            }
        };
        let in_flight = sends.len();
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
        let d = &self.delivery;
        match d
            .store
            .release_leases(&d.settings.holder, d.clock.now())
            .await
        {
            Ok(released) if !released.is_empty() => {
                tracing::info!(
                    count = released.len(),
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

/// A uniform sample in `[0, 1)` for retry jitter.
fn jitter_sample() -> f64 {
    getrandom::u64()
        .map(|r| (r >> 11) as f64 / (1u64 << 53) as f64)
        .unwrap_or(0.5)
}
