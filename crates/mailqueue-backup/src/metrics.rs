//! Backup metrics for Prometheus, after every run, success or failure:
//! `mailqueue_backup_success_total`, `mailqueue_backup_failure_total`,
//! `mailqueue_backup_duration_seconds`, `mailqueue_backup_size_bytes`,
//! `mailqueue_backup_last_success_timestamp_seconds` and
//! `mailqueue_backup_storage_bytes`, labelled by kind. Runs are separate
//! processes, so the totals are kept in a small state file and the whole
//! set is written to a node-exporter textfile; to a Pushgateway each kind
//! goes under its own grouping key (`job=mailqueue_backup, kind=<kind>`),
//! so a run of one kind never replaces another kind's metrics. The last
//! success comes from the catalog (the destination's own record), so it
//! holds in a fresh process with no state (a Kubernetes CronJob's pod) and
//! across a failed run.

use crate::error::BackupError;
use crate::kind::BackupKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KindMetrics {
    pub success_total: u64,
    pub failure_total: u64,
    pub duration_seconds: f64,
    pub size_bytes: u64,
    pub last_success_timestamp_seconds: f64,
    pub storage_bytes: u64,
}

/// Metrics of every kind, as last recorded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupMetrics {
    pub kinds: BTreeMap<String, KindMetrics>,
}

/// The outcome of one run.
pub struct RunOutcome {
    pub kind: BackupKind,
    pub succeeded: bool,
    pub duration_seconds: f64,
    pub size_bytes: Option<u64>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    pub storage_bytes: Option<u64>,
    /// When the newest backup of this kind in the catalog finished (this
    /// run's, when it succeeded).
    pub last_success: Option<chrono::DateTime<chrono::Utc>>,
}

