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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_only_with_tokio_time() {
        let start = DateTime::from_timestamp(1_000_000, 0).unwrap();
        let clock = TokioClock::starting_at(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), start + chrono::Duration::seconds(90));
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        assert_eq!(clock.now(), start + chrono::Duration::seconds(120));
    }

    #[test]
    fn os_jitter_samples_lie_in_the_unit_interval() {
        for _ in 0..1000 {
            let s = OsJitter.sample();
            assert!((0.0..1.0).contains(&s), "{s}");
        }
    }
}
