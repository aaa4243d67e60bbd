//! The account's configuration through the service, as a front end asks
//! for it: every change lands in the store at the service's clock, and
//! what the store refuses or cannot find comes back as such.

#![allow(clippy::unwrap_used)]

use chrono::{Duration, DurationRound, Utc};
use mailqueue_core::api_key::{ApiKeyName, ApiKeyPermission};
use mailqueue_core::store::{ApiKeySelector, StoreError};
use mailqueue_core::suppression::{SuppressionOrigin, SuppressionRef};
use mailqueue_core::webhooks::{
    Endpoint, WebhookChange, WebhookEventType, WebhookPage, WebhookStatus,
};
use mailqueue_core::{Clock, EmailAddress, EventId, ManualClock};
use mailqueue_metrics::Metrics;
use mailqueue_queue::InProcessQueue;
use mailqueue_service::{EmailService, ServiceError, ServiceSettings};
use mailqueue_testkit::{test_store, StoreKind, TestStore};
use std::sync::Arc;

async fn service(kind: StoreKind) -> (EmailService, ManualClock, TestStore) {
    let store = test_store(kind).await;
    let clock = ManualClock::new(
        Utc::now()
            .duration_trunc(Duration::milliseconds(1))
            .unwrap(),
    );
    let service = EmailService::new(
        store.store.clone(),
        Arc::new(InProcessQueue::new()),
        Arc::new(clock.clone()),
        Arc::new(Metrics::new()),
        ServiceSettings::default(),
    );
    (service, clock, store)
}

const KINDS: [StoreKind; 2] = [StoreKind::Sqlite, StoreKind::Postgres];

#[tokio::test]
async fn api_keys_are_made_and_revoked_at_the_service_clock() {
    for kind in KINDS {
        let (service, clock, store) = service(kind).await;
        let name = ApiKeyName::parse("deploys").unwrap();
        let (made, token) = service
            .create_api_key(&name, ApiKeyPermission::SendingAccess, None)
            .await
            .unwrap();
        assert_eq!(made.created_at, clock.now());
        let found = store.store.find_api_key(&token.hash()).await.unwrap();
        assert_eq!(found, Some(made.clone()));
        clock.advance(Duration::minutes(5));
        let selector = ApiKeySelector::Id(made.id);
        assert_eq!(service.revoke_api_key(&selector).await.unwrap(), 1);
        assert_eq!(service.revoke_api_key(&selector).await.unwrap(), 0);
        let listed = store.store.list_api_keys().await.unwrap();
        assert_eq!(listed[0].revoked_at, Some(clock.now()), "{kind:?}");
        assert!(store
            .store
            .find_api_key(&token.hash())
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn a_webhook_is_changed_rotated_and_deleted_through_the_service() {
    for kind in KINDS {
        let (service, clock, store) = service(kind).await;
        let endpoint = Endpoint::parse("https://hooks.example.com/mq").unwrap();
        let made = service
            .create_webhook(endpoint, vec![WebhookEventType::EmailBounced])
            .await
            .unwrap();
        assert_eq!(made.created_at, clock.now());
        let disable = WebhookChange {
            events: Some(vec![WebhookEventType::EmailFailed]),
            status: Some(WebhookStatus::Disabled),
            ..Default::default()
        };
        let changed = service.update_webhook(made.id, &disable).await.unwrap();
        let changed = changed.unwrap();
        assert_eq!(changed.events, [WebhookEventType::EmailFailed]);
        assert_eq!(changed.status, WebhookStatus::Disabled);
        clock.advance(Duration::minutes(1));
        let grace = Duration::hours(2);
        let rotated = service.rotate_webhook_secret(made.id, grace).await.unwrap();
        let rotated = rotated.unwrap();
        assert_ne!(rotated.signing_secret, made.signing_secret);
        assert_eq!(rotated.previous_secrets[0].secret, made.signing_secret);
        assert_eq!(rotated.previous_secrets[0].until, clock.now() + grace);
        let stored = store.store.get_webhook(made.id).await.unwrap().unwrap();
        assert_eq!(stored, rotated, "{kind:?}");
        let no_event = EventId::generate(clock.now());
        let replayed = service.replay_webhook_delivery(made.id, no_event).await;
        assert!(!replayed.unwrap(), "no such delivery");
        assert!(service.delete_webhook(made.id).await.unwrap());
        assert!(!service.delete_webhook(made.id).await.unwrap());
        let gone = service.rotate_webhook_secret(made.id, grace).await.unwrap();
        assert!(gone.is_none());
    }
}

#[tokio::test]
async fn suppressions_by_hand_are_listed_once_and_removed_once() {
    for kind in KINDS {
        let (service, clock, _store) = service(kind).await;
        let addresses: Vec<EmailAddress> = ["Ann@Example.com", "ann@example.com", "bo@example.com"]
            .iter()
            .map(|a| EmailAddress::parse(a).unwrap())
            .collect();
        let listed = service
            .add_suppressions(&addresses, Some("asked".into()))
            .await
            .unwrap();
        assert_eq!(listed.len(), 2, "one entry per address, whatever its case");
        assert!(listed.iter().all(|s| s.origin == SuppressionOrigin::Manual
            && s.created_at == clock.now()
            && s.reason.as_deref() == Some("asked")));
        let by_id = SuppressionRef::Id(listed[0].id);
        let by_address = SuppressionRef::Email("bo@example.com".into());
        let removed = service
            .remove_suppressions(&[by_id.clone(), by_address.clone()])
            .await
            .unwrap();
        assert!(removed.iter().all(Option::is_some), "{kind:?}");
        let again = service.remove_suppressions(&[by_id, by_address]).await;
        assert!(again.unwrap().iter().all(Option::is_none));
    }
}

/// A store that refuses the row (a trigger raising a check violation):
/// the refusal reaches the front end as such, and nothing is stored.
#[tokio::test]
async fn a_webhook_the_store_refuses_is_a_refusal_and_leaves_nothing() {
    let (service, _clock, store) = service(StoreKind::Postgres).await;
    let mut conn = store.database().unwrap().connect().await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN RAISE EXCEPTION 'refused by policy' USING ERRCODE = 'check_violation'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON webhooks FOR EACH ROW EXECUTE FUNCTION refuse();",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let endpoint = Endpoint::parse("https://hooks.example.com/mq").unwrap();
    let made = service
        .create_webhook(endpoint, vec![WebhookEventType::EmailSent])
        .await;
    assert!(
        matches!(made, Err(ServiceError::Store(StoreError::Rejected(_)))),
        "{made:?}"
    );
    let page = WebhookPage {
        limit: 10,
        after: None,
        before: None,
    };
    assert!(store.store.list_webhooks(&page).await.unwrap().is_empty());
}
