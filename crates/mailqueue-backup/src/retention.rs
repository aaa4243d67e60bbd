//! Which backups to keep: everything younger than `within_days`, plus a
//! grandfather-father-son selection of older ones, evaluated as of an
//! injected `now`. The newest backup is always kept, whatever the policy.
//!
//! The GFS rules follow restic's `--keep-daily/weekly/monthly`: for the last
//! N days (ISO weeks, months) that have backups, the newest backup of each
//! is kept. Days without backups do not use up the count, so a gap in the
//! schedule does not shorten the history.

use crate::manifest::Manifest;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why a backup is kept. Printed as `newest backup`, `within 30 days`,
/// `daily 2024-01-15`, `weekly 2024-W03`, `monthly 2024-01`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeepReason {
    /// The newest backup of its kind, whatever the policy says.
    Newest,
    /// Younger than the policy's `within_days`.
    Within { days: u32 },
    /// The newest backup of that day.
    Daily(NaiveDate),
    /// The newest backup of that ISO week.
    Weekly { year: i32, week: u32 },
    /// The newest backup of that month.
    Monthly { year: i32, month: u32 },
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::Newest => f.write_str("newest backup"),
            KeepReason::Within { days } => write!(f, "within {days} days"),
            KeepReason::Daily(day) => write!(f, "daily {}", day.format("%Y-%m-%d")),
            KeepReason::Weekly { year, week } => write!(f, "weekly {year}-W{week:02}"),
            KeepReason::Monthly { year, month } => write!(f, "monthly {year}-{month:02}"),
        }
    }
}

impl PartialEq<&str> for KeepReason {
    fn eq(&self, other: &&str) -> bool {
        *other == self.to_string().as_str()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRetention {
    pub within_days: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

/// The decision for one backup, with every reason it is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub finished_at: DateTime<Utc>,
    /// The stored object's size, from the manifest.
    pub size_bytes: u64,
    pub reasons: Vec<KeepReason>,
}

impl Decision {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Decides for each backup (oldest first in the result).
pub fn evaluate(
    backups: &[Manifest],
    policy: &BackupRetention,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut order: Vec<&Manifest> = backups.iter().collect();
    // Newest first; ties broken by id so the result is deterministic.
    order.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then(b.id.cmp(&a.id)));
    let mut reasons: BTreeMap<&str, Vec<KeepReason>> =
        order.iter().map(|m| (m.id.as_str(), Vec::new())).collect();
    if let Some(newest) = order.first() {
        push(&mut reasons, &newest.id, KeepReason::Newest);
    }
    let cutoff = now - Duration::days(i64::from(policy.within_days));
    for m in &order {
        if m.finished_at >= cutoff {
            push(
                &mut reasons,
                &m.id,
                KeepReason::Within {
                    days: policy.within_days,
                },
            );
        }
    }
    keep_newest_per_bucket(&order, policy.daily, &mut reasons, |t| {
        KeepReason::Daily(t.date_naive())
    });
    keep_newest_per_bucket(&order, policy.weekly, &mut reasons, |t| {
        let w = t.iso_week();
        KeepReason::Weekly {
            year: w.year(),
            week: w.week(),
        }
    });
    keep_newest_per_bucket(&order, policy.monthly, &mut reasons, |t| {
        KeepReason::Monthly {
            year: t.year(),
            month: t.month(),
        }
    });
    let mut decisions: Vec<Decision> = order
        .iter()
        .map(|m| Decision {
            id: m.id.clone(),
            finished_at: m.finished_at,
            size_bytes: m.size_bytes,
            reasons: reasons.remove(m.id.as_str()).unwrap_or_default(),
        })
        .collect();
    decisions.reverse();
    decisions
}

fn push(reasons: &mut BTreeMap<&str, Vec<KeepReason>>, id: &str, why: KeepReason) {
    if let Some(list) = reasons.get_mut(id) {
        list.push(why);
    }
}

/// Walks newest first; the first backup met in each new bucket is that
/// bucket's newest. Stops after `count` buckets.
fn keep_newest_per_bucket<'a>(
    newest_first: &[&'a Manifest],
    count: u32,
    reasons: &mut BTreeMap<&'a str, Vec<KeepReason>>,
    bucket: impl Fn(DateTime<Utc>) -> KeepReason,
) {
    let mut seen = BTreeSet::new();
    for m in newest_first {
        if seen.len() as u32 >= count {
            break;
        }
        let reason = bucket(m.finished_at);
        if seen.insert(reason.to_string()) {
            push(reasons, &m.id, reason);
        }
    }
}

#[cfg(test)]
mod tests;
