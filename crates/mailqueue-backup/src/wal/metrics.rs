//! WAL archiving metrics. Every push is its own process, so the totals
//! live in a state file next to the backup metrics' one, and the whole set
//! is rewritten after each push and each check:
//!
//! - `mailqueue_wal_pushed_total`, `mailqueue_wal_push_failures_total`,
//!   `mailqueue_wal_conflicts_total` (counters);
//! - `mailqueue_wal_last_archived_timestamp_seconds`, the time of the last
//!   successful push;
//! - `mailqueue_wal_archive_lag_seconds` and `mailqueue_wal_archive_lag_bytes`
//!   (from `pg_stat_archiver`, written by the check);
//! - `mailqueue_wal_missing_segments` (gaps since the newest base backup);
//! - `mailqueue_wal_archive_failing` (1 when PostgreSQL's last archive
//!   attempt failed).
//!
//! Pushes run on the PostgreSQL server and checks elsewhere (a CronJob's
//! pod, with no state of its own), so on a Pushgateway each writes only its
//! own metrics, in a group of its own (`job=mailqueue_wal`, `source=archive`
//! or `source=check`): a check never resets the push counters.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WalMetrics {
    pub pushed_total: u64,
    pub push_failures_total: u64,
    pub conflicts_total: u64,
    pub last_archived_timestamp_seconds: f64,
    pub last_archived_file: String,
    pub archive_lag_seconds: f64,
    pub archive_lag_bytes: u64,
    pub missing_segments: u64,
    pub archive_failing: bool,
}

/// How one push ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushResult {
    Archived,
    Failed,
    Conflict,
}

impl WalMetrics {
    pub fn load(state: &Path) -> Self {
        std::fs::read(state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn record_push(
        &mut self,
        result: PushResult,
        file: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        match result {
            PushResult::Archived => {
                self.pushed_total += 1;
                self.last_archived_timestamp_seconds = at.timestamp_millis() as f64 / 1000.0;
                self.last_archived_file = file.to_string();
            }
            PushResult::Failed => self.push_failures_total += 1,
            PushResult::Conflict => {
                self.push_failures_total += 1;
                self.conflicts_total += 1;
            }
        }
    }

    /// Every metric (the textfile holds them all).
    pub fn render(&self) -> String {
        self.render_rows(|_| true)
    }

    /// The metrics one source writes.
    fn render_source(&self, source: WalSource) -> String {
        self.render_rows(|name| source.writes(name))
    }

    fn render_rows(&self, pick: impl Fn(&str) -> bool) -> String {
        let rows: [(&str, &str, &str, f64); 8] = [
            (
                "mailqueue_wal_pushed_total",
                "counter",
                "WAL files archived",
                self.pushed_total as f64,
            ),
            (
                "mailqueue_wal_push_failures_total",
                "counter",
                "WAL pushes that failed, conflicts included",
                self.push_failures_total as f64,
            ),
            (
                "mailqueue_wal_conflicts_total",
                "counter",
                "WAL pushes refused because the archive holds other content under the name",
                self.conflicts_total as f64,
            ),
            (
                "mailqueue_wal_last_archived_timestamp_seconds",
                "gauge",
                "When the last WAL file was archived",
                self.last_archived_timestamp_seconds,
            ),
            (
                "mailqueue_wal_archive_lag_seconds",
                "gauge",
                "Age of the oldest WAL not yet archived (0 when archiving is up to date)",
                self.archive_lag_seconds,
            ),
            (
                "mailqueue_wal_archive_lag_bytes",
                "gauge",
                "Bytes of WAL written but not yet archived",
                self.archive_lag_bytes as f64,
            ),
            (
                "mailqueue_wal_missing_segments",
                "gauge",
                "WAL segments missing from the archive since the newest base backup",
                self.missing_segments as f64,
            ),
            (
                "mailqueue_wal_archive_failing",
                "gauge",
                "1 when PostgreSQL's last archive attempt failed",
                if self.archive_failing { 1.0 } else { 0.0 },
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows.into_iter().filter(|(name, ..)| pick(name)) {
            let _ = writeln!(
                out,
                "# HELP {name} {help}.\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

/// Which command writes WAL metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalSource {
    /// `wal-push`, run by PostgreSQL.
    Archive,
    /// `wal check`.
    Check,
}

impl WalSource {
    fn label(self) -> &'static str {
        match self {
            WalSource::Archive => "archive",
            WalSource::Check => "check",
        }
    }

    fn writes(self, metric: &str) -> bool {
        let pushes = metric.starts_with("mailqueue_wal_push")
            || metric == "mailqueue_wal_conflicts_total"
            || metric == "mailqueue_wal_last_archived_timestamp_seconds";
        pushes == (self == WalSource::Archive)
    }
}

/// Where WAL metrics go: the state file, and the textfile and Pushgateway
/// of the backup metrics (`mailqueue_wal.prom` beside the backup textfile;
/// job `mailqueue_wal`).
pub struct WalMetricsSink {
    pub state_file: PathBuf,
    pub textfile: Option<PathBuf>,
    pub pushgateway: Option<String>,
}

impl WalMetricsSink {
    /// Applies `change` to the kept metrics and publishes them; failures
    /// to publish are logged, never returned.
    pub async fn update(&self, source: WalSource, change: impl FnOnce(&mut WalMetrics)) {
        let mut metrics = WalMetrics::load(&self.state_file);
        change(&mut metrics);
        if let Err(e) = crate::metrics::write_atomically(
            &self.state_file,
            &serde_json::to_vec_pretty(&metrics).unwrap_or_default(),
        ) {
            tracing::warn!(error = %e, "cannot keep the WAL metrics state");
        }
        if let Some(path) = &self.textfile {
            let text = metrics.render();
            if let Err(e) = crate::metrics::write_atomically(path, text.as_bytes()) {
                tracing::warn!(error = %e, "cannot write the WAL metrics textfile");
            }
        }
        if let Some(url) = &self.pushgateway {
            let grouping = [("source", source.label())];
            let text = metrics.render_source(source);
            crate::metrics::push_to_gateway(url, "mailqueue_wal", &grouping, text).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_failures_and_conflicts_are_counted() {
        let mut m = WalMetrics::default();
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        m.record_push(PushResult::Archived, "000000010000000000000002", at);
        m.record_push(PushResult::Conflict, "000000010000000000000003", at);
        m.record_push(PushResult::Failed, "000000010000000000000003", at);
        let text = m.render();
        for line in [
            "mailqueue_wal_pushed_total 1",
            "mailqueue_wal_push_failures_total 2",
            "mailqueue_wal_conflicts_total 1",
            "mailqueue_wal_last_archived_timestamp_seconds 1700000000",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
