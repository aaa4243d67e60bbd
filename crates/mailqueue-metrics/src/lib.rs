//! mailqueue's Prometheus metrics. One [`Metrics`] value is created at start
//! and passed to the API and the workers; nothing is global, so every test
//! app has its own counters.

use chrono::{DateTime, Utc};
use mailqueue_core::store::QueueStats;
use mailqueue_core::transition::WrittenEvents;
use mailqueue_core::webhooks::OutboxStats;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Label = [(&'static str, &'static str); 1];

pub struct Metrics {
    registry: Registry,
    pub emails_accepted: Counter,
    pub emails_sent: Counter,
    pub emails_failed: Counter,
    pub emails_retried: Counter,
    /// Delivery attempts by outcome: `sent`, `retry`, `failed`, `lease_expired`.
    pub attempts: Family<Label, Counter>,
    /// Failed attempts by class: `smtp_4xx`, `smtp_5xx`, `timeout`, ...
    pub smtp_errors: Family<Label, Counter>,
    pub queue_depth: Family<Label, Gauge>,
    pub oldest_due_age_seconds: Gauge<f64, AtomicU64>,
    /// From when an email was due to when the relay accepted it.
    pub delivery_latency_seconds: Histogram,
    /// One SMTP transaction.
    pub send_duration_seconds: Histogram,
    /// Claimed emails put back unsent, without counting an attempt, by
    /// reason: `lease` (no room left for a send), `shutdown`, `rate_limit`,
    /// `domain_rate_limit`, `connection_limit`.
    pub deferrals: Family<Label, Counter>,
    /// Attempt outcomes the store refused to record (logged with the email id).
    pub outcomes_refused: Counter,
    /// Events this process wrote with the changes it made, by type.
    pub events: Family<Label, Counter>,
    /// Webhook delivery attempts by outcome: `delivered`, `retry`, `failed`.
    pub webhook_deliveries: Family<Label, Counter>,
    /// One webhook request, connecting included.
    pub webhook_request_seconds: Histogram,
    pub webhook_outbox_depth: Gauge,
    pub webhook_oldest_pending_age_seconds: Gauge<f64, AtomicU64>,
    /// Rows retention removed, by what: `emails` (deleted with everything
    /// hanging off them), `contents` (bodies and attachment bytes dropped)
    /// or `unclassified_reports`.
    pub retention_purged: Family<Label, Counter>,
    /// Creation time (Unix seconds) of the oldest email kept, as last seen
    /// by the process that runs the fleet's maintenance.
    pub oldest_email_created: Gauge,
    /// Messages the bounce domain's MX took, by what they were: `bounce`,
    /// `delay` or `complaint` (applied), or `unclassified` (kept as they
    /// came).
    pub inbound_reports: Family<Label, Counter>,
    /// Messages signed with DKIM before they left.
    pub emails_signed: Counter,
    /// Messages that left unsigned, by reason: `no_domain` (no sending
    /// domain covers the sender), `not_verified` (its key's record is not
    /// verified), `key_unreadable` (the key does not open with this
    /// server's secret) or `signing_failed`.
    pub emails_unsigned: Family<Label, Counter>,
    /// Sending domains by status, set by the maintenance leader.
    pub domains: Family<Label, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Counts the events a store reports it wrote.
    pub fn count_events(&self, written: &WrittenEvents) {
        for (t, n) in written.iter() {
            self.events.get_or_create(&[("type", t.as_str())]).inc_by(n);
        }
    }

    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mailqueue");
        let m = Self {
            emails_accepted: Counter::default(),
            inbound_reports: Family::default(),
            emails_signed: Counter::default(),
            emails_unsigned: Family::default(),
            domains: Family::default(),
            emails_sent: Counter::default(),
            emails_failed: Counter::default(),
            emails_retried: Counter::default(),
            attempts: Family::default(),
            smtp_errors: Family::default(),
            queue_depth: Family::default(),
            oldest_due_age_seconds: Gauge::default(),
            delivery_latency_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 20)),
            send_duration_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            deferrals: Family::default(),
            outcomes_refused: Counter::default(),
            events: Family::default(),
            webhook_deliveries: Family::default(),
            webhook_request_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            webhook_outbox_depth: Gauge::default(),
            webhook_oldest_pending_age_seconds: Gauge::default(),
            retention_purged: Family::default(),
            oldest_email_created: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "emails_accepted",
            "Emails accepted by the API",
            m.emails_accepted.clone(),
        );
        registry.register(
            "emails_sent",
            "Emails accepted by the relay",
            m.emails_sent.clone(),
        );
        registry.register(
            "emails_failed",
            "Emails that failed for good",
            m.emails_failed.clone(),
        );
        registry.register(
            "emails_retried",
            "Attempts that ended in a scheduled retry",
            m.emails_retried.clone(),
        );
        registry.register(
            "delivery_attempts",
            "Delivery attempts by outcome",
            m.attempts.clone(),
        );
        registry.register(
            "smtp_errors",
            "Failed delivery attempts by error class",
            m.smtp_errors.clone(),
        );
        registry.register(
            "queue_depth",
            "Emails waiting or in flight, by status",
            m.queue_depth.clone(),
        );
        registry.register(
            "oldest_due_email_age_seconds",
            "How long the oldest due, unclaimed email has been waiting",
            m.oldest_due_age_seconds.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "Time from an email being due to the relay accepting it",
            m.delivery_latency_seconds.clone(),
        );
        registry.register(
            "smtp_send_duration_seconds",
            "Duration of one SMTP transaction",
            m.send_duration_seconds.clone(),
        );
        registry.register(
            "deferrals",
            "Claimed emails put back unsent, without an attempt, by reason",
            m.deferrals.clone(),
        );
        registry.register(
            "outcomes_refused",
            "Attempt outcomes the store refused to record",
            m.outcomes_refused.clone(),
        );
        registry.register(
            "events",
            "Email events written by this process, by type",
            m.events.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome",
            m.webhook_deliveries.clone(),
        );
        registry.register(
            "webhook_request_seconds",
            "Duration of one webhook request",
            m.webhook_request_seconds.clone(),
        );
        registry.register(
            "webhook_outbox_depth",
            "Webhook deliveries pending (waiting, retrying or in flight)",
            m.webhook_outbox_depth.clone(),
        );
        registry.register(
            "webhook_oldest_pending_age_seconds",
            "How long the oldest pending webhook delivery has been in the outbox",
            m.webhook_oldest_pending_age_seconds.clone(),
        );
        registry.register(
            "retention_purged",
            "Finished emails deleted (`emails`), stripped of their contents (`contents`), or unclassified reports deleted (`unclassified_reports`) by retention",
            m.retention_purged.clone(),
        );
        registry.register(
            "emails_signed",
            "Messages signed with DKIM before they left",
            m.emails_signed.clone(),
        );
        registry.register(
            "emails_unsigned",
            "Messages that left without a DKIM signature, by reason: no_domain, not_verified, key_unreadable or signing_failed",
            m.emails_unsigned.clone(),
        );
        registry.register(
            "domains",
            "Sending domains by status, as the maintenance leader last counted them",
            m.domains.clone(),
        );
        registry.register(
            "inbound_reports",
            "Messages taken by the bounce domain's MX, by kind: bounce, delay, complaint or unclassified",
            m.inbound_reports.clone(),
        );
        registry.register(
            "oldest_email_created_timestamp_seconds",
            "Creation time of the oldest email kept, set by the maintenance leader",
            m.oldest_email_created.clone(),
        );
        Self { registry, ..m }
    }

    /// Sets the outbox gauges from a fresh count.
    /// Sets the domains gauge from every domain's status.
    pub fn observe_domains(&self, statuses: &[mailqueue_core::domains::VerificationStatus]) {
        for status in mailqueue_core::domains::VerificationStatus::ALL {
            let n = statuses.iter().filter(|s| **s == status).count();
            self.domains
                .get_or_create(&[("status", status.as_str())])
                .set(n as i64);
        }
    }

    pub fn observe_webhook_outbox(&self, stats: &OutboxStats, now: DateTime<Utc>) {
        self.webhook_outbox_depth.set(stats.pending as i64);
        self.webhook_oldest_pending_age_seconds
            .set(age_seconds(stats.oldest_pending_at, now));
    }

    /// Sets the queue gauges from a fresh count.
    pub fn observe_queue(&self, stats: &QueueStats, now: DateTime<Utc>) {
        for (status, n) in &stats.by_status {
            self.queue_depth
                .get_or_create(&[("status", status.as_str())])
                .set(*n as i64);
        }
        self.oldest_due_age_seconds
            .set(age_seconds(stats.oldest_due_at, now));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry)
            .unwrap_or_else(|e| unreachable!("writing to a String cannot fail: {e}"));
        out
    }
}

