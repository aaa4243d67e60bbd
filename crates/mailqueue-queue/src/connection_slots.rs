//! The fleet's relay connection slots on Redis: a sorted set of holders
//! scored by when their slot lapses (Redis server time), so the slots of a
//! process that died come back after their time to live.

use crate::redis_queue::RedisQueue;
use async_trait::async_trait;
use mailqueue_core::queue::QueueError;
use mailqueue_core::transport::ConnectionSlots;
use redis::Script;
use std::sync::Arc;
use std::time::Duration;

/// KEYS: the slot set. ARGV: holder, ttl ms, most slots.
const TAKE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  return 1
end
return 0
"#;

/// KEYS: the slot set. ARGV: ttl ms, holders. Only slots still held.
const RENEW: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
return 1
"#;

pub struct RedisConnectionSlots {
    queue: Arc<RedisQueue>,
    max: u32,
    take: Script,
    renew: Script,
}

impl RedisConnectionSlots {
    /// At most `max` connections for the fleet, on the queue's Redis.
    pub fn new(queue: Arc<RedisQueue>, max: u32) -> Self {
        Self {
            queue,
            max,
            take: Script::new(TAKE),
            renew: Script::new(RENEW),
        }
    }

    fn key(&self) -> String {
        self.queue.key("smtp:connections")
    }
}

fn slot_error(e: redis::RedisError) -> QueueError {
    QueueError(format!("relay connection slots in Redis: {e}"))
}

#[async_trait]
impl ConnectionSlots for RedisConnectionSlots {
    async fn try_take(&self, holder: &str, ttl: Duration) -> Result<bool, QueueError> {
        let mut conn = self.queue.connection().await?;
        let taken: i64 = self
            .take
            .key(self.key())
            .arg(holder)
            .arg(ttl.as_millis() as u64)
            .arg(self.max)
            .invoke_async(&mut conn)
            .await
            .map_err(slot_error)?;
        Ok(taken == 1)
    }

    async fn renew(&self, holders: &[String], ttl: Duration) -> Result<(), QueueError> {
        if holders.is_empty() {
            return Ok(());
        }
        let mut conn = self.queue.connection().await?;
        let mut call = self.renew.prepare_invoke();
        call.key(self.key()).arg(ttl.as_millis() as u64);
        for h in holders {
            call.arg(h);
        }
        call.invoke_async::<i64>(&mut conn)
            .await
            .map_err(slot_error)?;
        Ok(())
    }

    async fn give_back(&self, holder: &str) -> Result<(), QueueError> {
        let mut conn = self.queue.connection().await?;
        redis::cmd("ZREM")
            .arg(self.key())
            .arg(holder)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(slot_error)
    }
}
