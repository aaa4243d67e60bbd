//! The rate limiter contract, held in process and on Redis: slots spaced
//! by the rate, shared by every bucket of an email, reservations beyond
//! the horizon kept for the email's return.

#![allow(clippy::unwrap_used)]

use mailqueue_core::rate::{Bucket, BucketKind, RateLimiter};
use mailqueue_core::EmailId;
use mailqueue_queue::{InProcessRateLimiter, RedisQueue, RedisRateLimiter, RedisSettings};
use mailqueue_testkit::{unique_suffix, RedisServer};
use std::sync::Arc;
use std::time::Duration;

fn bucket(name: &str, rate: &str, kind: BucketKind) -> Bucket {
    Bucket {
        name: name.into(),
        limit: rate.parse().unwrap(),
        kind,
    }
}

fn id(n: u128) -> EmailId {
    EmailId(uuid::Uuid::from_u128(n))
}

fn close(actual: Duration, expected_ms: u64) -> bool {
    let a = actual.as_secs_f64() * 1000.0;
    (a - expected_ms as f64).abs() <= 15.0
}

async fn slots_are_spaced_and_far_ones_are_kept(limiter: &dyn RateLimiter) {
    let global = bucket("global", "10/s", BucketKind::Global);
    let horizon = Duration::from_millis(250);
    let mut waits = Vec::new();
    for n in 0..5 {
        let r = limiter
            .reserve(id(n), std::slice::from_ref(&global), horizon)
            .await
            .unwrap();
        waits.push(r.wait);
    }
    for (n, wait) in waits.iter().enumerate() {
        assert!(close(*wait, 100 * n as u64), "slot {n} in {wait:?}");
    }
    // Email 4's slot (400 ms) lay beyond the horizon: it is kept for it.
    let again = limiter
        .reserve(id(4), std::slice::from_ref(&global), horizon)
        .await
        .unwrap();
    assert!(close(again.wait, 400), "{again:?}");
    // ... and the next email queues up behind it, not on top of it.
    let next = limiter
        .reserve(id(5), std::slice::from_ref(&global), horizon)
        .await
        .unwrap();
    assert!(close(next.wait, 500), "{next:?}");
}

async fn a_domain_bucket_binds_only_its_own_emails(limiter: &dyn RateLimiter) {
    let global = bucket("global", "1000/s", BucketKind::Global);
    let slow = bucket("domain:slow.test", "5/s", BucketKind::Domain);
    let horizon = Duration::from_secs(1);
    let both = [global.clone(), slow.clone()];
    let first = limiter.reserve(id(1), &both, horizon).await.unwrap();
    assert!(close(first.wait, 0));
    let second = limiter.reserve(id(2), &both, horizon).await.unwrap();
    assert!(close(second.wait, 200), "{second:?}");
    assert_eq!(second.binding, Some(1), "the domain set the time");
    // An email to another domain only waits for the global bucket.
    let other = limiter
        .reserve(id(3), std::slice::from_ref(&global), horizon)
        .await
        .unwrap();
    assert!(other.wait < Duration::from_millis(20), "{other:?}");
}

#[tokio::test]
async fn the_in_process_limiter_keeps_the_contract() {
    slots_are_spaced_and_far_ones_are_kept(&InProcessRateLimiter::new()).await;
    a_domain_bucket_binds_only_its_own_emails(&InProcessRateLimiter::new()).await;
}

#[tokio::test]
async fn the_redis_limiter_keeps_the_contract() {
    let server = RedisServer::start(false);
    let limiter = |prefix: String| {
        let queue = Arc::new(
            RedisQueue::new(RedisSettings {
                url: server.url(),
                prefix,
                visibility_timeout: Duration::from_secs(1),
                timeout: Duration::from_secs(2),
            })
            .unwrap(),
        );
        RedisRateLimiter::new(queue)
    };
    slots_are_spaced_and_far_ones_are_kept(&limiter(unique_suffix())).await;
    a_domain_bucket_binds_only_its_own_emails(&limiter(unique_suffix())).await;
}
