//! The rate limiter of one process: the buckets and reservations in a map.

use async_trait::async_trait;
use mailqueue_core::queue::QueueError;
use mailqueue_core::rate::{Bucket, RateLimiter, Reservation};
use mailqueue_core::EmailId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Default)]
struct State {
    /// Theoretical arrival time of each bucket's next send.
    tat: HashMap<String, Instant>,
    /// Slots reserved beyond the horizon, by email.
    reserved: HashMap<EmailId, Instant>,
}

pub struct InProcessRateLimiter {
    state: Mutex<State>,
}

impl Default for InProcessRateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessRateLimiter {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
        }
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn reserve(
        &self,
        email: EmailId,
        buckets: &[Bucket],
        horizon: Duration,
    ) -> Result<Reservation, QueueError> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&at) = state.reserved.get(&email) {
            if at <= now + horizon {
                state.reserved.remove(&email);
            }
            return Ok(Reservation {
                wait: at.saturating_duration_since(now),
                binding: None,
            });
        }
        // Each bucket gives its own earliest slot; the email goes at the
        // latest of them. (Booking every bucket at that latest time would
        // leave unused holes in the others.)
        let mut at = now;
        let mut binding = None;
        for (i, b) in buckets.iter().enumerate() {
            let slot = state.tat.get(&b.name).copied().unwrap_or(now).max(now);
            state.tat.insert(b.name.clone(), slot + b.limit.interval);
            if slot > at {
                at = slot;
                binding = Some(i);
            }
        }
        if at > now + horizon {
            state.reserved.insert(email, at);
        }
        // Reservations of emails that never came back are dropped in time.
        let stale = now.checked_sub(Duration::from_secs(600)).unwrap_or(now);
        state.reserved.retain(|_, at| *at > stale);
        Ok(Reservation {
            wait: at.saturating_duration_since(now),
            binding,
        })
    }
}