fn age_seconds(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> f64 {
    since
        .map(|at| (now - at).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailqueue_core::EmailStatus;

    #[test]
    fn renders_every_family_with_its_prefix() {
        let m = Metrics::new();
        m.emails_accepted.inc_by(3);
        m.smtp_errors.get_or_create(&[("class", "smtp_4xx")]).inc();
        let now = Utc::now();
        m.observe_queue(
            &QueueStats {
                by_status: vec![(EmailStatus::Queued, 7)],
                oldest_due_at: Some(now - chrono::Duration::seconds(30)),
            },
            now,
        );
        m.observe_webhook_outbox(
            &OutboxStats {
                pending: 4,
                oldest_pending_at: Some(now - chrono::Duration::seconds(2)),
            },
            now,
        );
        m.webhook_deliveries
            .get_or_create(&[("outcome", "retry")])
            .inc();
        let text = m.render();
        assert!(text.contains("mailqueue_emails_accepted_total 3"), "{text}");
        assert!(
            text.contains("mailqueue_smtp_errors_total{class=\"smtp_4xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mailqueue_queue_depth{status=\"queued\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("mailqueue_oldest_due_email_age_seconds 30"),
            "{text}"
        );
        assert!(
            text.contains("mailqueue_delivery_latency_seconds_bucket"),
            "{text}"
        );
        assert!(text.contains("mailqueue_webhook_outbox_depth 4"), "{text}");
        assert!(
            text.contains("mailqueue_webhook_oldest_pending_age_seconds 2"),
            "{text}"
        );
        assert!(
            text.contains("mailqueue_webhook_deliveries_total{outcome=\"retry\"} 1"),
            "{text}"
        );
    }
}
