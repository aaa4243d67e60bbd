//! The dispatch queue contract, held by the in-process queue and by the
//! Redis queue (a private redis-server per test, a fresh prefix each).

#![allow(clippy::unwrap_used)]

use chrono::{Duration as Span, Utc};
use mailqueue_core::queue::DispatchQueue;
use mailqueue_core::store::DueEmail;
use mailqueue_core::{EmailId, Priority};
use mailqueue_queue::{InProcessQueue, RedisQueue, RedisSettings};
use mailqueue_testkit::{unique_suffix, RedisServer};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn due(n: u128, at: chrono::DateTime<Utc>, priority: Priority) -> DueEmail {
    DueEmail {
        id: EmailId(uuid::Uuid::from_u128(n)),
        due_at: at,
        priority,
    }
}

/// Now, in whole milliseconds: queues keep due times to the millisecond,
/// rounding up.
fn now_ms() -> chrono::DateTime<Utc> {
    use chrono::DurationRound;
    Utc::now().duration_trunc(Span::milliseconds(1)).unwrap()
}

fn redis_queue(server: &RedisServer, prefix: &str) -> RedisQueue {
    RedisQueue::new(RedisSettings {
        url: server.url(),
        prefix: prefix.into(),
        visibility_timeout: Duration::from_millis(300),
        timeout: Duration::from_secs(2),
    })
    .unwrap()
}

async fn orders_by_priority_then_due_time(q: &dyn DispatchQueue) {
    let now = now_ms();
    q.enqueue(&[
        due(1, now - Span::seconds(5), Priority::Low),
        due(2, now - Span::seconds(1), Priority::Normal),
        due(3, now - Span::seconds(9), Priority::Normal),
        due(4, now, Priority::High),
        due(5, now + Span::seconds(60), Priority::High),
    ])
    .await
    .unwrap();
    let taken = q.take_due(now, 10).await.unwrap();
    let ids: Vec<u128> = taken.iter().map(|d| d.id.0.as_u128()).collect();
    assert_eq!(ids, [4, 3, 2, 1]);
    assert_eq!(taken[0].priority, Priority::High);
    assert_eq!(taken[3].priority, Priority::Low);
    assert_eq!(
        taken[1].due_at.timestamp_millis(),
        (now - Span::seconds(9)).timestamp_millis()
    );
    let ids: Vec<EmailId> = taken.iter().map(|d| d.id).collect();
    q.ack(&ids).await.unwrap();
    assert_eq!(q.queued_count().await.unwrap(), 1);
    assert_eq!(
        q.next_due_at().await.unwrap().map(|t| t.timestamp_millis()),
        Some((now + Span::seconds(60)).timestamp_millis())
    );
    assert_eq!(q.take_due(now, 10).await.unwrap().len(), 0);
}

