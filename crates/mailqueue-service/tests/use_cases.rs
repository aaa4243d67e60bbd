//! The use cases beside accepting email, on a real store: API keys,
//! webhooks and their secrets, suppressions listed by hand.

#![allow(clippy::unwrap_used)]

use chrono::{Duration, TimeZone, Utc};
use mailqueue_core::api_key::{ApiKeyName, ApiKeyPermission};
use mailqueue_core::suppression::{SuppressionOrigin, SuppressionQuery};
use mailqueue_core::webhooks::{Endpoint, WebhookEventType};
use mailqueue_core::{EmailAddress, WebhookId};
use mailqueue_service::api_keys::create_api_key;
use mailqueue_service::suppressions::add_manual_suppressions;
use mailqueue_service::webhooks::{create_webhook, rotate_webhook_secret};
use mailqueue_testkit::{test_store, StoreKind};

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()
}

#[tokio::test]
async fn an_api_key_is_stored_by_its_hash_and_found_by_its_token() {
    let s = test_store(StoreKind::Sqlite).await;
    let name = ApiKeyName::parse("ci").unwrap();
    let (record, token) = create_api_key(
        s.store.as_ref(),
        &name,
        ApiKeyPermission::SendingAccess,
        None,
        t0(),
    )
    .await
    .unwrap();
    assert!(token.expose().starts_with(&record.token_prefix));
    let found = s.store.find_api_key(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found, record);
    let (_, other) = create_api_key(
        s.store.as_ref(),
        &name,
        ApiKeyPermission::FullAccess,
        None,
        t0(),
    )
    .await
    .unwrap();
    assert_ne!(other.expose(), token.expose(), "every token is fresh");
}

#[tokio::test]
async fn a_webhook_is_created_enabled_with_a_fresh_secret() {
    let s = test_store(StoreKind::Sqlite).await;
    let endpoint = Endpoint::parse("https://hooks.example.com/mq").unwrap();
    let made = create_webhook(
        s.store.as_ref(),
        endpoint.clone(),
        vec![WebhookEventType::EmailSent],
        t0(),
    )
    .await
    .unwrap();
    let stored = s.store.get_webhook(made.id).await.unwrap().unwrap();
    assert_eq!(stored, made);
    assert!(made.signing_secret.expose().starts_with("whsec_"));
    let again = create_webhook(s.store.as_ref(), endpoint, vec![], t0())
        .await
        .unwrap();
    assert_ne!(again.signing_secret, made.signing_secret);
}

#[tokio::test]
async fn rotating_twice_keeps_every_secret_in_its_grace_signing() {
    let s = test_store(StoreKind::Sqlite).await;
    let endpoint = Endpoint::parse("https://hooks.example.com/mq").unwrap();
    let made = create_webhook(
        s.store.as_ref(),
        endpoint,
        vec![WebhookEventType::EmailSent],
        t0(),
    )
    .await
    .unwrap();
    let grace = Duration::hours(24);
    let first = rotate_webhook_secret(s.store.as_ref(), made.id, t0(), grace)
        .await
        .unwrap()
        .unwrap();
    let later = t0() + Duration::seconds(40);
    let second = rotate_webhook_secret(s.store.as_ref(), made.id, later, grace)
        .await
        .unwrap()
        .unwrap();
    let signing = second.signing_secrets(later);
    assert_eq!(
        signing,
        [
            second.signing_secret.clone(),
            first.signing_secret.clone(),
            made.signing_secret.clone()
        ]
    );
    assert_eq!(s.store.get_webhook(made.id).await.unwrap().unwrap(), second);
    let unknown = WebhookId::generate(t0());
    assert!(
        rotate_webhook_secret(s.store.as_ref(), unknown, t0(), grace)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn manual_suppressions_list_each_address_once_without_case() {
    let s = test_store(StoreKind::Sqlite).await;
    let addresses: Vec<EmailAddress> = ["Gone@Example.com", "gone@example.com", "other@x.io"]
        .iter()
        .map(|a| EmailAddress::parse(a).unwrap())
        .collect();
    let listed = add_manual_suppressions(s.store.as_ref(), &addresses, Some("asked".into()), t0())
        .await
        .unwrap();
    let emails: Vec<&str> = listed.iter().map(|e| e.email.as_str()).collect();
    assert_eq!(emails, ["gone@example.com", "other@x.io"]);
    assert!(listed.iter().all(|e| e.origin == SuppressionOrigin::Manual));
    // Listing again answers the entries already there.
    let again = add_manual_suppressions(s.store.as_ref(), &addresses[..1], None, t0())
        .await
        .unwrap();
    assert_eq!(again[0].id, listed[0].id);
    let all = s
        .store
        .list_suppressions(&SuppressionQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
}
