//! When a failed delivery is tried again, and when an endpoint that keeps
//! failing is disabled.

use chrono::{DateTime, Duration, Utc};
use std::fmt;
use std::str::FromStr;

/// The delays between the attempts of one delivery; the first attempt is
/// immediate. Svix's (and so Resend's) schedule by default: 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 10 h, so eight attempts over about a day and
/// a quarter, then the delivery has failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(vec![
            Duration::seconds(5),
            Duration::minutes(5),
            Duration::minutes(30),
            Duration::hours(2),
            Duration::hours(5),
            Duration::hours(10),
            Duration::hours(10),
        ])
    }
}

impl RetrySchedule {
    /// The delay before the next attempt after `attempts` failed ones, or
    /// `None` when the delivery has run out of attempts.
    pub fn delay_after(&self, attempts: u32) -> Option<Duration> {
        let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
        self.0.get(index).copied()
    }
}

/// `5s,5m,30m,2h,5h,10h,10h`: durations in `ms`, `s`, `m`, `h` or `d`.
impl FromStr for RetrySchedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let delays = s
            .split(',')
            .map(|part| parse_duration(part.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(delays))
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|d| format!("{}ms", d.num_milliseconds()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    let split = raw
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{raw}` lacks a unit: use ms, s, m, h or d"))?;
    let (number, unit) = raw.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{raw}` does not start with a number"))?;
    if n > 1_000_000 {
        return Err(format!("`{raw}` is too long a delay"));
    }
    match unit {
        "ms" => Ok(Duration::milliseconds(n)),
        "s" => Ok(Duration::seconds(n)),
        "m" => Ok(Duration::minutes(n)),
        "h" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        other => Err(format!("`{other}` is not a unit: use ms, s, m, h or d")),
    }
}

/// An endpoint whose every delivery has failed for `after` (5 days by
/// default, as Svix) is disabled; its pending deliveries wait until it is
/// enabled again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisablePolicy {
    pub after: Duration,
}

impl Default for DisablePolicy {
    fn default() -> Self {
        Self {
            after: Duration::days(5),
        }
    }
}

impl DisablePolicy {
    /// Endpoints failing since this time or earlier are disabled at `now`.
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.after
    }

    pub fn applies(&self, failing_since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        failing_since.is_some_and(|since| since <= self.cutoff(now))
    }

    /// The `disabled_reason` the API shows.
    pub fn reason(&self) -> String {
        let hours = self.after.num_hours();
        let span = if hours >= 24 && hours % 24 == 0 {
            format!("{} days", hours / 24)
        } else if hours >= 1 {
            format!("{hours} hours")
        } else {
            format!("{} seconds", self.after.num_seconds())
        };
        format!(
            "every delivery failed for {span}; enable the webhook again once its endpoint answers"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_svix_s() {
        let s = RetrySchedule::default();
        assert_eq!(s, "5s,5m,30m,2h,5h,10h,10h".parse().unwrap());
        assert_eq!(s.delay_after(8), None, "eight attempts in all");
        assert!(s.delay_after(7).is_some());
        assert_eq!(s.delay_after(0), None);
        assert_eq!(s.delay_after(1), Some(Duration::seconds(5)));
        assert_eq!(s.delay_after(2), Some(Duration::minutes(5)));
        assert_eq!(s.delay_after(7), Some(Duration::hours(10)));
        assert_eq!(s.delay_after(8), None, "the eighth failure is the last");
    }

    #[test]
    fn schedules_are_read_with_units() {
        let s: RetrySchedule = "100ms, 1s,2m".parse().unwrap();
        assert_eq!(s.delay_after(1), Some(Duration::milliseconds(100)));
        assert_eq!(s.delay_after(3), Some(Duration::minutes(2)));
        assert_eq!(s.to_string(), "100ms,1000ms,120000ms");
        for bad in ["", "5", "5x", "s", "-5s", "99999999h"] {
            assert!(bad.parse::<RetrySchedule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints_failing_for_the_whole_period_are_disabled() {
        let p = DisablePolicy::default();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert!(!p.applies(None, now));
        assert!(!p.applies(Some(now - Duration::days(4)), now));
        assert!(p.applies(Some(now - Duration::days(5)), now));
        assert!(p.reason().contains("5 days"));
        let short = DisablePolicy {
            after: Duration::seconds(2),
        };
        assert!(short.reason().contains("2 seconds"));
    }
}
