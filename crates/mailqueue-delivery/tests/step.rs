//! The delivery worker driven one round at a time (`Delivery::step`), on a
//! real store, the in-process queue and a real SMTP relay, under a clock
//! and a jitter the tests hold.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, DurationRound, Utc};
use mailqueue_core::events::EventType;
use mailqueue_core::random::FixedJitter;
use mailqueue_core::retention::RetentionPolicy;
use mailqueue_core::retry::RetryDecision;
use mailqueue_core::store::AttemptResult;
use mailqueue_core::suppression::{Suppression, SuppressionOrigin};
use mailqueue_core::EmailAddress;
use mailqueue_core::{
    Clock, EmailId, EmailStatus, ManualClock, NewEmail, RetryPolicy, SuppressionId,
};
use mailqueue_delivery::{Delivery, DeliverySettings};
use mailqueue_metrics::Metrics;
use mailqueue_queue::InProcessQueue;
use mailqueue_smtp::{SmtpRelay, SmtpSettings};
use mailqueue_testkit::{
    accepted_group, plain_email, test_store, RelayOptions, StoreKind, TestRelay, TestStore,
};
use std::sync::Arc;
use std::time::Duration as StdDuration;

struct Worker {
    delivery: Delivery,
    clock: ManualClock,
    relay: TestRelay,
    _store: TestStore,
}

fn start_time() -> DateTime<Utc> {
    Utc::now()
        .duration_trunc(Duration::milliseconds(1))
        .unwrap()
}

async fn worker(kind: StoreKind, relay: RelayOptions) -> Worker {
    let relay = TestRelay::start(relay).await;
    let store = test_store(kind).await;
    let clock = ManualClock::new(start_time());
    let transport = SmtpRelay::new(&SmtpSettings {
        url: relay.url(),
        pool_size: 2,
        timeout: StdDuration::from_secs(5),
        hello_name: Some("worker.test".into()),
    })
    .unwrap();
    let delivery = Delivery {
        store: store.store.clone(),
        queue: Arc::new(InProcessQueue::new()),
        transport: Arc::new(transport),
        limiter: None,
        clock: Arc::new(clock.clone()),
        jitter: Arc::new(FixedJitter(0.5)),
        policy: RetryPolicy::default(),
        metrics: Arc::new(Metrics::new()),
        settings: DeliverySettings {
            concurrency: 2,
            lease: StdDuration::from_secs(300),
            holder: "stepper".into(),
            send_timeout: StdDuration::from_secs(30),
            shutdown_grace: StdDuration::from_secs(1),
            rescue_interval: StdDuration::from_secs(1),
            reconcile_interval: StdDuration::from_secs(60),
            maintenance_lease: StdDuration::from_secs(30),
            idempotency_ttl: StdDuration::from_secs(3600),
            retention: RetentionPolicy::new(None, None),
            retention_interval: StdDuration::from_secs(3600),
            rate_limits: Default::default(),
            idle_poll: StdDuration::from_millis(100),
            return_paths: None,
        },
        senders: None,
        leader_tasks: Vec::new(),
    };
    Worker {
        delivery,
        clock,
        relay,
        _store: store,
    }
}

fn email(to: &[&str]) -> NewEmail {
    plain_email("Acme <noreply@acme.test>", to)
}

impl Worker {
    /// Stores the email and puts it in the queue, as the service does.
    async fn accept(&self, email: NewEmail) -> EmailId {
        let (id, group) = accepted_group(email, self.clock.now());
        let due = group.emails[0].due();
        self.delivery.store.insert_emails(&[group]).await.unwrap();
        self.delivery.queue.enqueue(&[due]).await.unwrap();
        id
    }

    async fn status(&self, id: EmailId) -> EmailStatus {
        self.delivery
            .store
            .get_email(id)
            .await
            .unwrap()
            .unwrap()
            .status
    }

    fn counted(&self, t: EventType) -> u64 {
        self.delivery
            .metrics
            .events
            .get_or_create(&[("type", t.as_str())])
            .get()
    }
}

#[tokio::test]
async fn a_round_sends_a_due_email_and_records_it() {
    let w = worker(StoreKind::Sqlite, RelayOptions::default()).await;
    let id = w.accept(email(&["a@example.com"])).await;
    let step = w.delivery.step(10).await.unwrap();
    assert_eq!(step.claimed, 1);
    assert!(matches!(step.outcomes[0].result, AttemptResult::Sent(_)));
    assert_eq!(w.status(id).await, EmailStatus::Sent);
    assert_eq!(w.relay.messages()[0].rcpt_to, ["a@example.com"]);
    assert_eq!(w.counted(EventType::Delivered), 1);
    let idle = w.delivery.step(10).await.unwrap();
    assert_eq!(idle.claimed, 0, "nothing is left to send");
}

