//! When the maintenance leader checks a domain's records again.
//!
//! A verified domain is checked daily, so that a removed record is
//! noticed. An unverified one is checked with backoff for three days after
//! a check was asked for (as Resend does), then left alone until asked again.

use super::{Domain, VerificationStatus};
use chrono::{DateTime, Duration, Utc};

/// How long an unverified domain keeps being checked after it was asked for.
pub const CHECK_WINDOW: Duration = Duration::hours(72);

/// The next check of `domain`, checked at `now`; `None` for none.
pub fn next_check_after(domain: &Domain, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if domain.status == VerificationStatus::Verified {
        return Some(now + Duration::hours(24));
    }
    let asked = domain.verify_requested_at.unwrap_or(domain.created_at);
    let waited = now - asked;
    if waited >= CHECK_WINDOW {
        return None;
    }
    // Half the time waited so far, between a minute and an hour: frequent
    // while someone is likely editing their zone, rare after.
    // Whole seconds: a time finer than the stores keep would never be due
    // at the time read back.
    let delay = Duration::seconds((waited / 2).num_seconds())
        .clamp(Duration::minutes(1), Duration::hours(1));
    Some(now + delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domains::tests_support::domain;

    #[test]
    fn unverified_domains_back_off_and_stop_after_the_window() {
        let mut d = domain();
        let asked = d.created_at;
        d.verify_requested_at = Some(asked);
        d.status = VerificationStatus::Failed;
        assert_eq!(
            next_check_after(&d, asked),
            Some(asked + Duration::minutes(1))
        );
        let later = asked + Duration::hours(1);
        assert_eq!(
            next_check_after(&d, later),
            Some(later + Duration::minutes(30))
        );
        let much_later = asked + Duration::hours(30);
        assert_eq!(
            next_check_after(&d, much_later),
            Some(much_later + Duration::hours(1))
        );
        assert_eq!(next_check_after(&d, asked + CHECK_WINDOW), None);
    }

    #[test]
    fn verified_domains_are_checked_daily() {
        let mut d = domain();
        d.status = VerificationStatus::Verified;
        let now = d.created_at + Duration::days(10);
        assert_eq!(next_check_after(&d, now), Some(now + Duration::hours(24)));
    }
}
