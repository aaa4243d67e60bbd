//! The webhook sender driven one round at a time (`Webhooks::step`), on a
//! real store and a real HTTP receiver, under a clock the tests hold.

#![allow(clippy::unwrap_used)]

use chrono::{Duration, DurationRound, Utc};
use mailqueue_core::webhooks::{
    DeliveryOutcome, DisablePolicy, Endpoint, RetrySchedule, WebhookChange, WebhookEventType,
    WebhookStatus,
};
use mailqueue_core::{Clock, EmailId, ManualClock, WebhookId};
use mailqueue_metrics::Metrics;
use mailqueue_service::webhooks::create_webhook;
use mailqueue_testkit::{
    accepted_group, plain_email, test_store, ReceiverAnswers, StoreKind, TestStore, WebhookReceiver,
};
use mailqueue_webhooks::{WebhookSettings, Webhooks};
use std::sync::Arc;
use std::time::Duration as StdDuration;

struct Sender {
    webhooks: Webhooks,
    clock: ManualClock,
    receiver: WebhookReceiver,
    webhook: WebhookId,
    store: TestStore,
}

async fn sender(kind: StoreKind, answers: ReceiverAnswers, allow_private: bool) -> Sender {
    let receiver = WebhookReceiver::start(answers);
    let store = test_store(kind).await;
    let clock = ManualClock::new(
        Utc::now()
            .duration_trunc(Duration::milliseconds(1))
            .unwrap(),
    );
    let endpoint = Endpoint::parse(&receiver.url()).unwrap();
    let events = vec![WebhookEventType::EmailSent];
    let webhook = create_webhook(store.store.as_ref(), endpoint, events, clock.now())
        .await
        .unwrap();
    let webhooks = Webhooks {
        store: store.store.clone(),
        clock: Arc::new(clock.clone()),
        metrics: Arc::new(Metrics::new()),
        settings: WebhookSettings {
            holder: "hook-steps".into(),
            concurrency: 1,
            per_webhook: 1,
            timeout: StdDuration::from_secs(5),
            schedule: "1s,1s,1s,1s,1s".parse::<RetrySchedule>().unwrap(),
            disable: DisablePolicy {
                after: Duration::seconds(2),
            },
            allow_private,
            poll: StdDuration::from_millis(50),
        },
    };
    Sender {
        webhooks,
        clock,
        receiver,
        webhook: webhook.id,
        store,
    }
}

impl Sender {
    /// Accepts an email, which writes `email.sent` and its delivery.
    async fn an_event(&self) -> EmailId {
        let email = plain_email("noreply@acme.test", &["a@example.com"]);
        let (id, group) = accepted_group(email, self.clock.now());
        self.store.store.insert_emails(&[group]).await.unwrap();
        id
    }

    async fn status(&self) -> WebhookStatus {
        let w = self.store.store.get_webhook(self.webhook).await.unwrap();
        w.unwrap().status
    }
}

#[tokio::test]
async fn an_event_is_delivered_signed_once() {
    let s = sender(StoreKind::Sqlite, ReceiverAnswers::Statuses(vec![]), true).await;
    let email = s.an_event().await;
    let reports = s.webhooks.step(10).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, DeliveryOutcome::Delivered);
    let got = s.receiver.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].header("svix-signature").starts_with("v1,"));
    assert_eq!(got[0].json()["data"]["email_id"], email.to_string());
    assert!(
        s.webhooks.step(10).await.unwrap().is_empty(),
        "delivered once"
    );
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_on_schedule_then_disabled_and_left_alone() {
    let failing = ReceiverAnswers::Statuses(vec![503; 100]);
    let s = sender(StoreKind::Postgres, failing, true).await;
    s.an_event().await;
    let first = s.webhooks.step(10).await.unwrap();
    let DeliveryOutcome::RetryAt(at) = first[0].outcome else {
        panic!("{:?}", first[0].outcome)
    };
    assert_eq!(
        at,
        s.clock.now() + Duration::seconds(1),
        "the schedule's first delay"
    );
    assert!(s.webhooks.step(10).await.unwrap().is_empty(), "not due yet");
    let mut tries = 1;
    while s.status().await == WebhookStatus::Enabled {
        s.clock.advance(Duration::seconds(1));
        tries += s.webhooks.step(10).await.unwrap().len();
        assert!(tries < 10, "never disabled");
    }
    assert_eq!(s.receiver.received().len(), tries);
    // Disabled: however late it gets, its pending delivery is not sent.
    s.clock.advance(Duration::hours(1));
    assert!(s.webhooks.step(10).await.unwrap().is_empty());
    assert_eq!(s.receiver.received().len(), tries, "nothing more is sent");
    // Enabled again, the pending delivery goes out.
    let enable = WebhookChange {
        status: Some(WebhookStatus::Enabled),
        ..Default::default()
    };
    s.store
        .store
        .update_webhook(s.webhook, &enable)
        .await
        .unwrap();
    assert_eq!(s.webhooks.step(10).await.unwrap().len(), 1);
    assert_eq!(s.receiver.received().len(), tries + 1);
}

#[tokio::test]
async fn a_private_address_is_refused_without_a_request() {
    let s = sender(StoreKind::Sqlite, ReceiverAnswers::Statuses(vec![]), false).await;
    s.an_event().await;
    let reports = s.webhooks.step(10).await.unwrap();
    assert!(matches!(reports[0].outcome, DeliveryOutcome::RetryAt(_)));
    let error = reports[0].error.as_deref().unwrap();
    assert!(
        error.contains("not a public address") || error.contains("private"),
        "{error}"
    );
    assert!(s.receiver.received().is_empty());
}
