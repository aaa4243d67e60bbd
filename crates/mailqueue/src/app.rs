//! Wiring: config in, running service out.
//!
//! `Application::build` opens the store (PostgreSQL when `DATABASE_URL` is
//! set, SQLite otherwise), rebuilds the dispatch queue from it, picks the
//! transport and binds the listener; `run_until_stopped` serves until the
//! shutdown future resolves, then drains.

use crate::config::Config;
use crate::http_server::{self, HttpLimits};
use anyhow::Context;
use mailqueue_api::{ApiContext, ApiSettings, ApiState, AuthCache};
use mailqueue_core::queue::{requeue_pending, DispatchQueue};
use mailqueue_core::store::{EmailStore, Store};
use mailqueue_core::transport::Transport;
use mailqueue_core::{Clock, RetryPolicy};
use mailqueue_delivery::{Delivery, DeliverySettings};
use mailqueue_metrics::Metrics;
use mailqueue_queue::InProcessQueue;
use mailqueue_smtp::{OutboxTransport, SmtpRelay, SmtpSettings};
use mailqueue_store::{GroupCommitter, PgSettings, PgStore, SqliteSettings, SqliteStore};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The lease holder name of the embedded mode: one process per data
/// directory (enforced by a file lock), so its leftovers are its own.
const EMBEDDED_HOLDER: &str = "embedded";

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

fn lease_holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "mailqueue".into());
    let salt = getrandom::u32().unwrap_or(0) & 0xffff;
    format!("{host}:{}:{salt:04x}", std::process::id())
}

fn transport(config: &Config) -> anyhow::Result<Arc<dyn Transport>> {
    Ok(match &config.smtp_url {
        Some(url) => Arc::new(SmtpRelay::new(&SmtpSettings {
            url: url.expose().to_string(),
            pool_size: config
                .smtp_pool_size
                .unwrap_or(config.worker_concurrency as u32),
            timeout: config.smtp_timeout,
            hello_name: config.smtp_hello_name.clone(),
        })?),
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
fn lock_data_dir(config: &Config) -> anyhow::Result<std::fs::File> {
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

pub struct Application {
    listener: TcpListener,
    http_limits: HttpLimits,
    state: ApiState,
    delivery: Delivery,
    store: Arc<dyn Store>,
    shutdown_grace: Duration,
    _data_dir_lock: Option<std::fs::File>,
}

impl Application {
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let lock = match config.database_url {
            None => Some(lock_data_dir(&config)?),
            Some(_) => None,
        };
        if config.redis_url.is_some() {
            tracing::warn!(
                "REDIS_URL is set but this version dispatches in process; it is not used"
            );
        }
        // Every setting is checked before the store is touched.
        let transport = transport(&config)?;
        let (store, backend) = open_store(&config).await?;
        let email_store: Arc<dyn EmailStore> = store.clone();
        let holder = match backend {
            Backend::Sqlite => EMBEDDED_HOLDER.to_string(),
            Backend::Postgres => lease_holder(),
        };
        if backend == Backend::Sqlite {
            let released = store.release_leases(EMBEDDED_HOLDER, clock.now()).await?;
            if !released.is_empty() {
                tracing::warn!(
                    count = released.len(),
                    "emails interrupted by the last stop go back to the queue"
                );
            }
        }
        let queue: Arc<dyn DispatchQueue> = Arc::new(InProcessQueue::new());
        let pending = requeue_pending(email_store.as_ref(), queue.as_ref()).await?;
        tracing::info!(pending, "dispatch queue rebuilt from the store");
        tracing::info!(transport = %transport.describe(), store = ?backend, "delivery configured");
        let metrics = Arc::new(Metrics::new());
        let committers = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => 2,
        };
        let committer = GroupCommitter::spawn(email_store.clone(), committers, 256);
        let state = Arc::new(ApiContext {
            store: store.clone(),
            transport: Some(transport.clone()),
            committer,
            queue: queue.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            settings: ApiSettings {
                max_body_bytes: config.max_body_bytes,
                max_batch: config.max_batch,
                message_id_domain: config.message_id_domain.clone(),
                limits: Default::default(),
                idempotency_ttl: config.idempotency_ttl,
                auth_cache_ttl: config.auth_cache,
                body_timeout: config.http_body_timeout,
            },
            auth_cache: AuthCache::default(),
        });
        let policy = RetryPolicy {
            initial_delay: chrono::Duration::from_std(config.retry_initial)?,
            multiplier: 2.0,
            max_delay: chrono::Duration::from_std(config.retry_max_delay)?,
            max_age: chrono::Duration::from_std(config.retry_max_age)?,
            jitter: config.retry_jitter,
        };
        let delivery = Delivery {
            store: email_store,
            queue,
            transport,
            clock,
            policy,
            metrics,
            settings: DeliverySettings {
                concurrency: config.worker_concurrency,
                lease: config.lease,
                holder,
                send_timeout: config.send_timeout,
                shutdown_grace: config.shutdown_grace,
                rescue_interval: config.rescue_interval,
                reconcile_interval: config.reconcile_interval,
                idle_poll: Duration::from_secs(1),
            },
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        Ok(Self {
            listener,
            http_limits: HttpLimits {
                header_timeout: config.http_header_timeout,
                max_connections: config.http_max_connections,
            },
            state,
            delivery,
            store,
            shutdown_grace: config.shutdown_grace,
            _data_dir_lock: lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Serves until `shutdown` resolves; then stops taking requests, lets
    /// sends in flight finish (up to the grace period) and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let delivery = self.delivery.start();
        let housekeeping =
            tokio::spawn(purge_idempotency_keys(self.state.clone(), stopped.clone()));
        let service = mailqueue_api::app(self.state);
        tracing::info!(address = %self.listener.local_addr()?, "mailqueue is listening");
        http_server::serve(self.listener, service, self.http_limits, async move {
            let _ = stopped.changed().await;
            tracing::info!("shutting down: no new requests or claims");
        })
        .await;
        delivery.shutdown(self.shutdown_grace).await;
        housekeeping.abort();
        if let Err(e) = self.store.flush().await {
            tracing::warn!(error = %e, "the store could not be flushed at shutdown");
        }
        tracing::info!("mailqueue stopped");
        Ok(())
    }
}

/// Deletes idempotency keys past their time, every ten minutes.
async fn purge_idempotency_keys(state: ApiState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopped.changed() => return,
        }
        let ttl = chrono::Duration::from_std(state.settings.idempotency_ttl)
            .unwrap_or(chrono::Duration::hours(24));
        match state.store.purge_idempotency_keys(state.now() - ttl).await {
            Ok(n) if n > 0 => tracing::debug!(purged = n, "expired idempotency keys deleted"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
    }
}