async fn an_id_is_queued_once(q: &dyn DispatchQueue) {
    let now = now_ms();
    q.enqueue(&[due(1, now + Span::hours(1), Priority::Normal)])
        .await
        .unwrap();
    q.enqueue(&[due(1, now, Priority::Normal)]).await.unwrap();
    assert_eq!(q.queued_count().await.unwrap(), 1);
    let taken = q.take_due(now, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    q.ack(&[taken[0].id]).await.unwrap();
    assert!(q
        .take_due(now + Span::hours(2), 10)
        .await
        .unwrap()
        .is_empty());
}

async fn respects_the_maximum(q: &dyn DispatchQueue) {
    let now = now_ms();
    let many: Vec<DueEmail> = (0..700)
        .map(|n| due(n, now - Span::milliseconds(n as i64), Priority::Normal))
        .collect();
    q.enqueue(&many).await.unwrap();
    assert_eq!(q.take_due(now, 512).await.unwrap().len(), 512);
    assert_eq!(q.take_due(now, 512).await.unwrap().len(), 188);
}

#[tokio::test]
async fn the_in_process_queue_keeps_the_contract() {
    orders_by_priority_then_due_time(&InProcessQueue::new()).await;
    an_id_is_queued_once(&InProcessQueue::new()).await;
    respects_the_maximum(&InProcessQueue::new()).await;
}

#[tokio::test]
async fn the_redis_queue_keeps_the_contract() {
    let server = RedisServer::start(false);
    orders_by_priority_then_due_time(&redis_queue(&server, &unique_suffix())).await;
    an_id_is_queued_once(&redis_queue(&server, &unique_suffix())).await;
    respects_the_maximum(&redis_queue(&server, &unique_suffix())).await;
}

#[tokio::test]
async fn prefixes_keep_queues_apart_and_every_key_shares_one_hash_tag() {
    let server = RedisServer::start(false);
    let a = redis_queue(&server, "tenant-a");
    let b = redis_queue(&server, "tenant-b");
    let now = now_ms();
    a.enqueue(&[due(1, now, Priority::Normal)]).await.unwrap();
    b.enqueue(&[due(2, now, Priority::High)]).await.unwrap();
    let from_a = a.take_due(now, 10).await.unwrap();
    assert_eq!(from_a.len(), 1);
    assert_eq!(from_a[0].id.0.as_u128(), 1);
    assert_eq!(b.queued_count().await.unwrap(), 1);
    let keys = server.cli(&["KEYS", "*"]);
    for key in keys.lines().filter(|k| !k.is_empty()) {
        assert!(
            key.starts_with("{tenant-a}:") || key.starts_with("{tenant-b}:"),
            "{key} lies outside the prefixes"
        );
    }
}

#[tokio::test]
async fn taken_entries_come_back_unless_acknowledged() {
    let server = RedisServer::start(false);
    let q = redis_queue(&server, &unique_suffix());
    let now = now_ms();
    q.enqueue(&[due(1, now, Priority::High), due(2, now, Priority::Normal)])
        .await
        .unwrap();
    let taken = q.take_due(now, 10).await.unwrap();
    assert_eq!(taken.len(), 2);
    q.ack(&[taken[0].id]).await.unwrap();
    // The other taker died: after the visibility timeout its entry is due again.
    let later = now + Span::milliseconds(400);
    let back = q.take_due(later, 10).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].id, taken[1].id);
    assert_eq!(back[0].priority, Priority::Normal, "it keeps its priority");
    q.ack(&[back[0].id]).await.unwrap();
    assert!(q
        .take_due(later + Span::seconds(1), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        server.cli(&["DBSIZE"]).trim(),
        "0",
        "nothing is left behind"
    );
}

#[tokio::test]
async fn a_flushed_or_restarted_redis_reports_the_reset_once() {
    let mut server = RedisServer::start(false);
    let q = redis_queue(&server, &unique_suffix());
    assert!(q.take_reset().await.unwrap(), "a new queue must be built");
    assert!(!q.take_reset().await.unwrap());
    server.cli(&["FLUSHALL"]);
    assert!(q.take_reset().await.unwrap());
    assert!(!q.take_reset().await.unwrap());
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reset = loop {
        if let Ok(reset) = q.take_reset().await {
            break reset;
        }
        assert!(Instant::now() < deadline, "the queue reconnects");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(reset, "a restart without persistence lost the entries");
}

#[tokio::test]
async fn an_idle_worker_wakes_when_another_process_enqueues() {
    let server = RedisServer::start(false);
    let prefix = unique_suffix();
    let worker = Arc::new(redis_queue(&server, &prefix));
    let api = redis_queue(&server, &prefix);
    // Let the subscription settle, and use up the wake-up it leaves.
    worker.wait_for_work(Duration::from_millis(300)).await;
    let waiting = {
        let worker = worker.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            worker.wait_for_work(Duration::from_secs(10)).await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    api.enqueue(&[due(1, Utc::now(), Priority::Normal)])
        .await
        .unwrap();
    let waited = waiting.await.unwrap();
    assert!(waited < Duration::from_secs(2), "woken after {waited:?}");
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast_with_a_clear_error() {
    let q = RedisQueue::new(RedisSettings {
        url: format!("redis://127.0.0.1:{}", mailqueue_testkit::free_port()),
        prefix: "x".into(),
        visibility_timeout: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
    })
    .unwrap();
    let started = Instant::now();
    let e = q.ping().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(e.to_string().contains("Redis"), "{e}");
}
