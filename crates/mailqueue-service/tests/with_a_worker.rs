//! The use cases followed by the worker's next round (`Delivery::step`):
//! what a client asks for is what gets sent, on a real store, the
//! in-process queue and a real SMTP relay, under one clock.

#![allow(clippy::unwrap_used)]

use chrono::{Duration, DurationRound, Utc};
use mailqueue_core::api_key::{ApiKeyName, ApiKeyPermission};
use mailqueue_core::random::FixedJitter;
use mailqueue_core::retention::RetentionPolicy;
use mailqueue_core::store::{AttemptResult, IdempotencyScope};
use mailqueue_core::{ApiKeyId, Clock, EmailId, EmailStatus, ManualClock, NewEmail};
use mailqueue_delivery::{Delivery, DeliverySettings, Step};
use mailqueue_metrics::Metrics;
use mailqueue_queue::InProcessQueue;
use mailqueue_service::{AcceptOutcome, EmailService, Idempotency, ServiceSettings};
use mailqueue_smtp::{SmtpRelay, SmtpSettings};
use mailqueue_testkit::{plain_email, test_store, RelayOptions, StoreKind, TestRelay, TestStore};
use std::sync::Arc;
use std::time::Duration as StdDuration;

/// A service and a worker sharing a store, a queue and a clock.
struct Setup {
    service: EmailService,
    worker: Delivery,
    clock: ManualClock,
    relay: TestRelay,
    key: ApiKeyId,
    store: TestStore,
}

async fn setup(kind: StoreKind, relay: RelayOptions) -> Setup {
    let relay = TestRelay::start(relay).await;
    let store = test_store(kind).await;
    let clock = ManualClock::new(
        Utc::now()
            .duration_trunc(Duration::milliseconds(1))
            .unwrap(),
    );
    let (record, _) = mailqueue_service::api_keys::create_api_key(
        store.store.as_ref(),
        &ApiKeyName::parse("steps").unwrap(),
        ApiKeyPermission::FullAccess,
        None,
        clock.now(),
    )
    .await
    .unwrap();
    let (service, worker) = on_queue(&store, &relay, &clock, Arc::new(InProcessQueue::new()));
    Setup {
        service,
        worker,
        clock,
        relay,
        key: record.id,
        store,
    }
}

/// The service and the worker over `queue`.
fn on_queue(
    store: &TestStore,
    relay: &TestRelay,
    clock: &ManualClock,
    queue: Arc<InProcessQueue>,
) -> (EmailService, Delivery) {
    let metrics = Arc::new(Metrics::new());
    let service = EmailService::new(
        store.store.clone(),
        queue.clone(),
        Arc::new(clock.clone()),
        metrics.clone(),
        ServiceSettings::default(),
    );
    let transport = SmtpRelay::new(&SmtpSettings {
        url: relay.url(),
        pool_size: 1,
        timeout: StdDuration::from_secs(5),
        hello_name: Some("worker.test".into()),
    })
    .unwrap();
    let worker = Delivery {
        store: store.store.clone(),
        queue,
        transport: Arc::new(transport),
        limiter: None,
        clock: Arc::new(clock.clone()),
        jitter: Arc::new(FixedJitter(0.0)),
        policy: Default::default(),
        metrics,
        settings: DeliverySettings {
            concurrency: 1,
            lease: StdDuration::from_secs(120),
            holder: "service-steps".into(),
            send_timeout: StdDuration::from_secs(20),
            shutdown_grace: StdDuration::from_secs(1),
            rescue_interval: StdDuration::from_secs(1),
            reconcile_interval: StdDuration::from_secs(30),
            maintenance_lease: StdDuration::from_secs(10),
            idempotency_ttl: StdDuration::from_secs(600),
            retention: RetentionPolicy::new(None, None),
            retention_interval: StdDuration::from_secs(600),
            rate_limits: Default::default(),
            idle_poll: StdDuration::from_millis(50),
            return_paths: None,
        },
        senders: None,
        leader_tasks: Vec::new(),
    };
    (service, worker)
}

fn email(to: &str) -> NewEmail {
    plain_email("noreply@acme.test", &[to])
}

impl Setup {
    async fn accept(
        &self,
        email: NewEmail,
        idempotency: Option<Idempotency>,
    ) -> (EmailId, AcceptOutcome) {
        let mut ids = Vec::new();
        let outcome = self
            .service
            .accept(self.key, vec![email], idempotency, |accepted| {
                ids.extend(accepted.iter().map(|a| a.id));
                (200, format!("{{\"id\":\"{}\"}}", accepted[0].id))
            })
            .await
            .unwrap();
        let id = match &outcome {
            AcceptOutcome::Committed { body } | AcceptOutcome::Replay { body, .. } => {
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                v["id"].as_str().unwrap().parse().unwrap()
            }
        };
        (id, outcome)
    }

    async fn step(&self) -> Step {
        self.worker.step(10).await.unwrap()
    }

