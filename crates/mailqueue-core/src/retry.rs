//! When a transient failure is tried again, and when we give up.
//!
//! The default follows mature MTAs: the first retry after one minute, the
//! delay doubling up to one hour between tries, each delay spread by ±10%
//! jitter so a relay outage does not produce a thundering herd, and a final
//! attempt 48 hours after the first one.

use chrono::{DateTime, Duration, Utc};

#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    pub initial_delay: Duration,
    pub multiplier: f64,
    pub max_delay: Duration,
    /// Measured from the first attempt: no attempt starts after this.
    pub max_age: Duration,
    /// Fraction of each delay added or removed at random (0.1 = ±10%).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::seconds(60),
            multiplier: 2.0,
            max_delay: Duration::hours(1),
            max_age: Duration::hours(48),
            jitter: 0.1,
        }
    }
}

/// What to do after a transient failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    RetryAt(DateTime<Utc>),
    GiveUp,
}

impl RetryPolicy {
    /// The delay before retry number `attempts_made` (1 after the first failure),
    /// without jitter.
    pub fn base_delay(&self, attempts_made: u32) -> Duration {
        let exponent = attempts_made.saturating_sub(1).min(64) as i32;
        let ms = self.initial_delay.num_milliseconds() as f64 * self.multiplier.powi(exponent);
        let capped = ms.min(self.max_delay.num_milliseconds() as f64);
        Duration::milliseconds(capped.max(0.0) as i64)
    }

    /// Decides after `attempts_made` attempts, the first of which started at
    /// `first_attempt_at`. `jitter_sample` is a uniform number in `[0, 1)`.
    pub fn decide(
        &self,
        attempts_made: u32,
        first_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter_sample: f64,
    ) -> RetryDecision {
        let deadline = first_attempt_at + self.max_age;
        if now >= deadline {
            return RetryDecision::GiveUp;
        }
        let base = self.base_delay(attempts_made).num_milliseconds() as f64;
        let spread = 1.0 + self.jitter * (2.0 * jitter_sample.clamp(0.0, 1.0) - 1.0);
        let next = now + Duration::milliseconds((base * spread).round() as i64);
        RetryDecision::RetryAt(next.min(deadline))
    }

    /// The latest first attempt whose email may still be retried at `now`.
    pub fn give_up_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn delays_double_from_one_minute_and_cap_at_one_hour() {
        let p = RetryPolicy::default();
        let mins: Vec<i64> = (1..=9).map(|n| p.base_delay(n).num_minutes()).collect();
        assert_eq!(mins, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let p = RetryPolicy::default();
        for sample in [0.0, 0.25, 0.5, 0.999] {
            let RetryDecision::RetryAt(at) = p.decide(1, t0(), t0(), sample) else {
                panic!("expected a retry");
            };
            let secs = (at - t0()).num_milliseconds() as f64 / 1000.0;
            assert!((54.0..=66.0).contains(&secs), "{secs}");
        }
    }

    #[test]
    fn gives_up_after_max_age_with_a_last_attempt_at_the_deadline() {
        let p = RetryPolicy::default();
        let late = t0() + Duration::hours(47) + Duration::minutes(30);
        assert_eq!(
            p.decide(50, t0(), late, 0.5),
            RetryDecision::RetryAt(t0() + Duration::hours(48))
        );
        assert_eq!(
            p.decide(51, t0(), t0() + Duration::hours(48), 0.5),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn the_default_schedule_makes_about_fifty_attempts_in_48_hours() {
        let p = RetryPolicy::default();
        let mut now = t0();
        let mut attempts = 1;
        while let RetryDecision::RetryAt(next) = p.decide(attempts, t0(), now, 0.5) {
            now = next;
            attempts += 1;
        }
        assert!((50..=56).contains(&attempts), "{attempts}");
        assert_eq!(now, t0() + Duration::hours(48));
    }
}
