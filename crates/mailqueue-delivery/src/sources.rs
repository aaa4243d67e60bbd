//! The workers' real sources of time and chance.

use chrono::{DateTime, Utc};
use mailqueue_core::random::Jitter;
use mailqueue_core::Clock;

/// The operating system's random source.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsJitter;

impl Jitter for OsJitter {
    fn sample(&self) -> f64 {
        getrandom::u64()
            .map(|r| (r >> 11) as f64 / (1u64 << 53) as f64)
            .unwrap_or(0.5)
    }
}

/// Wall time that moves with tokio's clock: under a paused runtime
/// (`tokio::time::pause`) it stands still until the test advances it, and
/// the workers' sleeps and their "now" then agree.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    start: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at `start`, now.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            start,
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now() - self.started;
        self.start + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }
}
