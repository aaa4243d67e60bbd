//! The shared dispatch queue on Redis, for a fleet of API and worker
//! processes.
//!
//! Due entries live in one sorted set per priority, scored by due time;
//! taking moves them to an in-flight set with a visibility timeout, and the
//! worker acknowledges them once the store has decided about the claim. A
//! worker that dies between taking and acknowledging loses nothing: its
//! entries come back when the timeout passes (the next take puts them
//! back). Every operation is one Lua script (see `scripts.rs`), and every
//! key carries the prefix as its hash tag.
//!
//! The queue holds no truth: a job's id is the email's id, so dispatching
//! an email twice is harmless, and the store's claim decides who sends. If
//! Redis loses its data, `take_reset` says so and the maintainer rebuilds
//! the queue from the store. Idle workers wait on a pub/sub channel that
//! every enqueue of due work publishes to (`wakeup.rs`), so an idle fleet
//! sends Redis next to no commands.
//!
//! The connection is made lazily and remade after failures, so an API
//! process starts and keeps accepting while Redis is down.

mod scripts;
mod wakeup;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use mailqueue_core::email::Priority;
use mailqueue_core::queue::{due_millis, DispatchQueue, QueueError};
use mailqueue_core::store::DueEmail;
use mailqueue_core::EmailId;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How to reach Redis and name the keys.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    pub url: String,
    /// Every key starts with `{prefix}:`.
    pub prefix: String,
    /// How long a taken entry waits for its acknowledgement before it is
    /// due again.
    pub visibility_timeout: Duration,
    /// For connecting and for each command.
    pub timeout: Duration,
}

/// The key names of one queue.
#[derive(Clone, Debug)]
struct Keys {
    due: [String; 3],
    taken: String,
    taken_meta: String,
    epoch: String,
    wake_channel: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        let tag = format!("{{{prefix}}}");
        Self {
            due: [0, 1, 2].map(|rank| format!("{tag}:due:{rank}")),
            taken: format!("{tag}:taken"),
            taken_meta: format!("{tag}:taken:meta"),
            epoch: format!("{tag}:epoch"),
            wake_channel: format!("{tag}:work"),
        }
    }
}

pub struct RedisQueue {
    client: redis::Client,
    settings: RedisSettings,
    keys: Keys,
    connection: Mutex<Option<ConnectionManager>>,
    take: Script,
    enqueue: Script,
    ack: Script,
    wakeup: Arc<wakeup::Wakeup>,
}

fn queue_error(what: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError(format!("{what}: {e}"))
}

impl RedisQueue {
    /// Checks the URL; connects on first use. Starts the wake-up listener.
    pub fn new(settings: RedisSettings) -> Result<Self, QueueError> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| queue_error("REDIS_URL is not a valid Redis URL", e))?;
        let keys = Keys::new(&settings.prefix);
        let wakeup = wakeup::Wakeup::listen(client.clone(), keys.wake_channel.clone());
        Ok(Self {
            client,
            keys,
            connection: Mutex::new(None),
            take: Script::new(scripts::TAKE),
            enqueue: Script::new(scripts::ENQUEUE),
            ack: Script::new(scripts::ACK),
            wakeup,
            settings,
        })
    }

    /// A key of this queue's prefix (its hash tag): `{prefix}:name`.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{{{}}}:{name}", self.settings.prefix)
    }

    /// The shared connection, made now if there is none yet.
    pub(crate) async fn connection(&self) -> Result<ConnectionManager, QueueError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.settings.timeout)
            .set_response_timeout(self.settings.timeout)
            .set_number_of_retries(1)
            .set_max_delay(1_000);
        let c = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| queue_error("connecting to Redis", e))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    fn rank_of(rank: &str) -> Priority {
        rank.parse::<i16>()
            .ok()
            .and_then(Priority::from_rank)
            .unwrap_or_default()
    }
}

fn from_ms(ms: &str) -> DateTime<Utc> {
    let ms = ms.parse::<f64>().unwrap_or(0.0) as i64;
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[async_trait]
impl DispatchQueue for RedisQueue {
    async fn enqueue(&self, emails: &[DueEmail]) -> Result<(), QueueError> {
        if emails.is_empty() {
            return Ok(());
        }
        let mut conn = self.connection().await?;
        let mut call = self.enqueue.prepare_invoke();
        for key in &self.keys.due {
            call.key(key);
        }
        call.arg((Utc::now() + chrono::Duration::seconds(1)).timestamp_millis())
            .arg(&self.keys.wake_channel);
        for e in emails {
            call.arg(e.id.to_string())
                .arg(e.priority.rank())
                .arg(due_millis(e.due_at));
        }
        call.invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| queue_error("enqueueing in Redis", e))
    }

    async fn take_due(&self, now: DateTime<Utc>, max: usize) -> Result<Vec<DueEmail>, QueueError> {
        let mut conn = self.connection().await?;
        let mut call = self.take.prepare_invoke();
        for key in &self.keys.due {
            call.key(key);
        }
        call.key(&self.keys.taken)
            .key(&self.keys.taken_meta)
            .arg(now.timestamp_millis())
            .arg(max)
            .arg(self.settings.visibility_timeout.as_millis() as u64);
        let flat: Vec<String> = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| queue_error("taking due emails from Redis", e))?;
        Ok(flat
            .chunks_exact(3)
            .filter_map(|t| {
                Some(DueEmail {
                    id: t[0].parse().ok()?,
                    priority: Self::rank_of(&t[1]),
                    due_at: from_ms(&t[2]),
                })
            })
            .collect())
    }

    async fn ack(&self, ids: &[EmailId]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.connection().await?;
        let mut call = self.ack.prepare_invoke();
        call.key(&self.keys.taken).key(&self.keys.taken_meta);
        for id in ids {
            call.arg(id.to_string());
        }
        call.invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| queue_error("acknowledging taken entries in Redis", e))
    }

    /// The earliest due time, counting taken entries that will come back.
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, QueueError> {
        let mut conn = self.connection().await?;
        let mut pipe = redis::pipe();
        for key in self.keys.due.iter().chain([&self.keys.taken]) {
            pipe.cmd("ZRANGE").arg(key).arg(0).arg(0).arg("WITHSCORES");
        }
        let firsts: Vec<Vec<(String, f64)>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| queue_error("reading Redis", e))?;
        Ok(firsts
            .iter()
            .filter_map(|f| f.first().map(|(_, score)| *score as i64))
            .min()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
    }

    async fn queued_count(&self) -> Result<u64, QueueError> {
        let mut conn = self.connection().await?;
        let mut pipe = redis::pipe();
        for key in &self.keys.due {
            pipe.cmd("ZCARD").arg(key);
        }
        let counts: Vec<u64> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| queue_error("reading Redis", e))?;
        Ok(counts.iter().sum())
    }

    /// True when the epoch marker is missing: a Redis that restarted
    /// without persistence, or was flushed, or a queue never built. The
    /// marker is set in the same command, so only one caller sees true.
    async fn take_reset(&self) -> Result<bool, QueueError> {
        let mut conn = self.connection().await?;
        let set: Option<String> = redis::cmd("SET")
            .arg(&self.keys.epoch)
            .arg(Utc::now().timestamp_millis())
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(|e| queue_error("reading Redis", e))?;
        Ok(set.is_some())
    }

    async fn wait_for_work(&self, timeout: Duration) {
        self.wakeup.wait(timeout).await;
    }

    async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| queue_error("Redis does not answer", e))
    }
}
