//! The drill's report: phases with their measured durations, checks, and
//! per component the RTO achieved and the RPO implied, against the
//! guide's targets. Written as Markdown (for people) and JSON (for
//! tools), and as `mailqueue_dr_drill_*` metrics.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// The guide's recovery targets, in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    pub postgres_rpo_seconds: f64,
    pub postgres_rto_seconds: f64,
    pub redis_rpo_seconds: f64,
    pub redis_rto_seconds: f64,
    pub site_rpo_seconds: f64,
    pub site_rto_seconds: f64,
}

impl Default for Targets {
    /// PostgreSQL RPO 1 h / RTO 30 min, Redis 15 min / 15 min, the site
    /// RPO 1 h / RTO 2 h.
    fn default() -> Self {
        Self {
            postgres_rpo_seconds: 3600.0,
            postgres_rto_seconds: 1800.0,
            redis_rpo_seconds: 900.0,
            redis_rto_seconds: 900.0,
            site_rpo_seconds: 3600.0,
            site_rto_seconds: 7200.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
    pub ok: bool,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// One restored store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub backup: String,
    /// `postgres_physical + WAL`, `postgres`, `redis_rdb` …
    pub source: String,
    /// The newest moment the restore holds.
    pub recovered_to: DateTime<Utc>,
    pub rto_seconds: f64,
    pub rpo_seconds: f64,
    pub rto_target_seconds: f64,
    pub rpo_target_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub targets: Targets,
    pub phases: Vec<Phase>,
    pub checks: Vec<Check>,
    pub components: Vec<Component>,
    pub site_rto_seconds: f64,
    pub site_rpo_seconds: f64,
    /// Every reason the drill failed; empty when it passed.
    pub failures: Vec<String>,
    pub passed: bool,
}

impl DrillReport {
    pub fn new(targets: Targets, started_at: DateTime<Utc>) -> Self {
        Self {
            started_at,
            finished_at: started_at,
            targets,
            phases: Vec::new(),
            checks: Vec::new(),
            components: Vec::new(),
            site_rto_seconds: 0.0,
            site_rpo_seconds: 0.0,
            failures: Vec::new(),
            passed: false,
        }
    }

    pub fn phase(&mut self, name: &str, seconds: f64, ok: bool, detail: &str) {
        if !ok {
            self.failures.push(format!("{name}: {detail}"));
        }
        self.phases.push(Phase {
            name: name.into(),
            seconds,
            ok,
            detail: detail.into(),
        });
    }

    pub fn check(&mut self, name: &str, ok: bool, detail: &str) {
        if !ok && !self.failures.iter().any(|f| f.ends_with(detail)) {
            self.failures.push(format!("{name}: {detail}"));
        }
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        });
    }

    pub fn fail(&mut self, what: &str, why: &str) {
        self.failures.push(format!("{what}: {why}"));
    }

    pub fn component(&mut self, c: Component) {
        self.components.push(c);
    }

    /// Seconds from `t` to the drill's start.
    pub fn age_of(&self, t: DateTime<Utc>) -> f64 {
        (self.started_at - t).num_milliseconds().max(0) as f64 / 1000.0
    }

