//! The sending-domain use cases over a real store, a real DNS server
//! (dnslib) and the real resolver, on a clock the test moves: the leader's
//! schedule of checks, and the sender rules as a front end asks for them.

#![allow(clippy::unwrap_used)]

use chrono::{Duration, DurationRound, Utc};
use mailqueue_core::domains::{
    DkimAlgorithm, DomainName, RecordsConfig, Region, TlsPolicy, VerificationStatus,
};
use mailqueue_core::upkeep::LeaderTask;
use mailqueue_core::{Clock, EmailAddress, ManualClock};
use mailqueue_dkim::{DnsServers, HickoryLookup, KeySealer, MailAuthKeys};
use mailqueue_metrics::Metrics;
use mailqueue_service::domains::{DomainChecks, DomainSetup, Domains, NewDomain};
use mailqueue_service::ServiceError;
use mailqueue_testkit::{test_store, LocalDns, StoreKind};
use std::sync::Arc;

async fn domains(
    dns: &LocalDns,
    kind: StoreKind,
    require_verified: bool,
) -> (
    Arc<Domains>,
    ManualClock,
    Arc<Metrics>,
    mailqueue_testkit::TestStore,
) {
    let store = test_store(kind).await;
    let clock = ManualClock::new(
        Utc::now()
            .duration_trunc(Duration::milliseconds(1))
            .unwrap(),
    );
    let metrics = Arc::new(Metrics::new());
    let lookup = HickoryLookup::new(&DnsServers::parse(&dns.address()).unwrap()).unwrap();
    let setup = DomainSetup {
        keys: Arc::new(MailAuthKeys::new(KeySealer::new(None))),
        dns: Arc::new(lookup),
        records: RecordsConfig {
            bounce_mx_host: Some("mx.mailqueue.test".into()),
            spf_mechanisms: "mx".into(),
        },
        require_verified,
        creation_refused: None,
    };
    let d = Domains::new(
        store.store.clone(),
        setup,
        Arc::new(clock.clone()),
        metrics.clone(),
    );
    (d, clock, metrics, store)
}

fn new_domain(name: &str) -> NewDomain {
    NewDomain {
        name: DomainName::parse(name).unwrap(),
        region: Region::UsEast1,
        custom_return_path: "send".into(),
        open_tracking: false,
        click_tracking: false,
        tls: TlsPolicy::Opportunistic,
        tracking_subdomain: None,
        algorithm: DkimAlgorithm::Ed25519,
    }
}

fn records_json(
    d: &mailqueue_core::domains::Domain,
    config: &RecordsConfig,
) -> Vec<serde_json::Value> {
    serde_json::to_value(d.dns_records(config))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_leader_checks_due_domains_on_their_schedule() {
    let dns = LocalDns::start().await;
    let (domains, clock, metrics, store) = domains(&dns, StoreKind::Sqlite, false).await;
    let acme = domains.create(new_domain("acme.test")).await.unwrap();
    let checks = DomainChecks(domains.clone());
    checks.run_once().await;
    assert_eq!(
        domains.get(acme.id).await.unwrap().checked_at,
        None,
        "never asked: never checked"
    );

    // Asked for (as the API's verify does, without its background check):
    // the leader checks it now, finds nothing, and looks again a minute on.
    let asked = domains.rotate_key(acme.id, None).await.unwrap();
    assert_eq!(asked.next_check_at, Some(clock.now()));
    domains.check_due().await.unwrap();
    let failed = domains.get(acme.id).await.unwrap();
    assert_eq!(failed.status, VerificationStatus::Failed);
    assert_eq!(
        failed.next_check_at,
        Some(clock.now() + Duration::minutes(1))
    );

    // Published meanwhile: the next due check verifies it (the rotation's
    // key is seen too, and signs from then on).
    dns.publish(
        "acme.test",
        &records_json(&failed, domains.records_config()),
    );
    assert_eq!(domains.check_due().await.unwrap(), 0, "not due yet");
    clock.advance(Duration::minutes(1));
    assert_eq!(domains.check_due().await.unwrap(), 1);
    let verified = domains.get(acme.id).await.unwrap();
    assert_eq!(
        verified.status,
        VerificationStatus::Verified,
        "{verified:?}"
    );
    assert_eq!(verified.signing_key().unwrap().selector, "mq2");
    assert_eq!(
        verified.next_check_at,
        Some(clock.now() + Duration::hours(24))
    );
    assert!(metrics.render().contains("domains{status=\"verified\"} 1"));

    // A day on, the record is gone: the daily check notices.
    dns.remove("mq2._domainkey.acme.test");
    clock.advance(Duration::hours(24));
    assert_eq!(domains.check_due().await.unwrap(), 1);
    let lost = domains.get(acme.id).await.unwrap();
    assert_eq!(lost.status, VerificationStatus::PartiallyVerified);
    assert!(
        lost.signing_key().is_none(),
        "a key whose record is gone does not sign"
    );
    drop(store);
}

#[tokio::test]
async fn unverified_domains_are_left_alone_after_three_days() {
    let dns = LocalDns::start().await;
    let (domains, clock, _, _store) = domains(&dns, StoreKind::Postgres, false).await;
    let acme = domains.create(new_domain("acme.test")).await.unwrap();
    domains.rotate_key(acme.id, None).await.unwrap();
    let mut checks = 0;
    while let Some(at) = domains.get(acme.id).await.unwrap().next_check_at {
        clock.set(at);
        checks += domains.check_due().await.unwrap();
        assert!(checks < 200, "the checks end");
    }
    let last = domains.get(acme.id).await.unwrap();
    assert_eq!(last.status, VerificationStatus::Failed);
    assert!(
        last.checked_at.unwrap() - acme.created_at >= Duration::hours(71),
        "{last:?}"
    );
    assert!((60..200).contains(&checks), "{checks} checks in three days");
}

#[tokio::test]
async fn sender_rules_follow_the_domains() {
    let dns = LocalDns::start().await;
    let (domains, _, _, _store) = domains(&dns, StoreKind::Sqlite, true).await;
    let sender = EmailAddress::parse("a@news.acme.test").unwrap();
    let refused = domains.check_senders(None, &[&sender]).await;
    assert!(
        matches!(refused, Err(ServiceError::SenderRefused(_))),
        "{refused:?}"
    );
    let acme = domains.create(new_domain("acme.test")).await.unwrap();
    dns.publish("acme.test", &records_json(&acme, domains.records_config()));
    let checked = domains.check(acme.id).await.unwrap();
    assert_eq!(checked.status, VerificationStatus::Verified);
    domains.check_senders(None, &[&sender]).await.unwrap();
    domains
        .check_senders(Some(acme.id), &[&sender])
        .await
        .unwrap();
    let other = EmailAddress::parse("a@other.test").unwrap();
    assert!(domains
        .check_senders(Some(acme.id), &[&other])
        .await
        .is_err());
    assert!(matches!(
        domains.create(new_domain("ACME.test")).await,
        Err(ServiceError::DomainExists(_))
    ));
}
