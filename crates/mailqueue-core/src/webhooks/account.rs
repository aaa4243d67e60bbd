//! Events about the account rather than one email (Resend's `domain.*`).
//! Each is stored whole, with the payload its webhooks receive, written
//! in the transaction of the change it reports, and delivered through the
//! same outbox as the email events.

use super::payload::time;
use super::subscription::WebhookEventType;
use crate::domains::{Domain, RecordsConfig};
use crate::ids::EventId;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountEvent {
    /// Also the `svix-id` of its deliveries.
    pub id: EventId,
    pub event_type: WebhookEventType,
    pub created_at: DateTime<Utc>,
    /// The body POSTed: `{"type", "created_at", "data"}`.
    pub payload: Value,
}

/// What a domain event's `data` tells of the domain: Resend's `id`,
/// `name`, `status`, `created_at`, `region` and `records`, plus the
/// settings `PATCH /v1/domains/{id}` changes.
fn domain_data(d: &Domain, records: &RecordsConfig) -> Value {
    json!({
        "id": d.id.to_string(),
        "name": d.name.as_str(),
        "status": d.status.as_str(),
        "created_at": d.created_at.to_rfc3339_opts(SecondsFormat::Millis, false),
        "region": d.region.as_str(),
        "records": d.dns_records(records),
        "open_tracking": d.open_tracking,
        "click_tracking": d.click_tracking,
        "tls": d.tls.as_str(),
    })
}

impl AccountEvent {
    fn new(event_type: WebhookEventType, data: Value, now: DateTime<Utc>) -> Self {
        Self {
            id: EventId::generate(now),
            event_type,
            created_at: now,
            payload: json!({
                "type": event_type.as_str(),
                "created_at": time(now),
                "data": data,
            }),
        }
    }

    /// `domain.created` or `domain.deleted`.
    pub fn domain(
        event_type: WebhookEventType,
        domain: &Domain,
        records: &RecordsConfig,
        now: DateTime<Utc>,
    ) -> Self {
        Self::new(event_type, domain_data(domain, records), now)
    }

    /// `domain.updated`, when the change altered what the event tells: a
    /// status, a record, a setting. A check that found what the last one
    /// found tells nothing new.
    pub fn domain_updated(
        before: &Domain,
        after: &Domain,
        records: &RecordsConfig,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let data = domain_data(after, records);
        (data != domain_data(before, records))
            .then(|| Self::new(WebhookEventType::DomainUpdated, data, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domains::tests_support::{domain, key};
    use crate::domains::{TlsPolicy, VerificationStatus};
    use chrono::Duration;

    #[test]
    fn a_domain_event_carries_resends_payload() {
        let d = domain();
        let at = d.created_at + Duration::milliseconds(1500);
        let e = AccountEvent::domain(
            WebhookEventType::DomainCreated,
            &d,
            &RecordsConfig::default(),
            at,
        );
        assert_eq!(e.payload["type"], "domain.created");
        assert_eq!(e.payload["created_at"], "2026-01-01T00:00:01.500Z");
        let data = &e.payload["data"];
        assert_eq!(data["id"], d.id.to_string());
        assert_eq!(data["name"], "acme.com");
        assert_eq!(data["status"], "not_started");
        assert_eq!(data["region"], "us-east-1");
        assert_eq!(data["records"][0]["record"], "DKIM");
        assert_eq!(data["records"][0]["name"], "mq1._domainkey");
    }

    #[test]
    fn only_a_change_the_event_tells_is_told() {
        let records = RecordsConfig::default();
        let before = domain();
        let at = before.created_at;
        let mut checked = before.clone();
        checked.checked_at = Some(at);
        checked.next_check_at = Some(at + Duration::hours(1));
        checked.revision += 1;
        assert_eq!(
            AccountEvent::domain_updated(&before, &checked, &records, at),
            None
        );
        for change in [
            |d: &mut Domain| d.status = VerificationStatus::Verified,
            |d: &mut Domain| d.dkim_keys[0].status = VerificationStatus::Failed,
            |d: &mut Domain| d.tls = TlsPolicy::Enforced,
            |d: &mut Domain| d.dkim_keys.push(key("mq2", false)),
        ] {
            let mut after = before.clone();
            change(&mut after);
            let e = AccountEvent::domain_updated(&before, &after, &records, at).unwrap();
            assert_eq!(e.payload["type"], "domain.updated");
        }
    }
}
