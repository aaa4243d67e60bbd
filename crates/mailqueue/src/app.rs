//! Wiring: config in, running service out.
//!
//! `Application::build` opens the store (PostgreSQL when `DATABASE_URL` is
//! set, SQLite otherwise) and the dispatch queue (Redis with `REDIS_URL`,
//! in process otherwise), then composes the parts of the configured role:
//! the email API (`api`, `all`), the delivery workers with the fleet's
//! maintenance and the webhook senders (`worker`, `all`), and HTTP for whatever it serves (a worker
//! answers only `/healthz`, `/readyz` and `/metrics`).
//! `run_until_stopped` serves until the shutdown future resolves, then
//! drains.

use crate::config::{Config, Role};
use crate::http_server::{self, HttpLimits};
use crate::smtp_listeners::SmtpListeners;
use crate::wiring::{dispatch, lease_holder, lock_data_dir, transport, EMBEDDED_HOLDER};
use anyhow::Context;
use mailqueue_api::{ApiContext, ApiSettings, AuthCache, KeySlots, OpsContext, WebhookApiSettings};
use mailqueue_core::store::Store;
use mailqueue_core::webhooks::DisablePolicy;
use mailqueue_core::{Clock, RetryPolicy};
use mailqueue_delivery::{Delivery, DeliverySettings, OsJitter, SendingDomains};
use mailqueue_metrics::Metrics;
use mailqueue_service::domains::{DomainChecks, DomainSetup, Domains};
use mailqueue_service::{EmailService, ServiceSettings};
use mailqueue_store::GroupCommitter;
use mailqueue_webhooks::{WebhookSettings, Webhooks};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub use crate::wiring::{open_store, Backend};

/// Group commit: committer tasks and most requests per transaction.
const COMMITTERS_SQLITE: usize = 1;
const COMMITTERS_POSTGRES: usize = 2;
const MAX_REQUESTS_PER_COMMIT: usize = 256;

/// The longest a worker waits without looking at the queue: new work
/// wakes it at once, and it knows when the next scheduled email is due.
const IDLE_POLL: Duration = Duration::from_secs(10);

/// Connections of the health listener (`MAILQUEUE_HEALTH_LISTEN`).
const HEALTH_CONNECTIONS: usize = 64;

