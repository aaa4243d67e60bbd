//! A domain to test with.

use super::*;
use chrono::TimeZone;

pub fn key(selector: &str, active: bool) -> DkimKey {
    DkimKey {
        selector: selector.into(),
        algorithm: DkimAlgorithm::Rsa2048,
        public_key: format!("PUB{selector}"),
        sealed_private_key: "sealed".into(),
        status: VerificationStatus::NotStarted,
        active,
        created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    }
}

pub fn domain() -> Domain {
    let created_at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Domain {
        id: DomainId::generate(created_at),
        name: DomainName::parse("acme.com").unwrap(),
        status: VerificationStatus::NotStarted,
        region: Region::UsEast1,
        custom_return_path: "send".into(),
        open_tracking: false,
        click_tracking: false,
        tls: TlsPolicy::Opportunistic,
        tracking_subdomain: None,
        created_at,
        dkim_keys: vec![key("mq1", true)],
        records: RecordStatuses::default(),
        verify_requested_at: None,
        checked_at: None,
        next_check_at: None,
        revision: 0,
    }
}
