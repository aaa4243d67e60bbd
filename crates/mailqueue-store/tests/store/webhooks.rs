//! Webhooks and their outbox: managed as the API does, deliveries queued
//! with the events they carry, claimed once under a lease and at most a
//! few per webhook, outcomes fenced by holder and attempt, and endpoints
//! that keep failing disabled.

use crate::support::*;
use chrono::{DateTime, Duration, Utc};
use mailqueue_core::store::Store;
use mailqueue_core::webhooks::{
    ClaimedDelivery, DeliveryClaim, DeliveryOutcome, DeliveryReport, DeliveryStatus, DisablePolicy,
    Endpoint, OutboxEvent, PreviousSecret, SigningSecret, Webhook, WebhookChange, WebhookEventType,
    WebhookPage, WebhookStatus,
};
use mailqueue_core::WebhookId;
use mailqueue_testkit::{test_store, StoreKind};

fn webhook(at: DateTime<Utc>, events: &[&str]) -> Webhook {
    Webhook {
        id: WebhookId::generate(at),
        endpoint: Endpoint::parse("https://hooks.example.com/mq").unwrap(),
        events: events.iter().map(|e| e.parse().unwrap()).collect(),
        status: WebhookStatus::Enabled,
        signing_secret: SigningSecret::from_key(&[at.timestamp_subsec_millis() as u8; 24]),
        previous_secrets: Vec::new(),
        created_at: at,
        failing_since: None,
        disabled_reason: None,
    }
}

fn delivery_claim(holder: &str, now: DateTime<Utc>, per_webhook: u32) -> DeliveryClaim {
    DeliveryClaim {
        holder: holder.into(),
        now,
        lease_expires_at: now + Duration::seconds(30),
        limit: 100,
        per_webhook,
        held: Vec::new(),
    }
}

fn report(c: &ClaimedDelivery, at: DateTime<Utc>, outcome: DeliveryOutcome) -> DeliveryReport {
    let ok = outcome == DeliveryOutcome::Delivered;
    DeliveryReport {
        webhook_id: c.webhook_id,
        event_id: c.event.id(),
        attempt: c.attempt,
        attempted_at: at,
        duration_ms: 12,
        status_code: Some(if ok { 200 } else { 500 }),
        error: (!ok).then(|| "the endpoint answered 500".to_string()),
        outcome,
    }
}

/// Records one report under the default disabling policy.
async fn record(store: &dyn Store, holder: &str, r: DeliveryReport) {
    store
        .record_webhook_deliveries(holder, &[r], &DisablePolicy::default())
        .await
        .unwrap();
}

async fn create(store: &dyn Store, w: &Webhook) {
    store.create_webhook(w).await.unwrap();
}