    /// Totals and verdicts against the targets.
    pub fn finish(&mut self, at: DateTime<Utc>) {
        self.finished_at = at;
        self.site_rto_seconds = self.components.iter().map(|c| c.rto_seconds).sum();
        self.site_rpo_seconds = self
            .components
            .iter()
            .map(|c| c.rpo_seconds)
            .fold(0.0, f64::max);
        let mut missed = Vec::new();
        for c in &self.components {
            if c.rto_seconds > c.rto_target_seconds {
                missed.push(format!(
                    "{} RTO {} is over its target {}",
                    c.name,
                    human(c.rto_seconds),
                    human(c.rto_target_seconds)
                ));
            }
            if c.rpo_seconds > c.rpo_target_seconds {
                missed.push(format!(
                    "{} RPO {} is over its target {}",
                    c.name,
                    human(c.rpo_seconds),
                    human(c.rpo_target_seconds)
                ));
            }
        }
        if !self.components.is_empty() {
            if self.site_rto_seconds > self.targets.site_rto_seconds {
                missed.push(format!(
                    "site RTO {} is over its target {}",
                    human(self.site_rto_seconds),
                    human(self.targets.site_rto_seconds)
                ));
            }
            if self.site_rpo_seconds > self.targets.site_rpo_seconds {
                missed.push(format!(
                    "site RPO {} is over its target {}",
                    human(self.site_rpo_seconds),
                    human(self.targets.site_rpo_seconds)
                ));
            }
        }
        self.failures.extend(missed);
        self.passed = self.failures.is_empty() && !self.components.is_empty();
        if self.components.is_empty() && self.failures.is_empty() {
            self.failures.push("nothing was restored".into());
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| unreachable!("a report serializes: {e}"))
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let verdict = if self.passed { "PASSED" } else { "FAILED" };
        let _ = writeln!(out, "# Disaster-recovery drill: {verdict}\n");
        let _ = writeln!(
            out,
            "Started {}, finished {} ({}).\n",
            self.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.finished_at.format("%Y-%m-%d %H:%M:%S UTC"),
            human((self.finished_at - self.started_at).num_milliseconds() as f64 / 1000.0)
        );
        let _ = writeln!(out, "## Recovery objectives\n");
        let _ = writeln!(out, "| Component | Restored from | Recovered to | RTO achieved | RTO target | RPO implied | RPO target |");
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |");
        for c in &self.components {
            let _ = writeln!(
                out,
                "| {} | {} ({}) | {} | {} {} | {} | {} {} | {} |",
                c.name,
                c.backup,
                c.source,
                c.recovered_to.format("%Y-%m-%d %H:%M:%S UTC"),
                human(c.rto_seconds),
                mark(c.rto_seconds <= c.rto_target_seconds),
                human(c.rto_target_seconds),
                human(c.rpo_seconds),
                mark(c.rpo_seconds <= c.rpo_target_seconds),
                human(c.rpo_target_seconds)
            );
        }
        let _ = writeln!(
            out,
            "| site | | | {} {} | {} | {} {} | {} |\n",
            human(self.site_rto_seconds),
            mark(self.site_rto_seconds <= self.targets.site_rto_seconds),
            human(self.targets.site_rto_seconds),
            human(self.site_rpo_seconds),
            mark(self.site_rpo_seconds <= self.targets.site_rpo_seconds),
            human(self.targets.site_rpo_seconds)
        );
        let _ = writeln!(out, "The RTO is the measured time of the restores and checks below; provisioning and DNS (the guide's other steps) come on top. The RPO is the age, at the drill's start, of the newest moment the restore holds.\n");
        let _ = writeln!(
            out,
            "## Phases\n\n| Phase | Seconds | Result |\n| --- | ---: | --- |"
        );
        for p in &self.phases {
            let _ = writeln!(
                out,
                "| {} | {:.2} | {} {} |",
                p.name,
                p.seconds,
                mark(p.ok),
                p.detail.replace('|', "\\|")
            );
        }
        let _ = writeln!(out, "\n## Checks\n\n| Check | Result |\n| --- | --- |");
        for c in &self.checks {
            let _ = writeln!(
                out,
                "| {} | {} {} |",
                c.name,
                mark(c.ok),
                c.detail.replace('|', "\\|")
            );
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "\n## Failures\n");
            for f in &self.failures {
                let _ = writeln!(out, "- {f}");
            }
        }
        out
    }

    /// `mailqueue_dr_drill_*`: when the last drill ran and last passed
    /// (kept across runs in `previous_success`), whether it passed, and the
    /// RTO and RPO per component.
    pub fn metrics(&self, previous_success: Option<f64>) -> String {
        let ts = |t: DateTime<Utc>| t.timestamp_millis() as f64 / 1000.0;
        let last_success = if self.passed {
            Some(ts(self.finished_at))
        } else {
            previous_success
        };
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} gauge");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        gauge(
            "mailqueue_dr_drill_last_run_timestamp_seconds",
            "When the last drill finished",
            vec![(String::new(), ts(self.finished_at))],
        );
        gauge(
            "mailqueue_dr_drill_last_success_timestamp_seconds",
            "When the last drill that passed finished",
            vec![(String::new(), last_success.unwrap_or(0.0))],
        );
        gauge(
            "mailqueue_dr_drill_passed",
            "1 when the last drill passed",
            vec![(String::new(), if self.passed { 1.0 } else { 0.0 })],
        );
        let per = |f: fn(&Component) -> f64| -> Vec<(String, f64)> {
            self.components
                .iter()
                .map(|c| (format!("{{component=\"{}\"}}", c.name), f(c)))
                .collect()
        };
        let mut rto = per(|c| c.rto_seconds);
        rto.push(("{component=\"site\"}".into(), self.site_rto_seconds));
        let mut rpo = per(|c| c.rpo_seconds);
        rpo.push(("{component=\"site\"}".into(), self.site_rpo_seconds));
        gauge(
            "mailqueue_dr_drill_rto_seconds",
            "The recovery time the last drill measured",
            rto,
        );
        gauge(
            "mailqueue_dr_drill_rpo_seconds",
            "The recovery point age the last drill found",
            rpo,
        );
        gauge(
            "mailqueue_dr_drill_duration_seconds",
            "How long the last drill took",
            vec![(
                String::new(),
                (self.finished_at - self.started_at).num_milliseconds() as f64 / 1000.0,
            )],
        );
        out
    }
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "✅"
    } else {
        "❌"
    }
}

/// `42.1 s`, `12 min 3 s`, `2 h 5 min`.
pub fn human(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        format!("{} min {} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{} h {} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_missed_target_fails_the_drill_and_says_which() {
        let start = Utc.with_ymd_and_hms(2024, 1, 15, 12, 0, 0).unwrap();
        let mut r = DrillReport::new(Targets::default(), start);
        r.component(Component {
            name: "redis".into(),
            backup: "redis_rdb_x".into(),
            source: "redis_rdb".into(),
            recovered_to: start - chrono::Duration::hours(2),
            rto_seconds: 3.0,
            rpo_seconds: 7200.0,
            rto_target_seconds: 900.0,
            rpo_target_seconds: 900.0,
        });
        r.finish(start + chrono::Duration::seconds(5));
        assert!(!r.passed);
        assert!(
            r.failures
                .iter()
                .any(|f| f.contains("redis RPO 2 h 0 min is over its target 15 min 0 s")),
            "{:?}",
            r.failures
        );
        assert!(r
            .to_markdown()
            .contains("# Disaster-recovery drill: FAILED"));
        let m = r.metrics(Some(1.0));
        assert!(m.contains("mailqueue_dr_drill_passed 0"), "{m}");
        assert!(
            m.contains("mailqueue_dr_drill_last_success_timestamp_seconds 1"),
            "{m}"
        );
        assert!(
            m.contains("mailqueue_dr_drill_rpo_seconds{component=\"redis\"} 7200"),
            "{m}"
        );
    }
}