    async fn status(&self, id: EmailId) -> EmailStatus {
        self.store
            .store
            .get_email(id)
            .await
            .unwrap()
            .unwrap()
            .status
    }
}

fn scheduled(to: &str, at: chrono::DateTime<Utc>) -> NewEmail {
    let mut e = email(to);
    e.scheduled_at = Some(at);
    e
}

#[tokio::test]
async fn an_accepted_email_goes_out_in_the_next_round() {
    let s = setup(StoreKind::Sqlite, RelayOptions::default()).await;
    let (id, _) = s.accept(email("a@example.com"), None).await;
    assert_eq!(s.status(id).await, EmailStatus::Queued);
    let step = s.step().await;
    assert_eq!(step.claimed, 1);
    assert_eq!(s.status(id).await, EmailStatus::Sent);
    let sent = s.relay.messages();
    assert_eq!(sent[0].rcpt_to, ["a@example.com"]);
    let wire = String::from_utf8_lossy(&sent[0].wire);
    assert!(wire.contains(&format!("<{id}@acme.test>")), "{wire}");
}

#[tokio::test]
async fn a_cancelled_email_is_never_sent() {
    let s = setup(StoreKind::Postgres, RelayOptions::default()).await;
    let at = s.clock.now() + Duration::hours(1);
    let (id, _) = s.accept(scheduled("a@example.com", at), None).await;
    s.service.cancel(id).await.unwrap();
    s.clock.advance(Duration::hours(2));
    assert_eq!(s.step().await.claimed, 0);
    assert_eq!(s.status(id).await, EmailStatus::Cancelled);
    assert!(s.relay.messages().is_empty());
}

#[tokio::test]
async fn a_reschedule_moves_the_send_to_the_new_time() {
    let s = setup(StoreKind::Sqlite, RelayOptions::default()).await;
    let (id, _) = s
        .accept(
            scheduled("a@example.com", s.clock.now() + Duration::hours(1)),
            None,
        )
        .await;
    s.service
        .reschedule(id, s.clock.now() + Duration::minutes(1))
        .await
        .unwrap();
    s.clock.advance(Duration::seconds(59));
    assert_eq!(s.step().await.claimed, 0, "not before its new time");
    s.clock.advance(Duration::seconds(1));
    assert_eq!(
        s.step().await.claimed,
        1,
        "at its new time, not its old one"
    );
    assert_eq!(s.status(id).await, EmailStatus::Sent);
}

#[tokio::test]
async fn a_failed_email_retried_by_hand_goes_through_the_suppression_list() {
    let gone = RelayOptions {
        rcpt_replies: vec![("gone@example.com".into(), 550)],
        ..Default::default()
    };
    let s = setup(StoreKind::Postgres, gone).await;
    let (id, _) = s.accept(email("gone@example.com"), None).await;
    let first = s.step().await;
    assert!(matches!(first.outcomes[0].result, AttemptResult::Failed(_)));
    s.service.retry(id).await.unwrap();
    assert_eq!(s.status(id).await, EmailStatus::Queued);
    let second = s.step().await;
    assert!(
        matches!(second.outcomes[0].result, AttemptResult::Suppressed),
        "the bounce put the address on the list: {:?}",
        second.outcomes[0].result
    );
    assert_eq!(s.relay.sessions(), 1, "the retry opened no SMTP session");
}

#[tokio::test]
async fn a_repeated_idempotent_request_is_sent_once() {
    let s = setup(StoreKind::Sqlite, RelayOptions::default()).await;
    let key = || Idempotency {
        scope: IdempotencyScope {
            api_key_id: s.key,
            key: "order-17".into(),
        },
        fingerprint: [7; 32],
    };
    let (first, outcome) = s.accept(email("a@example.com"), Some(key())).await;
    assert!(matches!(outcome, AcceptOutcome::Committed { .. }));
    let (again, outcome) = s.accept(email("a@example.com"), Some(key())).await;
    assert!(matches!(outcome, AcceptOutcome::Replay { .. }));
    assert_eq!(first, again);
    assert_eq!(s.step().await.claimed, 1);
    assert_eq!(s.step().await.claimed, 0);
    assert_eq!(s.relay.messages().len(), 1);
}

#[tokio::test]
async fn requeueing_all_rebuilds_a_lost_queue() {
    let s = setup(StoreKind::Sqlite, RelayOptions::default()).await;
    let (id, _) = s.accept(email("a@example.com"), None).await;
    // A new, empty queue (a Redis restarted without persistence).
    let (service, worker) = on_queue(
        &s.store,
        &s.relay,
        &s.clock,
        Arc::new(InProcessQueue::new()),
    );
    assert_eq!(
        worker.step(10).await.unwrap().claimed,
        0,
        "the queue lost it"
    );
    let counts = service.requeue_all().await.unwrap();
    assert_eq!(counts.due_now, 1);
    assert_eq!(worker.step(10).await.unwrap().claimed, 1);
    assert_eq!(s.status(id).await, EmailStatus::Sent);
}