impl BackupMetrics {
    pub fn load(state: &Path) -> Self {
        std::fs::read(state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn record(&mut self, run: &RunOutcome) {
        let m = self.kinds.entry(run.kind.to_string()).or_default();
        m.duration_seconds = run.duration_seconds;
        if run.succeeded {
            m.success_total += 1;
            if let Some(size) = run.size_bytes {
                m.size_bytes = size;
            }
        } else {
            m.failure_total += 1;
        }
        let last = match (run.succeeded, run.last_success) {
            (_, Some(at)) => Some(at),
            (true, None) => Some(run.finished_at),
            (false, None) => None,
        };
        if let Some(at) = last {
            m.last_success_timestamp_seconds = m
                .last_success_timestamp_seconds
                .max(at.timestamp_millis() as f64 / 1000.0);
        }
        if let Some(storage) = run.storage_bytes {
            m.storage_bytes = storage;
        }
    }

    /// The Prometheus text exposition of every kind.
    pub fn render(&self) -> String {
        self.render_kinds(|_| true)
    }

    /// The exposition of the kinds `pick` keeps.
    fn render_kinds(&self, pick: impl Fn(&str) -> bool) -> String {
        let families: [Family; 6] = [
            (
                "mailqueue_backup_success_total",
                "counter",
                "Backups that completed",
                |m| m.success_total as f64,
            ),
            (
                "mailqueue_backup_failure_total",
                "counter",
                "Backups that failed",
                |m| m.failure_total as f64,
            ),
            (
                "mailqueue_backup_duration_seconds",
                "gauge",
                "Duration of the last backup",
                |m| m.duration_seconds,
            ),
            (
                "mailqueue_backup_size_bytes",
                "gauge",
                "Size of the last successful backup",
                |m| m.size_bytes as f64,
            ),
            (
                "mailqueue_backup_last_success_timestamp_seconds",
                "gauge",
                "When the last successful backup finished",
                |m| m.last_success_timestamp_seconds,
            ),
            (
                "mailqueue_backup_storage_bytes",
                "gauge",
                "Bytes of all stored backups",
                |m| m.storage_bytes as f64,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in families {
            let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} {kind}");
            for (label, m) in self.kinds.iter().filter(|(k, _)| pick(k)) {
                let _ = writeln!(out, "{name}{{kind=\"{label}\"}} {}", value(m));
            }
        }
        out
    }
}

/// Name, type, help and value of one metric family.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&KindMetrics) -> f64,
);

/// Where the metrics go.
pub struct MetricsSink {
    pub state_file: PathBuf,
    pub textfile: Option<PathBuf>,
    pub pushgateway: Option<String>,
    /// The storage allowed for backups, for the quota alert.
    pub quota_bytes: Option<u64>,
}

impl MetricsSink {
    /// Records the run and publishes the metrics; a failure to publish is
    /// logged, never returned as the run's result.
    pub async fn publish(&self, run: &RunOutcome) {
        let mut metrics = BackupMetrics::load(&self.state_file);
        metrics.record(run);
        if let Err(e) = write_atomically(
            &self.state_file,
            &serde_json::to_vec_pretty(&metrics).unwrap_or_default(),
        ) {
            tracing::warn!(error = %e, "cannot keep the backup metrics state");
        }
        let quota = self
            .quota_bytes
            .map(|quota| {
                format!(
                    "# HELP mailqueue_backup_storage_quota_bytes The storage allowed for backups.\n\
                     # TYPE mailqueue_backup_storage_quota_bytes gauge\nmailqueue_backup_storage_quota_bytes {quota}\n"
                )
            })
            .unwrap_or_default();
        if let Some(path) = &self.textfile {
            let text = metrics.render() + &quota;
            if let Err(e) = write_atomically(path, text.as_bytes()) {
                tracing::warn!(error = %e, "cannot write the metrics textfile");
            }
        }
        if let Some(url) = &self.pushgateway {
            let kind = run.kind.to_string();
            let text = metrics.render_kinds(|k| k == kind) + &quota;
            push_to_gateway(url, "mailqueue_backup", &[("kind", &kind)], text).await;
        }
    }
}

/// Replaces the metrics of one group (`job` and the `grouping` labels) on a
/// Pushgateway; a failure is logged.
pub async fn push_to_gateway(url: &str, job: &str, grouping: &[(&str, &str)], text: String) {
    let mut target = format!("{}/metrics/job/{job}", url.trim_end_matches('/'));
    for (label, value) in grouping {
        target.push_str(&format!("/{label}/{value}"));
    }
    let sent = reqwest::Client::new()
        .put(&target)
        .header("content-type", "text/plain; version=0.0.4")
        .body(text)
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => tracing::warn!(status = %r.status(), "the Pushgateway refused the metrics"),
        Err(e) => tracing::warn!(error = %e, "pushing metrics failed"),
    }
}

/// The value a Pushgateway holds for `metric` in the group of `job` (with
/// no other grouping labels): what an earlier run in another process
/// pushed. `None` when there is none or the gateway cannot be read.
pub async fn pushed_value(url: &str, job: &str, metric: &str) -> Option<f64> {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", url.trim_end_matches('/')))
        .timeout(std::time::Duration::from_secs(10))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let job_label = format!("job=\"{job}\"");
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(&job_label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// The textfile for another job's metrics, beside the backup textfile:
/// `<dir>/<name>.prom`.
pub fn sibling_textfile(textfile: &Path, name: &str) -> PathBuf {
    textfile
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("{name}.prom"))
}

/// Writes a whole file or nothing (a reader never sees half of it), readable
/// by everyone: node-exporter reads the textfiles as its own user, and
/// `wal-push` runs under PostgreSQL's umask (077), which would otherwise
/// leave them `0600 postgres`. Metrics hold no secret.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| BackupError::io(format!("creating {}", dir.display()), e))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .map_err(|e| BackupError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| BackupError::io(format!("setting the mode of {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| BackupError::io(format!("renaming to {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_accumulate_and_render_by_kind() {
        let mut m = BackupMetrics::default();
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let run = |succeeded| RunOutcome {
            kind: BackupKind::Postgres,
            succeeded,
            duration_seconds: 2.5,
            size_bytes: succeeded.then_some(1234),
            finished_at: at,
            storage_bytes: Some(5000),
            last_success: succeeded.then_some(at),
        };
        m.record(&run(true));
        m.record(&run(false));
        m.record(&run(true));
        let text = m.render();
        assert!(
            text.contains("mailqueue_backup_success_total{kind=\"postgres\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("mailqueue_backup_failure_total{kind=\"postgres\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mailqueue_backup_size_bytes{kind=\"postgres\"} 1234"),
            "{text}"
        );
        assert!(
            text.contains(
                "mailqueue_backup_last_success_timestamp_seconds{kind=\"postgres\"} 1700000000"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE mailqueue_backup_duration_seconds gauge"),
            "{text}"
        );
    }
}
