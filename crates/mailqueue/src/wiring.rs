//! The parts a process is made of, each built from the config: the store,
//! the dispatch queue, the transport, the lease holder's name, the data
//! directory's lock. [`crate::app`] composes them by role.

use crate::config::Config;
use anyhow::Context;
use mailqueue_core::queue::DispatchQueue;
use mailqueue_core::rate::RateLimiter;
use mailqueue_core::store::Store;
use mailqueue_core::transport::{ConnectionSlots, Transport};
use mailqueue_queue::{
    InProcessQueue, InProcessRateLimiter, RedisConnectionSlots, RedisQueue, RedisRateLimiter,
    RedisSettings,
};
use mailqueue_smtp::{OutboxTransport, SmtpRelay, SmtpSettings};
use mailqueue_store::{PgSettings, PgStore, SqliteSettings, SqliteStore};
use std::sync::Arc;
use std::time::Duration;

/// The lease holder name of the embedded mode: one process per data
/// directory (enforced by a file lock), so its leftovers are its own.
pub const EMBEDDED_HOLDER: &str = "embedded";

/// Which database backs the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Opens the store named by the config and brings its schema up to date
/// (migrations are idempotent, and concurrent starts wait on a lock).
pub async fn open_store(config: &Config) -> anyhow::Result<(Arc<dyn Store>, Backend)> {
    match &config.database_url {
        Some(url) => {
            let store = PgStore::connect(&PgSettings {
                url: url.expose().to_string(),
                max_connections: config.database_max_connections,
                acquire_timeout: Duration::from_secs(5),
            })
            .await?;
            store.migrate().await?;
            Ok((Arc::new(store), Backend::Postgres))
        }
        None => {
            let store = SqliteStore::open(&SqliteSettings {
                path: config.sqlite_path(),
                readers: 4,
            })
            .await?;
            Ok((Arc::new(store), Backend::Sqlite))
        }
    }
}

pub fn lease_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "mailqueue".into());
    let salt = getrandom::u32().unwrap_or(0) & 0xffff;
    format!("{host}:{}:{salt:04x}", std::process::id())
}

/// The relay (with the fleet's connection cap, when there is one), or the
/// outbox directory.
pub fn transport(config: &Config, dispatch: &Dispatch) -> anyhow::Result<Arc<dyn Transport>> {
    Ok(match &config.smtp_url {
        Some(url) => {
            let relay = SmtpRelay::new(&SmtpSettings {
                url: url.expose().to_string(),
                pool_size: config
                    .smtp_pool_size
                    .unwrap_or(config.worker_concurrency as u32),
                timeout: config.smtp_timeout,
                hello_name: config.smtp_hello_name.clone(),
            })?;
            match &dispatch.connection_slots {
                Some(slots) => Arc::new(relay.with_fleet_slots(slots.clone(), lease_holder())),
                None => Arc::new(relay),
            }
        }
        None => {
            let dir = config.data_dir.join("outbox");
            let outbox = OutboxTransport::new(dir.clone())
                .with_context(|| format!("creating the outbox directory {}", dir.display()))?;
            tracing::warn!(
                outbox = %dir.display(),
                "MAILQUEUE_SMTP_URL is not set: emails are written to the outbox directory, not sent"
            );
            Arc::new(outbox)
        }
    })
}

/// Holds the data directory for one process (embedded mode only).
pub fn lock_data_dir(config: &Config) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let path = config.data_dir.join("mailqueue.lock");
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another mailqueue is already serving the data directory {}",
            config.data_dir.display()
        )
    })?;
    Ok(file)
}

/// How work is shared: the dispatch queue, the rate limiter and the
/// fleet's relay connection slots.
pub struct Dispatch {
    pub queue: Arc<dyn DispatchQueue>,
    /// Present when rate limits are configured.
    pub limiter: Option<Arc<dyn RateLimiter>>,
    /// Present when the fleet's relay connections are capped.
    pub connection_slots: Option<Arc<dyn ConnectionSlots>>,
}

/// Redis with `REDIS_URL` (reached lazily: a process starts, and accepts,
/// while it is down), in process otherwise.
pub fn dispatch(config: &Config) -> anyhow::Result<Dispatch> {
    let limited = !config.rate_limits.is_empty();
    Ok(match &config.redis_url {
        Some(url) => {
            let queue = Arc::new(RedisQueue::new(RedisSettings {
                url: url.expose().to_string(),
                prefix: config.redis_prefix.clone(),
                visibility_timeout: Duration::from_secs(60),
                timeout: Duration::from_secs(5),
            })?);
            let limiter = limited
                .then(|| Arc::new(RedisRateLimiter::new(queue.clone())) as Arc<dyn RateLimiter>);
            let connection_slots = config.smtp_fleet_connections.map(|max| {
                Arc::new(RedisConnectionSlots::new(queue.clone(), max)) as Arc<dyn ConnectionSlots>
            });
            Dispatch {
                queue,
                limiter,
                connection_slots,
            }
        }
        None => Dispatch {
            queue: Arc::new(InProcessQueue::new()),
            limiter: limited.then(|| Arc::new(InProcessRateLimiter::new()) as Arc<dyn RateLimiter>),
            connection_slots: None,
        },
    })
}