#[tokio::test]
async fn a_transient_refusal_is_retried_at_the_time_the_policy_and_jitter_give() {
    let busy = RelayOptions {
        rcpt_replies: vec![("busy@example.com".into(), 451)],
        ..Default::default()
    };
    let w = worker(StoreKind::Postgres, busy).await;
    let id = w.accept(email(&["busy@example.com"])).await;
    let first = w.delivery.step(10).await.unwrap();
    let AttemptResult::RetryAt(_, at) = first.outcomes[0].result else {
        panic!("{:?}", first.outcomes[0].result)
    };
    let o = &first.outcomes[0];
    let expected = w
        .delivery
        .policy
        .decide(1, o.started_at, o.finished_at, 0.5);
    assert_eq!(RetryDecision::RetryAt(at), expected);
    assert_eq!(w.status(id).await, EmailStatus::Queued);
    assert_eq!(w.counted(EventType::DeliveryDelayed), 1);
    assert_eq!(w.delivery.step(10).await.unwrap().claimed, 0, "not due yet");
    w.clock.set(at);
    let second = w.delivery.step(10).await.unwrap();
    assert_eq!(second.claimed, 1, "due at the retry time");
    assert_eq!(second.outcomes[0].attempt, 2);
}

#[tokio::test]
async fn a_scheduled_email_waits_for_its_time_and_then_counts_as_sent() {
    let w = worker(StoreKind::Sqlite, RelayOptions::default()).await;
    let mut later = email(&["a@example.com"]);
    later.scheduled_at = Some(w.clock.now() + Duration::minutes(10));
    let id = w.accept(later).await;
    assert_eq!(w.delivery.step(10).await.unwrap().claimed, 0);
    assert_eq!(w.status(id).await, EmailStatus::Scheduled);
    w.clock.advance(Duration::minutes(10));
    let step = w.delivery.step(10).await.unwrap();
    assert_eq!(step.claimed, 1);
    assert_eq!(w.status(id).await, EmailStatus::Sent);
    assert_eq!(w.counted(EventType::Sent), 1, "the claim that came due");
    assert_eq!(w.counted(EventType::Delivered), 1);
}

#[tokio::test]
async fn a_permanent_refusal_fails_the_email_and_suppresses_the_address() {
    let gone = RelayOptions {
        rcpt_replies: vec![("gone@example.com".into(), 550)],
        ..Default::default()
    };
    let w = worker(StoreKind::Sqlite, gone).await;
    let id = w.accept(email(&["gone@example.com"])).await;
    let step = w.delivery.step(10).await.unwrap();
    assert!(matches!(step.outcomes[0].result, AttemptResult::Failed(_)));
    assert_eq!(w.status(id).await, EmailStatus::Failed);
    assert_eq!(w.counted(EventType::Bounced), 1);
    let listed = w
        .delivery
        .store
        .suppressed_among(&[EmailAddress::parse("gone@example.com").unwrap()])
        .await
        .unwrap();
    assert_eq!(listed[0].origin, SuppressionOrigin::Bounce);
}

#[tokio::test]
async fn suppressed_recipients_are_left_out_and_an_email_with_none_left_is_not_sent() {
    let w = worker(StoreKind::Postgres, RelayOptions::default()).await;
    let now = w.clock.now();
    w.delivery
        .store
        .add_suppressions(&[Suppression {
            id: SuppressionId::generate(now),
            email: "blocked@example.com".into(),
            origin: SuppressionOrigin::Manual,
            reason: None,
            email_id: None,
            created_at: now,
        }])
        .await
        .unwrap();
    let both = w
        .accept(email(&["a@example.com", "blocked@example.com"]))
        .await;
    let alone = w.accept(email(&["blocked@example.com"])).await;
    let step = w.delivery.step(10).await.unwrap();
    assert_eq!(step.claimed, 2);
    assert_eq!(w.status(both).await, EmailStatus::Sent);
    assert_eq!(w.status(alone).await, EmailStatus::Failed);
    let messages = w.relay.messages();
    assert_eq!(
        messages.len(),
        1,
        "no transaction for the email with no one left"
    );
    assert_eq!(messages[0].rcpt_to, ["a@example.com"]);
    assert_eq!(w.counted(EventType::Suppressed), 2);
}

#[tokio::test]
async fn a_round_with_the_queue_ahead_of_the_store_sends_nothing_twice() {
    let w = worker(StoreKind::Sqlite, RelayOptions::default()).await;
    let id = w.accept(email(&["a@example.com"])).await;
    // A stale duplicate entry (a rebuilt queue, say) for an email already sent.
    w.delivery.step(10).await.unwrap();
    let due = mailqueue_core::store::DueEmail {
        id,
        due_at: w.clock.now(),
        priority: Default::default(),
    };
    w.delivery.queue.enqueue(&[due]).await.unwrap();
    let again = w.delivery.step(10).await.unwrap();
    assert_eq!(again.claimed, 0, "the store's claim refuses a sent email");
    assert_eq!(w.relay.messages().len(), 1);
}