pub async fn webhooks_are_created_listed_changed_and_deleted(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let first = webhook(t0(), &["email.sent", "email.bounced"]);
    let second = webhook(t0() + Duration::seconds(1), &["email.delivered"]);
    create(store, &first).await;
    create(store, &second).await;
    assert_eq!(
        store.get_webhook(first.id).await.unwrap(),
        Some(first.clone())
    );

    let page = |limit, after, before| WebhookPage {
        limit,
        after,
        before,
    };
    let ids = |v: Vec<Webhook>| v.into_iter().map(|w| w.id).collect::<Vec<_>>();
    let all = store.list_webhooks(&page(10, None, None)).await.unwrap();
    assert_eq!(ids(all), [second.id, first.id], "newest first");
    let older = store
        .list_webhooks(&page(10, Some(second.id), None))
        .await
        .unwrap();
    assert_eq!(ids(older), [first.id]);
    let newer = store
        .list_webhooks(&page(10, None, Some(first.id)))
        .await
        .unwrap();
    assert_eq!(ids(newer), [second.id]);

    let changed = store
        .update_webhook(
            first.id,
            &WebhookChange {
                endpoint: Some(Endpoint::parse("http://other.example.com/h").unwrap()),
                events: Some(vec![WebhookEventType::EmailFailed]),
                status: Some(WebhookStatus::Disabled),
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.endpoint.as_str(), "http://other.example.com/h");
    assert_eq!(changed.events, [WebhookEventType::EmailFailed]);
    assert_eq!(changed.status, WebhookStatus::Disabled);
    let unknown = WebhookId::generate(t0());
    assert_eq!(
        store
            .update_webhook(unknown, &WebhookChange::default())
            .await
            .unwrap(),
        None
    );

    let fresh = SigningSecret::from_key(&[9; 24]);
    let until = t0() + Duration::hours(24);
    let rotation = first.rotation(fresh.clone(), t0(), until);
    assert!(store
        .rotate_webhook_secret(first.id, &rotation)
        .await
        .unwrap());
    let rotated = store.get_webhook(first.id).await.unwrap().unwrap();
    assert_eq!(rotated.signing_secret, fresh);
    assert_eq!(
        rotated.previous_secrets,
        [PreviousSecret {
            secret: first.signing_secret.clone(),
            until
        }]
    );
    assert!(
        !store
            .rotate_webhook_secret(first.id, &rotation)
            .await
            .unwrap(),
        "a rotation decided on a secret that is gone does not apply"
    );
    // Rotating again keeps both earlier secrets signing.
    let third = SigningSecret::from_key(&[10; 24]);
    let later = t0() + Duration::seconds(30);
    let again = rotated.rotation(third.clone(), later, later + Duration::hours(24));
    assert!(store.rotate_webhook_secret(first.id, &again).await.unwrap());
    let twice = store.get_webhook(first.id).await.unwrap().unwrap();
    assert_eq!(
        twice.signing_secrets(later),
        [third.clone(), fresh.clone(), first.signing_secret.clone()],
        "every secret in its grace signs"
    );
    assert_eq!(
        twice.signing_secrets(until).len(),
        2,
        "the first stops at the end of its own grace"
    );

    assert!(store.delete_webhook(first.id).await.unwrap());
    assert!(!store.delete_webhook(first.id).await.unwrap());
    assert_eq!(store.get_webhook(first.id).await.unwrap(), None);
}

pub async fn deliveries_are_claimed_once_retried_and_fenced(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let subscribed = webhook(t0(), &["email.sent"]);
    let other_type = webhook(t0(), &["email.delivered"]);
    let mut disabled = webhook(t0(), &["email.sent"]);
    disabled.status = WebhookStatus::Disabled;
    for w in [&subscribed, &other_type, &disabled] {
        create(store, w).await;
    }
    let mut e = email("Hooked");
    e.tags = vec![mailqueue_core::Tag {
        name: "kind".into(),
        value: Some("welcome".into()),
    }];
    let email_id = insert(store, e, t0()).await;
    let stats = store.webhook_outbox_stats().await.unwrap();
    assert_eq!((stats.pending, stats.oldest_pending_at), (1, Some(t0())));

    let now = t0() + Duration::milliseconds(10);
    let claimed = store
        .claim_webhook_deliveries(&delivery_claim("w1", now, 4))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "one subscribed, enabled webhook");
    let c = &claimed[0];
    assert_eq!((c.webhook_id, c.attempt), (subscribed.id, 1));
    let OutboxEvent::Email { event, email } = &c.event else {
        panic!("an email's event: {:?}", c.event)
    };
    assert_eq!(event.email_id, email_id);
    assert_eq!(email.subject, "Hooked");
    assert_eq!(email.from, "Acme <noreply@acme.test>");
    assert_eq!(email.to, ["a@example.com"]);
    assert_eq!(email.tags[0].name, "kind");
    assert_eq!(c.secrets, std::slice::from_ref(&subscribed.signing_secret));
    let again = store
        .claim_webhook_deliveries(&delivery_claim("w2", now, 4))
        .await
        .unwrap();
    assert!(again.is_empty(), "a leased delivery is not claimed twice");

    let retry_at = now + Duration::seconds(5);
    record(
        store,
        "w1",
        report(c, now, DeliveryOutcome::RetryAt(retry_at)),
    )
    .await;
    let d = store
        .get_webhook_delivery(subscribed.id, c.event.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!((d.attempts, d.next_attempt_at), (1, Some(retry_at)));
    assert_eq!(d.last_status_code, Some(500));
    let early = store
        .claim_webhook_deliveries(&delivery_claim("w1", now + Duration::seconds(1), 4))
        .await
        .unwrap();
    assert!(early.is_empty(), "not due before its retry time");

    let second = store
        .claim_webhook_deliveries(&delivery_claim("w2", retry_at, 4))
        .await
        .unwrap();
    assert_eq!(second[0].attempt, 2);
    // The first attempt's outcome again (a late, duplicate report) cannot
    // move a delivery another holder has since claimed.
    record(store, "w1", report(c, retry_at, DeliveryOutcome::Failed)).await;
    let d = store
        .get_webhook_delivery(subscribed.id, c.event.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending, "fenced out");
    record(
        store,
        "w2",
        report(&second[0], retry_at, DeliveryOutcome::Delivered),
    )
    .await;
    let d = store
        .get_webhook_delivery(subscribed.id, c.event.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
    assert_eq!(
        codes_of(store, subscribed.id, c.event.id()).await,
        [Some(500), Some(500), Some(200)],
        "every try is history"
    );
    assert_eq!(store.webhook_outbox_stats().await.unwrap().pending, 0);

    let log = store
        .list_webhook_deliveries(
            subscribed.id,
            &WebhookPage {
                limit: 10,
                after: None,
                before: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].event.type_name(), "email.sent");

    assert!(store
        .replay_webhook_delivery(subscribed.id, c.event.id(), retry_at)
        .await
        .unwrap());
    let replayed = store
        .claim_webhook_deliveries(&delivery_claim("w3", retry_at, 4))
        .await
        .unwrap();
    assert_eq!((replayed.len(), replayed[0].attempt), (1, 1));
    assert!(!store
        .replay_webhook_delivery(other_type.id, c.event.id(), retry_at)
        .await
        .unwrap());
    assert_eq!(
        codes_of(store, subscribed.id, c.event.id()).await,
        [Some(500), Some(500), Some(200)],
        "a replay keeps the delivering try in the history"
    );
    let replay_at = retry_at + Duration::seconds(1);
    record(
        store,
        "w3",
        report(&replayed[0], replay_at, DeliveryOutcome::Delivered),
    )
    .await;
    let tries = store
        .list_webhook_attempts(subscribed.id, c.event.id())
        .await
        .unwrap();
    let seen: Vec<(Option<u16>, DateTime<Utc>)> = tries
        .iter()
        .map(|a| (a.status_code, a.attempted_at))
        .collect();
    assert_eq!(
        seen,
        [
            (Some(500), now),
            (Some(500), retry_at),
            (Some(200), retry_at),
            (Some(200), replay_at)
        ],
        "oldest first, the latest delivering try last"
    );
    assert_eq!(tries[3].duration_ms, 12);

    // Deleting the webhook deletes its outbox with it.
    assert!(store.delete_webhook(subscribed.id).await.unwrap());
    let page = WebhookPage {
        limit: 10,
        after: None,
        before: None,
    };
    let log = store
        .list_webhook_deliveries(subscribed.id, &page)
        .await
        .unwrap();
    assert!(log.is_empty(), "{log:?}");
    assert!(store
        .list_webhook_attempts(subscribed.id, c.event.id())
        .await
        .unwrap()
        .is_empty());
}

async fn codes_of(
    store: &dyn Store,
    webhook: WebhookId,
    event: mailqueue_core::EventId,
) -> Vec<Option<u16>> {
    store
        .list_webhook_attempts(webhook, event)
        .await
        .unwrap()
        .iter()
        .map(|a| a.status_code)
        .collect()
}

pub async fn claims_are_bounded_per_webhook_and_expired_leases_retaken(kind: StoreKind) {
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let a = webhook(t0(), &["email.sent"]);
    let b = webhook(t0() + Duration::seconds(1), &["email.sent"]);
    create(store, &a).await;
    create(store, &b).await;
    for i in 0..5 {
        insert(store, email("many"), t0() + Duration::milliseconds(i)).await;
    }
    let now = t0() + Duration::seconds(1);
    let first = store
        .claim_webhook_deliveries(&delivery_claim("w1", now, 2))
        .await
        .unwrap();
    let of = |v: &[ClaimedDelivery], w: WebhookId| v.iter().filter(|c| c.webhook_id == w).count();
    assert_eq!((of(&first, a.id), of(&first, b.id)), (2, 2));
    // A claimer that holds one of `a`'s takes one more of `a` and two of `b`.
    let mut holding = delivery_claim("w1", now, 2);
    holding.held = vec![(a.id, 1)];
    let more = store.claim_webhook_deliveries(&holding).await.unwrap();
    assert_eq!((of(&more, a.id), of(&more, b.id)), (1, 2), "{more:?}");
    // One that holds its share of both takes nothing.
    holding.held = vec![(a.id, 2), (b.id, 2)];
    assert!(
        store
            .claim_webhook_deliveries(&holding)
            .await
            .unwrap()
            .is_empty(),
        "each webhook has its two in flight"
    );

    let later = now + Duration::seconds(31);
    let retaken = store
        .claim_webhook_deliveries(&delivery_claim("w2", later, 2))
        .await
        .unwrap();
    assert_eq!(retaken.len(), 4, "expired leases are claimed again");
    assert!(retaken.iter().all(|c| c.attempt == 2));

    // `a` fails for the whole period of the policy: it is disabled, and its
    // deliveries wait.
    let policy = DisablePolicy {
        after: Duration::minutes(10),
    };
    let fail = |c: &ClaimedDelivery, at| report(c, at, DeliveryOutcome::RetryAt(at));
    let of_a: Vec<&ClaimedDelivery> = retaken.iter().filter(|c| c.webhook_id == a.id).collect();
    store
        .record_webhook_deliveries("w2", &[fail(of_a[0], later)], &policy)
        .await
        .unwrap();
    let w = store.get_webhook(a.id).await.unwrap().unwrap();
    assert_eq!(
        (w.status, w.failing_since),
        (WebhookStatus::Enabled, Some(later))
    );
    let end = later + Duration::minutes(10);
    store
        .record_webhook_deliveries("w2", &[fail(of_a[1], end)], &policy)
        .await
        .unwrap();
    let w = store.get_webhook(a.id).await.unwrap().unwrap();
    assert_eq!(w.status, WebhookStatus::Disabled);
    assert_eq!(w.disabled_reason, Some(policy.reason()));
    let after = store
        .claim_webhook_deliveries(&delivery_claim("w3", end + Duration::hours(1), 5))
        .await
        .unwrap();
    assert!(
        after.iter().all(|c| c.webhook_id == b.id),
        "a's deliveries wait"
    );
    assert_eq!(of(&after, b.id), 5);

    let enabled = store
        .update_webhook(
            a.id,
            &WebhookChange {
                status: Some(WebhookStatus::Enabled),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (enabled.failing_since, enabled.disabled_reason),
        (None, None)
    );
}

/// A subscription stored under a name no event type has (written by a
/// newer version, or by hand) is reported as corrupt, not read as some
/// other subscription.
#[tokio::test]
async fn an_unknown_stored_event_type_is_corrupt() {
    let s = test_store(StoreKind::Postgres).await;
    let store = s.store.as_ref();
    let w = webhook(t0(), &["email.sent"]);
    create(store, &w).await;
    let mut conn = s.database().unwrap().connect().await;
    sqlx::query("UPDATE webhooks SET events = ARRAY['email.unheard_of']")
        .execute(&mut conn)
        .await
        .unwrap();
    let read = store.get_webhook(w.id).await;
    assert!(
        matches!(read, Err(mailqueue_core::store::StoreError::Corrupt(ref m)) if m.contains("email.unheard_of")),
        "{read:?}"
    );
}

/// Domain events go out through the same outbox as email events: each
/// written only with the change it tells of, delivered with its stored
/// payload, listed without an email, and deleted by retention with its
/// deliveries; an email's deliveries go with the email.
pub async fn account_events_are_delivered_with_their_change_and_retained(kind: StoreKind) {
    use crate::domains::{created, deleted, domain, updated};
    let s = test_store(kind).await;
    let store = s.store.as_ref();
    let domains = webhook(
        t0(),
        &["domain.created", "domain.updated", "domain.deleted"],
    );
    let emails_only = webhook(t0(), &["email.sent"]);
    let mut disabled = webhook(t0(), &["domain.created"]);
    disabled.status = WebhookStatus::Disabled;
    for w in [&domains, &emails_only, &disabled] {
        create(store, w).await;
    }
    let acme = domain("acme.com", 0);
    let (made, refused) = (created(&acme), created(&acme));
    assert!(store.create_domain(&acme, &made).await.unwrap());
    assert!(!store
        .create_domain(&domain("acme.com", 1), &refused)
        .await
        .unwrap());
    let mut verified = acme.clone();
    verified.status = mailqueue_core::domains::VerificationStatus::Verified;
    assert!(!store
        .save_domain(
            &mailqueue_core::domains::Domain {
                revision: 7,
                ..verified.clone()
            },
            Some(&updated(&verified))
        )
        .await
        .unwrap());
    let changed = updated(&verified);
    assert!(store.save_domain(&verified, Some(&changed)).await.unwrap());
    let gone = deleted(&verified);
    assert!(!store.delete_domain(acme.id, 0, &gone).await.unwrap());
    assert!(store.delete_domain(acme.id, 1, &gone).await.unwrap());
    assert_eq!(
        store.webhook_outbox_stats().await.unwrap().pending,
        3,
        "one delivery per applied change, none for the refused ones"
    );

    let now = t0() + Duration::milliseconds(10);
    let claimed = store
        .claim_webhook_deliveries(&delivery_claim("w1", now, 10))
        .await
        .unwrap();
    let mut kinds: Vec<(String, String)> = claimed
        .iter()
        .map(|c| {
            assert_eq!(c.webhook_id, domains.id);
            let OutboxEvent::Account(a) = &c.event else {
                panic!("an account event: {:?}", c.event)
            };
            assert!(
                [made.id, changed.id, gone.id].contains(&a.id) && a.id != refused.id,
                "the events of the changes that applied"
            );
            let p = c.event.payload();
            assert_eq!(p["data"]["name"], "acme.com");
            assert_eq!(p["data"]["id"], acme.id.to_string());
            (
                p["type"].as_str().unwrap().to_string(),
                p["data"]["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("domain.created".to_string(), "not_started".to_string()),
            ("domain.deleted".to_string(), "verified".to_string()),
            ("domain.updated".to_string(), "verified".to_string()),
        ]
    );
    record(
        store,
        "w1",
        report(&claimed[0], now, DeliveryOutcome::Delivered),
    )
    .await;
    let page = WebhookPage {
        limit: 10,
        after: None,
        before: None,
    };
    let log = store
        .list_webhook_deliveries(domains.id, &page)
        .await
        .unwrap();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|d| d.event.email_id().is_none()));
    let one = store
        .get_webhook_delivery(domains.id, claimed[0].event.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.status, DeliveryStatus::Delivered);

    // An email event's deliveries beside them, and both kinds of retention.
    let email_id = insert(store, email("Hooked"), t0()).await;
    store.cancel_email(email_id, t0()).await.unwrap();
    let log = |w| store.list_webhook_deliveries(w, &page);
    assert_eq!(log(emails_only.id).await.unwrap().len(), 1);
    assert_eq!(
        store
            .purge_account_events(t0() + Duration::seconds(1), 2)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .purge_account_events(t0() + Duration::seconds(1), 2)
            .await
            .unwrap(),
        1
    );
    assert!(log(domains.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .purge_finished_emails(t0() + Duration::seconds(1), 10)
            .await
            .unwrap(),
        1
    );
    assert!(log(emails_only.id).await.unwrap().is_empty());
    assert_eq!(store.webhook_outbox_stats().await.unwrap().pending, 0);
}
