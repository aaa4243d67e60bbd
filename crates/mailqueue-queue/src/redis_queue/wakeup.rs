//! Waking idle workers when work is enqueued: one pub/sub subscription per
//! process, feeding a [`Notify`]. A message that arrives while the worker
//! is busy leaves a permit, so the next wait returns at once: no wake-up is
//! lost. While the subscription is down (Redis restarting), waits simply
//! time out, and after every reconnection the worker is woken once, since
//! messages published meanwhile were missed.

use futures_util::StreamExt;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Notify;

pub struct Wakeup {
    work: Notify,
}

impl Wakeup {
    /// Subscribes in the background for as long as the returned value lives.
    pub fn listen(client: redis::Client, channel: String) -> Arc<Self> {
        let wakeup = Arc::new(Self {
            work: Notify::new(),
        });
        tokio::spawn(subscribe(client, channel, Arc::downgrade(&wakeup)));
        wakeup
    }

    pub async fn wait(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.work.notified()).await;
    }
}

async fn subscribe(client: redis::Client, channel: String, wakeup: Weak<Wakeup>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.subscribe(&channel).await.is_ok() {
                    backoff = Duration::from_millis(100);
                    let Some(w) = wakeup.upgrade() else { return };
                    w.work.notify_one();
                    drop(w);
                    let mut messages = pubsub.on_message();
                    while messages.next().await.is_some() {
                        let Some(w) = wakeup.upgrade() else { return };
                        w.work.notify_one();
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot subscribe to the work channel yet"),
        }
        if wakeup.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
