//! Holding one of the fleet's relay connection slots per open connection
//! (see `mailqueue_core::transport::ConnectionSlots`). A connection's slot
//! is a [`SlotGuard`]: dropping the connection gives the slot back, and a
//! background task renews every slot still held, a third of the time to
//! live at a time.

use mailqueue_core::delivery::{DeliveryError, FailureClass};
use mailqueue_core::transport::ConnectionSlots;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long a slot outlives its process.
const TTL: Duration = Duration::from_secs(30);
/// How long a dropped connection keeps its slot: a connection dropped
/// without QUIT is closed by the relay only once it sees the close.
const CLOSE_GRACE: Duration = Duration::from_millis(100);

pub struct FleetSlots {
    slots: Arc<dyn ConnectionSlots>,
    held: Mutex<HashSet<String>>,
    /// `host:pid:salt`, to name this process's connections.
    process: String,
    next: AtomicU64,
}

/// A slot held by one open connection; given back when dropped.
pub struct SlotGuard {
    holder: String,
    fleet: Arc<FleetSlots>,
}

impl FleetSlots {
    pub fn start(slots: Arc<dyn ConnectionSlots>, process: String) -> Arc<Self> {
        let fleet = Arc::new(Self {
            slots,
            held: Mutex::new(HashSet::new()),
            process,
            next: AtomicU64::new(1),
        });
        tokio::spawn(renew(Arc::downgrade(&fleet)));
        fleet
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection, or `None` when the fleet has none free.
    pub async fn try_take(self: &Arc<Self>) -> Result<Option<SlotGuard>, DeliveryError> {
        let holder = format!(
            "{}:conn-{}",
            self.process,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let taken =
            self.slots.try_take(&holder, TTL).await.map_err(|e| {
                DeliveryError::transient(FailureClass::Connection, None, e.to_string())
            })?;
        if !taken {
            return Ok(None);
        }
        self.held().insert(holder.clone());
        Ok(Some(SlotGuard {
            holder,
            fleet: self.clone(),
        }))
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.fleet.held().remove(&self.holder);
        let slots = self.fleet.slots.clone();
        let holder = std::mem::take(&mut self.holder);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep(CLOSE_GRACE).await;
                if let Err(e) = slots.give_back(&holder).await {
                    tracing::debug!(error = %e, "a connection slot lapses instead of being given back");
                }
            });
        }
    }
}

async fn renew(fleet: Weak<FleetSlots>) {
    loop {
        tokio::time::sleep(TTL / 3).await;
        let Some(fleet) = fleet.upgrade() else { return };
        let holders: Vec<String> = fleet.held().iter().cloned().collect();
        if let Err(e) = fleet.slots.renew(&holders, TTL).await {
            tracing::warn!(error = %e, "renewing relay connection slots failed");
        }
    }
}
