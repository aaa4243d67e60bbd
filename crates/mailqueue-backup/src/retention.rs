//! Which backups to keep: everything younger than `within_days`, plus a
//! grandfather-father-son selection of older ones, evaluated as of an
//! injected `now`. The newest backup is always kept, whatever the policy.
//!
//! The GFS rules follow restic's `--keep-daily/weekly/monthly`: for the last
//! N days (ISO weeks, months) that have backups, the newest backup of each
//! is kept. Days without backups do not use up the count, so a gap in the
//! schedule does not shorten the history.

use crate::kind::BackupKind;
use crate::manifest::Manifest;
use chrono::{DateTime, Datelike, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub within_days: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl RetentionPolicy {
    /// The guide's policy: PostgreSQL 7 daily, 4 weekly, 12 monthly;
    /// Redis RDB 3 daily, 2 weekly, 3 monthly; 30 days kept whole.
    pub fn default_for(kind: BackupKind) -> Self {
        match kind {
            BackupKind::RedisRdb | BackupKind::RedisAof => Self {
                within_days: 30,
                daily: 3,
                weekly: 2,
                monthly: 3,
            },
            BackupKind::Postgres | BackupKind::Sqlite => Self {
                within_days: 30,
                daily: 7,
                weekly: 4,
                monthly: 12,
            },
        }
    }
}

/// The decision for one backup, with every reason it is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub id: String,
    pub finished_at: DateTime<Utc>,
    /// The stored object's size, from the manifest.
    pub size_bytes: u64,
    pub reasons: Vec<String>,
}

impl Decision {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Decides for each backup (oldest first in the result).
pub fn evaluate(
    backups: &[Manifest],
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut order: Vec<&Manifest> = backups.iter().collect();
    // Newest first; ties broken by id so the result is deterministic.
    order.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then(b.id.cmp(&a.id)));
    let mut reasons: BTreeMap<&str, Vec<String>> =
        order.iter().map(|m| (m.id.as_str(), Vec::new())).collect();
    if let Some(newest) = order.first() {
        push(&mut reasons, &newest.id, "newest backup".into());
    }
    let cutoff = now - Duration::days(i64::from(policy.within_days));
    for m in &order {
        if m.finished_at >= cutoff {
            push(
                &mut reasons,
                &m.id,
                format!("within {} days", policy.within_days),
            );
        }
    }
    keep_newest_per_bucket(&order, policy.daily, &mut reasons, |t| {
        (
            format!("daily {}", t.format("%Y-%m-%d")),
            t.date_naive().to_string(),
        )
    });
    keep_newest_per_bucket(&order, policy.weekly, &mut reasons, |t| {
        let w = t.iso_week();
        (
            format!("weekly {}-W{:02}", w.year(), w.week()),
            format!("{}-{}", w.year(), w.week()),
        )
    });
    keep_newest_per_bucket(&order, policy.monthly, &mut reasons, |t| {
        (
            format!("monthly {}", t.format("%Y-%m")),
            t.format("%Y-%m").to_string(),
        )
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

fn push(reasons: &mut BTreeMap<&str, Vec<String>>, id: &str, why: String) {
    if let Some(list) = reasons.get_mut(id) {
        list.push(why);
    }
}

/// Walks newest first; the first backup met in each new bucket is that
/// bucket's newest. Stops after `count` buckets.
fn keep_newest_per_bucket<'a>(
    newest_first: &[&'a Manifest],
    count: u32,
    reasons: &mut BTreeMap<&'a str, Vec<String>>,
    bucket: impl Fn(DateTime<Utc>) -> (String, String),
) {
    let mut seen = BTreeSet::new();
    for m in newest_first {
        if seen.len() as u32 >= count {
            break;
        }
        let (label, key) = bucket(m.finished_at);
        if seen.insert(key) {
            push(reasons, &m.id, label);
        }
    }
}

#[cfg(test)]
mod tests;
