//! Sending domains: stored whole, paged, written under their revision,
//! found when their check is due, each change written with its event (and
//! that event's webhook deliveries) or not at all; API keys limited to one.

use crate::support::*;
use chrono::Duration;
use mailqueue_core::api_key::{ApiKeyPermission, ApiToken};
use mailqueue_core::domains::{
    DkimAlgorithm, DkimKey, Domain, DomainName, DomainPage, RecordStatuses, RecordsConfig, Region,
    TlsPolicy, VerificationStatus,
};
use mailqueue_core::store::ApiKeyRecord;
use mailqueue_core::webhooks::{AccountEvent, WebhookEventType};
use mailqueue_core::{ApiKeyId, DomainId};
use mailqueue_testkit::{test_store, StoreKind};

pub fn domain(name: &str, at_second: i64) -> Domain {
    let at = t0() + Duration::seconds(at_second);
    Domain {
        id: DomainId::generate(at),
        name: DomainName::parse(name).unwrap(),
        status: VerificationStatus::NotStarted,
        region: Region::EuWest1,
        custom_return_path: "bounces".into(),
        open_tracking: true,
        click_tracking: false,
        tls: TlsPolicy::Enforced,
        tracking_subdomain: Some("links".into()),
        created_at: at,
        dkim_keys: vec![DkimKey {
            selector: "mq1".into(),
            algorithm: DkimAlgorithm::Ed25519,
            public_key: "cHVibGlj".into(),
            sealed_private_key: "aes256gcm:c2VhbGVk".into(),
            status: VerificationStatus::NotStarted,
            active: true,
            created_at: at,
        }],
        records: RecordStatuses::default(),
        verify_requested_at: None,
        checked_at: None,
        next_check_at: None,
        revision: 0,
    }
}

fn event(kind: WebhookEventType, d: &Domain) -> AccountEvent {
    AccountEvent::domain(kind, d, &RecordsConfig::default(), t0())
}

pub fn created(d: &Domain) -> AccountEvent {
    event(WebhookEventType::DomainCreated, d)
}

pub fn updated(d: &Domain) -> AccountEvent {
    event(WebhookEventType::DomainUpdated, d)
}

pub fn deleted(d: &Domain) -> AccountEvent {
    event(WebhookEventType::DomainDeleted, d)
}

pub async fn domains_are_stored_whole_and_named_once(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let acme = domain("acme.com", 0);
    assert!(store.create_domain(&acme, &created(&acme)).await.unwrap());
    assert!(
        !store
            .create_domain(&domain("acme.com", 1), &created(&acme))
            .await
            .unwrap(),
        "a name is registered once"
    );
    assert_eq!(store.get_domain(acme.id).await.unwrap(), Some(acme.clone()));
    for (i, name) in ["b.com", "c.com", "d.com"].into_iter().enumerate() {
        let d = domain(name, 10 + i as i64);
        assert!(store.create_domain(&d, &created(&d)).await.unwrap());
    }
    let names = |page: Vec<Domain>| {
        page.into_iter()
            .map(|d| d.name.to_string())
            .collect::<Vec<_>>()
    };
    let first = store
        .list_domains(&DomainPage {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(names(first.clone()), ["d.com", "c.com"]);
    let next = store
        .list_domains(&DomainPage {
            after: Some(first[1].id),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(names(next.clone()), ["b.com", "acme.com"]);
    let back = store
        .list_domains(&DomainPage {
            before: Some(next[0].id),
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        names(back),
        ["c.com", "d.com"],
        "towards newer, oldest first"
    );
    assert_eq!(store.all_domains().await.unwrap().len(), 4);
    let gone = deleted(&acme);
    assert!(store.delete_domain(acme.id, 0, &gone).await.unwrap());
    assert!(!store.delete_domain(acme.id, 0, &gone).await.unwrap());
    assert_eq!(store.get_domain(acme.id).await.unwrap(), None);
}

pub async fn a_domain_write_from_an_old_read_is_refused(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let mut acme = domain("acme.com", 0);
    store.create_domain(&acme, &created(&acme)).await.unwrap();
    acme.status = VerificationStatus::Verified;
    acme.next_check_at = Some(t0() + Duration::hours(24));
    assert!(store.save_domain(&acme, None).await.unwrap());
    let stale = acme.clone();
    acme.open_tracking = false;
    assert!(
        !store.save_domain(&stale, None).await.unwrap(),
        "revision 0 is gone"
    );
    let stored = store.get_domain(acme.id).await.unwrap().unwrap();
    assert_eq!(stored.revision, 1);
    assert_eq!(stored.status, VerificationStatus::Verified);
    assert!(store.save_domain(&stored, None).await.unwrap());
}

pub async fn domains_are_found_when_their_check_is_due(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let mut due = domain("due.com", 0);
    due.next_check_at = Some(t0() + Duration::minutes(1));
    let mut later = domain("later.com", 1);
    later.next_check_at = Some(t0() + Duration::hours(1));
    let never = domain("never.com", 2);
    for d in [&due, &later, &never] {
        store.create_domain(d, &created(d)).await.unwrap();
    }
    let found = store
        .domains_due_for_check(t0() + Duration::minutes(2), 10)
        .await
        .unwrap();
    assert_eq!(found.iter().map(|d| d.id).collect::<Vec<_>>(), [due.id]);
}

pub async fn an_api_key_keeps_its_domain(kind: StoreKind) {
    let s = test_store(kind).await;
    let acme = domain("acme.com", 0);
    s.store.create_domain(&acme, &created(&acme)).await.unwrap();
    let token = ApiToken::from_random([7; 24]);
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(t0()),
        name: "acme only".into(),
        token_prefix: token.display_prefix(),
        permission: ApiKeyPermission::SendingAccess,
        domain_id: Some(acme.id),
        created_at: t0(),
        revoked_at: None,
    };
    s.store
        .create_api_key(&record, &token.hash())
        .await
        .unwrap();
    let found = s.store.find_api_key(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found.domain_id, Some(acme.id));
}
