//! `scheduled_at` values: RFC 3339 timestamps, or the short natural-language
//! form Resend accepts (`in 1 min`, `in 2 hours`, `in 3 days`).

use chrono::{DateTime, Duration, Utc};

/// Reads a `scheduled_at` value relative to `now`.
pub fn parse_scheduled_at(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = input.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(s) {
        return Ok(at.with_timezone(&Utc));
    }
    parse_relative(s)
        .map(|offset| now + offset)
        .ok_or_else(|| {
            format!(
                "`{}` is neither an RFC 3339 timestamp (2030-01-15T09:30:00Z) nor a relative time (in 10 minutes)",
                s.chars().take(64).collect::<String>()
            )
        })
}

fn parse_relative(s: &str) -> Option<Duration> {
    let lower = s.to_ascii_lowercase();
    let mut words = lower.split_whitespace();
    if words.next()? != "in" {
        return None;
    }
    let amount_word = words.next()?;
    let (amount, unit) = match words.next() {
        Some(unit) => (amount_word.parse::<i64>().ok()?, unit.to_string()),
        None => {
            let split = amount_word.find(|c: char| !c.is_ascii_digit())?;
            let (n, u) = amount_word.split_at(split);
            (n.parse::<i64>().ok()?, u.to_string())
        }
    };
    if words.next().is_some() || !(0..=100_000).contains(&amount) {
        return None;
    }
    let seconds_per_unit = match unit.as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        _ => return None,
    };
    Some(Duration::seconds(amount * seconds_per_unit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
    }

    #[test]
    fn reads_rfc3339_in_any_offset() {
        let at = parse_scheduled_at("2026-01-15T14:30:00+02:00", now()).unwrap();
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 1, 15, 12, 30, 0).unwrap());
    }

    #[test]
    fn reads_relative_times() {
        assert_eq!(
            parse_scheduled_at("in 1 min", now()).unwrap(),
            now() + Duration::minutes(1)
        );
        assert_eq!(
            parse_scheduled_at("in 2 hours", now()).unwrap(),
            now() + Duration::hours(2)
        );
        assert_eq!(
            parse_scheduled_at("In 3 Days", now()).unwrap(),
            now() + Duration::days(3)
        );
        assert_eq!(
            parse_scheduled_at("in 45s", now()).unwrap(),
            now() + Duration::seconds(45)
        );
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "tomorrow",
            "in a minute",
            "in 5 fortnights",
            "2026-01-15",
            "in -3 min",
            "",
        ] {
            assert!(parse_scheduled_at(bad, now()).is_err(), "{bad}");
        }
    }
}
