//! Sending rates: a fleet-wide limit and per-recipient-domain limits, as a
//! relay's quota demands (SES allows 14 messages a second, say).
//!
//! Limits are kept as GCRA buckets (the generic cell rate algorithm, as
//! in `redis-cell` or Stripe's limiter): each bucket remembers the
//! theoretical arrival time of its next send. Instead of refusing, a
//! limiter *reserves* the earliest slot where every bucket of an email has
//! room, so each email is turned away at most once: a worker waits for a
//! slot that is near, and defers the email (without an attempt) to a slot
//! that is far; when the email comes back, its reservation is still there.

use crate::email::NewEmail;
use crate::ids::EmailId;
use crate::queue::QueueError;
use async_trait::async_trait;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// At most one send every `interval`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub interval: Duration,
}

impl RateLimit {
    pub fn per_second(&self) -> f64 {
        1.0 / self.interval.as_secs_f64()
    }
}

/// `50/s`, `3000/min`, `100000/h` (a bare number is per second).
impl FromStr for RateLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, per) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
        let seconds = match per.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            other => return Err(format!("`{other}` is not a unit: use /s, /min or /h")),
        };
        let count: f64 = count
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a rate such as 50/s"))?;
        if !(count > 0.0 && count.is_finite()) {
            return Err(format!("`{s}` must allow more than 0 sends"));
        }
        Ok(Self {
            interval: Duration::from_secs_f64(seconds / count),
        })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}/s", self.per_second())
    }
}

/// Every limit that applies to sending.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RateLimits {
    /// For all emails of the fleet.
    pub global: Option<RateLimit>,
    /// By recipient domain, lowercase.
    pub domains: Vec<(String, RateLimit)>,
}

impl RateLimits {
    /// Reads `gmail.com=20/s,yahoo.com=10/s` as domain limits.
    pub fn parse_domains(s: &str) -> Result<Vec<(String, RateLimit)>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (domain, rate) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("`{pair}` is not domain=rate, e.g. gmail.com=20/s"))?;
                let domain = domain.trim().to_ascii_lowercase();
                if domain.is_empty() || domain.contains(['@', ' ']) {
                    return Err(format!("`{domain}` is not a domain"));
                }
                Ok((domain, rate.parse()?))
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.global.is_none() && self.domains.is_empty()
    }

    /// The buckets an email takes a slot from: the global one, and one per
    /// limited domain among its recipients (once per domain).
    pub fn buckets_for(&self, email: &NewEmail) -> Vec<Bucket> {
        let mut buckets: Vec<Bucket> = self
            .global
            .map(|limit| Bucket {
                name: "global".into(),
                limit,
                kind: BucketKind::Global,
            })
            .into_iter()
            .collect();
        let domains: BTreeSet<String> = email
            .recipients()
            .map(|m| m.address.domain().to_ascii_lowercase())
            .collect();
        for (domain, limit) in &self.domains {
            if domains.contains(domain) {
                buckets.push(Bucket {
                    name: format!("domain:{domain}"),
                    limit: *limit,
                    kind: BucketKind::Domain,
                });
            }
        }
        buckets
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketKind {
    Global,
    Domain,
}

/// One limit an email counts against.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub name: String,
    pub limit: RateLimit,
    pub kind: BucketKind,
}

/// A slot for one email.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// How long until the email may be sent.
    pub wait: Duration,
    /// Which bucket set the time (an index into the buckets), if any did.
    pub binding: Option<usize>,
}

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Reserves the earliest slot where every bucket has room for `email`,
    /// or returns the reservation it already holds. A reservation within
    /// `horizon` is used up by this call; a later one is kept for when the
    /// email comes back.
    async fn reserve(
        &self,
        email: EmailId,
        buckets: &[Bucket],
        horizon: Duration,
    ) -> Result<Reservation, QueueError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_their_units() {
        let r: RateLimit = "50/s".parse().unwrap();
        assert_eq!(r.interval, Duration::from_millis(20));
        let r: RateLimit = "3000/min".parse().unwrap();
        assert_eq!(r.interval, Duration::from_millis(20));
        let r: RateLimit = "14".parse().unwrap();
        assert!((r.per_second() - 14.0).abs() < 1e-6);
        assert!("0/s".parse::<RateLimit>().is_err());
        assert!("ten/s".parse::<RateLimit>().is_err());
        assert!("5/day".parse::<RateLimit>().is_err());
    }

    #[test]
    fn domain_limits_parse_and_apply_once_per_domain() {
        let domains = RateLimits::parse_domains("Gmail.com=20/s, yahoo.com=10/s").unwrap();
        assert_eq!(domains[0].0, "gmail.com");
        assert!(RateLimits::parse_domains("gmail.com").is_err());
        let limits = RateLimits {
            global: Some("50/s".parse().unwrap()),
            domains,
        };
        let mut email =
            crate::email::bare_email("app@acme.test", &["a@gmail.com", "b@GMAIL.com", "c@x.io"]);
        let names: Vec<String> = limits
            .buckets_for(&email)
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, ["global", "domain:gmail.com"]);
        email.to.truncate(0);
        assert_eq!(limits.buckets_for(&email).len(), 1);
    }
}