pub struct Application {
    role: Role,
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    smtp: SmtpListeners,
    http_limits: HttpLimits,
    api: Option<Arc<ApiContext>>,
    ops: Arc<OpsContext>,
    delivery: Option<Delivery>,
    webhooks: Option<Webhooks>,
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
        let role = config.role;
        // Every setting is checked before the store is touched.
        let dispatch = dispatch(&config)?;
        let transport = role
            .delivers()
            .then(|| transport(&config, &dispatch))
            .transpose()?;
        let queue = dispatch.queue;
        let (store, backend) = open_store(&config).await?;
        let holder = match backend {
            Backend::Sqlite => EMBEDDED_HOLDER.to_string(),
            Backend::Postgres => lease_holder(),
        };
        let metrics = Arc::new(Metrics::new());
        let (domains, keys) = sending_domains(&config, backend, &store, &clock, &metrics)?;
        if backend == Backend::Sqlite {
            // One process per data directory: what is still `sending` was
            // interrupted by the last stop.
            // A store that cannot write now (a full disk after a crash)
            // still starts, to serve reads and report itself not ready;
            // the rescuer returns those emails once their leases expire.
            match store.release_leases(EMBEDDED_HOLDER, clock.now()).await {
                Ok(released) if !released.requeued.is_empty() => {
                    metrics.count_events(&released.events);
                    tracing::warn!(
                        count = released.requeued.len(),
                        "emails interrupted by the last stop go back to the queue"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    "emails interrupted by the last stop could not be returned now; \
                     they go back to the queue when their leases expire"
                ),
            }
        }
        let api = role.serves_api().then(|| {
            let committers = match backend {
                Backend::Sqlite => COMMITTERS_SQLITE,
                Backend::Postgres => COMMITTERS_POSTGRES,
            };
            let committer =
                GroupCommitter::wrap(store.clone(), committers, MAX_REQUESTS_PER_COMMIT);
            let service = EmailService::new(
                store.clone(),
                queue.clone(),
                clock.clone(),
                metrics.clone(),
                ServiceSettings {
                    message_id_domain: config.message_id_domain.clone(),
                    idempotency_ttl: config.idempotency_ttl,
                },
            )
            .inserting_through(Arc::new(committer))
            .with_domains(domains.clone());
            Arc::new(ApiContext {
                reads: store.clone(),
                service: Arc::new(service),
                settings: ApiSettings {
                    max_body_bytes: config.max_body_bytes,
                    max_batch: config.max_batch,
                    limits: Default::default(),
                    auth_cache_ttl: config.auth_cache,
                    body_timeout: config.http_body_timeout,
                    body_deadline: config.http_body_deadline,
                    max_requests_per_key: config.http_max_requests_per_key,
                    webhooks: WebhookApiSettings {
                        allow_private: config.webhooks.allow_private,
                        secret_grace: config.webhooks.secret_grace,
                    },
                },
                auth_cache: AuthCache::default(),
                key_slots: KeySlots::new(config.http_max_requests_per_key),
            })
        });
        let webhooks = role.delivers().then(|| Webhooks {
            store: store.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
            settings: webhook_settings(&config, &holder),
        });
        let delivery = match &transport {
            Some(transport) => {
                tracing::info!(transport = %transport.describe(), store = ?backend, ?role, "delivery configured");
                Some(Delivery {
                    store: store.clone(),
                    queue: queue.clone(),
                    transport: transport.clone(),
                    limiter: dispatch.limiter,
                    clock: clock.clone(),
                    jitter: Arc::new(OsJitter),
                    policy: retry_policy(&config)?,
                    metrics: metrics.clone(),
                    settings: DeliverySettings {
                        concurrency: config.worker_concurrency,
                        lease: config.lease,
                        holder,
                        send_timeout: config.send_timeout,
                        shutdown_grace: config.shutdown_grace,
                        rescue_interval: config.rescue_interval,
                        reconcile_interval: config.reconcile_interval,
                        maintenance_lease: config.maintenance_lease,
                        idempotency_ttl: config.idempotency_ttl,
                        retention: config.retention,
                        retention_interval: config.retention_interval,
                        rate_limits: config.rate_limits.clone(),
                        idle_poll: IDLE_POLL,
                        return_paths: config.bounces.as_ref().map(|b| b.return_paths.clone()),
                    },
                    senders: Some(Arc::new(SendingDomains::new(
                        store.clone(),
                        keys.clone(),
                        metrics.clone(),
                    ))),
                    leader_tasks: vec![Arc::new(DomainChecks(domains.clone()))],
                })
            }
            None => None,
        };
        let ops = Arc::new(OpsContext {
            store: store.clone(),
            // An API process keeps accepting while the queue is down.
            queue: role.delivers().then(|| queue.clone()),
            transport,
            clock,
            metrics,
        });
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let health_listener =
            match config.health_listen {
                Some(address) => Some(TcpListener::bind(address).await.with_context(|| {
                    format!("listening on {address} (MAILQUEUE_HEALTH_LISTEN)")
                })?),
                None => None,
            };
        let smtp = match &api {
            Some(api) => crate::smtp_listeners::bind_all(&config, api, store.clone()).await?,
            None => SmtpListeners::default(),
        };
        Ok(Self {
            role,
            listener,
            health_listener,
            smtp,
            http_limits: HttpLimits {
                header_timeout: config.http_header_timeout,
                max_connections: config.http_max_connections,
                max_connections_per_client: config.http_max_connections_per_client,
            },
            api,
            ops,
            delivery,
            webhooks,
            store,
            shutdown_grace: config.shutdown_grace,
            _data_dir_lock: lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The port of the health listener, if one is configured.
    pub fn health_port(&self) -> Option<u16> {
        self.health_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    /// The SMTP submission ports: the STARTTLS one, then the implicit-TLS
    /// one, as configured.
    pub fn submission_ports(&self) -> Vec<u16> {
        self.smtp.submission_ports()
    }

    /// The bounce domain's MX port (`MAILQUEUE_INBOUND_LISTEN`), if any.
    pub fn inbound_port(&self) -> Option<u16> {
        self.smtp.inbound_port()
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
        let delivery = self.delivery.map(Delivery::start);
        let webhooks = self
            .webhooks
            .map(Webhooks::start)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        tracing::info!(address = %self.listener.local_addr()?, role = ?self.role, "mailqueue is listening");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let health = self.health_listener.map(|listener| {
            let limits = HttpLimits {
                max_connections: HEALTH_CONNECTIONS,
                ..self.http_limits
            };
            let ops = mailqueue_api::ops_app(self.ops.clone());
            tokio::spawn(serve_until(
                listener,
                ops,
                &self.ops,
                limits,
                stopped.clone(),
            ))
        });
        let smtp = self.smtp.spawn(stopped.clone());
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: no new requests or claims");
            let _ = stop.send(true);
        };
        let (listener, limits, ops) = (self.listener, self.http_limits, self.ops);
        let serving = async move {
            match self.api {
                Some(api) => {
                    let app = mailqueue_api::app(api, ops.clone());
                    serve_until(listener, app, &ops, limits, stopped).await
                }
                None => {
                    let app = mailqueue_api::ops_app(ops.clone());
                    serve_until(listener, app, &ops, limits, stopped).await
                }
            }
        };
        tokio::join!(signal, serving);
        if let Some(health) = health {
            let _ = health.await;
        }
        for listener in smtp {
            let _ = listener.await;
        }
        if let Some(delivery) = delivery {
            delivery.shutdown(self.shutdown_grace).await;
        }
        if let Some(webhooks) = webhooks {
            webhooks.shutdown().await;
        }
        if let Err(e) = self.store.flush().await {
            tracing::warn!(error = %e, "the store could not be flushed at shutdown");
        }
        tracing::info!("mailqueue stopped");
        Ok(())
    }
}

/// Serves `service` until `stopped` turns true; the connections taken
/// beyond the cap serve `ops` routes only.
fn serve_until(
    listener: TcpListener,
    service: impl mailqueue_api::HttpService,
    ops: &Arc<OpsContext>,
    limits: HttpLimits,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let only = mailqueue_api::ops_only_app(ops.clone());
    http_server::serve(listener, service, only, limits, async move {
        let _ = stopped.wait_for(|s| *s).await;
    })
}

fn webhook_settings(config: &Config, holder: &str) -> WebhookSettings {
    let w = &config.webhooks;
    WebhookSettings {
        holder: holder.to_string(),
        concurrency: w.concurrency,
        per_webhook: w.endpoint_concurrency as u32,
        timeout: w.timeout,
        schedule: w.retry_schedule.clone(),
        disable: DisablePolicy {
            after: chrono::Duration::from_std(w.disable_after).unwrap_or(chrono::Duration::days(5)),
        },
        allow_private: w.allow_private,
        poll: w.poll,
    }
}

fn retry_policy(config: &Config) -> anyhow::Result<RetryPolicy> {
    Ok(RetryPolicy {
        initial_delay: chrono::Duration::from_std(config.retry_initial)?,
        multiplier: 2.0,
        max_delay: chrono::Duration::from_std(config.retry_max_delay)?,
        max_age: chrono::Duration::from_std(config.retry_max_age)?,
        jitter: config.retry_jitter,
    })
}

/// The sending domains' use cases and the keys they sign with. Keys are
/// sealed with `MAILQUEUE_SECRET_KEY`; without it, domains can be created
/// only on the embedded store, whose keys then sit unsealed in its file.
fn sending_domains(
    config: &Config,
    backend: Backend,
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Arc<Domains>, Arc<dyn mailqueue_core::domains::DkimKeys>)> {
    let secret = config.domains.secret_key.as_ref();
    let creation_refused = match (secret, backend) {
        (Some(_), _) => None,
        (None, Backend::Postgres) => Some(
            "Sending domains need MAILQUEUE_SECRET_KEY on PostgreSQL: their DKIM private keys are sealed with it."
                .to_string(),
        ),
        (None, Backend::Sqlite) => {
            tracing::warn!(
                "MAILQUEUE_SECRET_KEY is not set: DKIM keys of new sending domains are kept unsealed in the embedded store"
            );
            None
        }
    };
    let keys: Arc<dyn mailqueue_core::domains::DkimKeys> = Arc::new(
        mailqueue_dkim::MailAuthKeys::new(mailqueue_dkim::KeySealer::new(secret)),
    );
    let dns = mailqueue_dkim::HickoryLookup::new(&config.domains.dns_servers)
        .map_err(|e| anyhow::anyhow!("domain checks cannot ask DNS: {e}"))?;
    let setup = DomainSetup {
        keys: keys.clone(),
        dns: Arc::new(dns),
        records: config.domains.records.clone(),
        require_verified: config.domains.require_verified,
        creation_refused,
    };
    let domains = Domains::new(store.clone(), setup, clock.clone(), metrics.clone());
    Ok((domains, keys))
}
