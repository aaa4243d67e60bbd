//! The fleet's rate limiter on Redis: one Lua script reserves a slot in
//! every bucket of an email atomically (each bucket its own earliest slot;
//! the email goes at the latest), timed by the Redis server's own clock so
//! that workers with skewed clocks share one schedule.
//!
//! Keys: `{p}:rate:<bucket>` holds a bucket's theoretical arrival time in
//! ms (expiring once it lies in the past); `{p}:rate:held:<email id>` a
//! slot reserved beyond the horizon, until the email comes back.

use crate::redis_queue::RedisQueue;
use async_trait::async_trait;
use mailqueue_core::queue::QueueError;
use mailqueue_core::rate::{Bucket, RateLimiter, Reservation};
use mailqueue_core::EmailId;
use redis::Script;
use std::sync::Arc;
use std::time::Duration;

/// KEYS: the email's reservation, then its buckets. ARGV: horizon ms, then
/// each bucket's interval in ms (fractional). Returns `at`, `now` (ms, as
/// strings) and the index of the bucket that set `at` (-1 for none).
const RESERVE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local horizon = tonumber(ARGV[1])
local held = redis.call('GET', KEYS[1])
if held then
  local at = tonumber(held)
  if at <= now + horizon then redis.call('DEL', KEYS[1]) end
  return {tostring(at), tostring(now), '-1'}
end
local at, binding = now, -1
for i = 2, #KEYS do
  local slot = math.max(tonumber(redis.call('GET', KEYS[i]) or now), now)
  local next_tat = slot + tonumber(ARGV[i])
  redis.call('SET', KEYS[i], string.format('%.3f', next_tat), 'PX', math.ceil(next_tat - now) + 1000)
  if slot > at then at = slot; binding = i - 2 end
end
if at > now + horizon then
  redis.call('SET', KEYS[1], string.format('%.3f', at), 'PX', math.ceil(at - now) + 600000)
end
return {string.format('%.3f', at), string.format('%.3f', now), tostring(binding)}
"#;

pub struct RedisRateLimiter {
    queue: Arc<RedisQueue>,
    reserve: Script,
}

impl RedisRateLimiter {
    /// Uses the queue's connection and key prefix.
    pub fn new(queue: Arc<RedisQueue>) -> Self {
        Self {
            queue,
            reserve: Script::new(RESERVE),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn reserve(
        &self,
        email: EmailId,
        buckets: &[Bucket],
        horizon: Duration,
    ) -> Result<Reservation, QueueError> {
        let mut conn = self.queue.connection().await?;
        let mut call = self.reserve.prepare_invoke();
        call.key(self.queue.key(&format!("rate:held:{email}")))
            .arg(horizon.as_millis() as u64);
        for b in buckets {
            call.key(self.queue.key(&format!("rate:{}", b.name)))
                .arg(b.limit.interval.as_secs_f64() * 1000.0);
        }
        let answer: (String, String, i64) = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| QueueError(format!("reserving a sending slot in Redis: {e}")))?;
        let at: f64 = answer.0.parse().unwrap_or(0.0);
        let now: f64 = answer.1.parse().unwrap_or(0.0);
        Ok(Reservation {
            wait: Duration::from_secs_f64(((at - now) / 1000.0).max(0.0)),
            binding: usize::try_from(answer.2).ok(),
        })
    }
}
