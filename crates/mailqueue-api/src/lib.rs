//! The HTTP API of mailqueue, in the dialect of Resend's email API.
//!
//! One module per endpoint (`emails_create_v1`, ...); a handler states the
//! permission it needs by its extractor (`auth.rs`); every failure becomes
//! an [`ApiError`], which is turned into a response in one place
//! (`error.rs`). Bodies are parsed by hand rather than by axum's `Json` so
//! that every malformed or oversized request gets Resend's error shape.

mod accept;
mod auth;
mod body;
mod domain_view;
mod email_history;
mod email_view;
mod error;
mod idempotency;
mod named;
mod ops;
mod pagination;
mod suppression_view;
mod webhook_view;

mod api_keys_create_v1;
mod api_keys_delete_v1;
mod api_keys_list_v1;
mod domains_create_v1;
mod domains_dkim_rotate_v1;
mod domains_get_v1;
mod domains_list_v1;
mod domains_remove_v1;
mod domains_update_v1;
mod domains_verify_v1;
mod emails_attempts_v1;
mod emails_batch_v1;
mod emails_cancel_v1;
mod emails_create_v1;
mod emails_events_v1;
mod emails_get_v1;
mod emails_list_v1;
mod emails_retry_v1;
mod emails_update_v1;
mod scheduled_jobs_requeue_all_v1;
mod suppressions_batch_add_v1;
mod suppressions_batch_remove_v1;
mod suppressions_create_v1;
mod suppressions_get_v1;
mod suppressions_list_v1;
mod suppressions_remove_v1;
mod webhooks_create_v1;
mod webhooks_events_attempts_v1;
mod webhooks_events_get_v1;
mod webhooks_events_list_v1;
mod webhooks_events_replay_v1;
mod webhooks_get_v1;
mod webhooks_list_v1;
mod webhooks_remove_v1;
mod webhooks_rotate_secret_v1;
mod webhooks_update_v1;

pub use auth::{AuthCache, KeySlots};
pub use error::ApiError;
pub use idempotency::request_fingerprint;

use axum::extract::{DefaultBodyLimit, Request};
use axum::routing::{delete, get, post};
use axum::Router;
use mailqueue_core::queue::DispatchQueue;
use mailqueue_core::store::{ApiReads, Store};
use mailqueue_core::transport::Transport;
use mailqueue_core::{Clock, RequestLimits};
use mailqueue_metrics::Metrics;
use mailqueue_service::EmailService;
use std::sync::Arc;
use std::time::Duration;

/// Limits and choices of the API.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Larger bodies get 413 (Resend's limit is 40 MiB).
    pub max_body_bytes: usize,
    /// Most emails in one `POST /v1/emails/batch`.
    pub max_batch: usize,
    pub limits: RequestLimits,
    /// How long a verified API key is trusted before it is looked up again.
    pub auth_cache_ttl: Duration,
    /// How long a request body may go without a byte arriving (then 408).
    pub body_timeout: Duration,
    /// How long a whole request body may take to arrive (then 408).
    pub body_deadline: Duration,
    /// Most requests of one API key in progress at once (then 429).
    pub max_requests_per_key: usize,
    pub webhooks: WebhookApiSettings,
}

/// What the webhook endpoints allow.
#[derive(Clone, Debug)]
pub struct WebhookApiSettings {
    /// Whether endpoints may reach private and loopback addresses.
    pub allow_private: bool,
    /// How long a rotated-out secret keeps signing.
    pub secret_grace: Duration,
}

impl Default for WebhookApiSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            secret_grace: Duration::from_secs(24 * 3600),
        }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 40 * 1024 * 1024,
            max_batch: 100,
            limits: RequestLimits::default(),
            auth_cache_ttl: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            body_deadline: Duration::from_secs(300),
            max_requests_per_key: 256,
            webhooks: WebhookApiSettings::default(),
        }
    }
}

/// What every handler of the email API can reach.
pub struct ApiContext {
    /// What the handlers read; every change goes through `service`.
    pub reads: Arc<dyn ApiReads>,
    pub service: Arc<EmailService>,
    pub settings: ApiSettings,
    pub auth_cache: AuthCache,
    /// Each key's request slots (`settings.max_requests_per_key` each).
    pub key_slots: KeySlots,
}

pub type ApiState = Arc<ApiContext>;

impl ApiContext {
    /// The current time at the stores' precision (milliseconds), from the
    /// service's clock: the API has none of its own.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.service.now()
    }
}

/// What the operational endpoints (`/healthz`, `/readyz`, `/metrics`) look at.
pub struct OpsContext {
    pub store: Arc<dyn Store>,
    /// The dispatch queue, when this process needs it to work (workers).
    pub queue: Option<Arc<dyn DispatchQueue>>,
    /// The transport of the deliveries this process runs, if any: readiness
    /// reports it failing (a relay that refuses the credentials).
    pub transport: Option<Arc<dyn Transport>>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
}

/// A router as a service, wrapped so that `//v1/emails` and `/v1/emails/`
/// are found too (an SDK base URL with a trailing slash produces them).
pub trait HttpService:
    tower::Service<
        Request,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone
    + Send
    + 'static
{
}

impl<S> HttpService for S where
    S: tower::Service<
            Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send,
        > + Clone
        + Send
        + 'static
{
}

/// The email API and the operational endpoints (the `api` and `all` roles).
pub fn app(state: ApiState, ops: Arc<OpsContext>) -> impl HttpService {
    let body_limit = state.settings.max_body_bytes;
    let v1 = Router::new()
        .route(
            "/emails",
            post(emails_create_v1::handle).get(emails_list_v1::handle),
        )
        .route("/emails/batch", post(emails_batch_v1::handle))
        .route(
            "/emails/{id}",
            get(emails_get_v1::handle).patch(emails_update_v1::handle),
        )
        .route("/emails/{id}/cancel", post(emails_cancel_v1::handle))
        .route("/emails/{id}/retry", post(emails_retry_v1::handle))
        .route("/emails/{id}/attempts", get(emails_attempts_v1::handle))
        .route("/emails/{id}/events", get(emails_events_v1::handle))
        .route(
            "/scheduled-jobs/requeue-all",
            post(scheduled_jobs_requeue_all_v1::handle),
        )
        .route(
            "/api-keys",
            post(api_keys_create_v1::handle).get(api_keys_list_v1::handle),
        )
        .route("/api-keys/{api_key_id}", delete(api_keys_delete_v1::handle))
        .route(
            "/domains",
            post(domains_create_v1::handle).get(domains_list_v1::handle),
        )
        .route(
            "/domains/{domain_id}",
            get(domains_get_v1::handle)
                .patch(domains_update_v1::handle)
                .delete(domains_remove_v1::handle),
        )
        .route(
            "/domains/{domain_id}/verify",
            post(domains_verify_v1::handle),
        )
        .route(
            "/domains/{domain_id}/dkim/rotate",
            post(domains_dkim_rotate_v1::handle),
        )
        .route(
            "/suppressions",
            post(suppressions_create_v1::handle).get(suppressions_list_v1::handle),
        )
        .route(
            "/suppressions/batch/add",
            post(suppressions_batch_add_v1::handle),
        )
        .route(
            "/suppressions/batch/remove",
            post(suppressions_batch_remove_v1::handle),
        )
        .route(
            "/suppressions/{suppression}",
            get(suppressions_get_v1::handle).delete(suppressions_remove_v1::handle),
        )
        .route(
            "/webhooks",
            post(webhooks_create_v1::handle).get(webhooks_list_v1::handle),
        )
        .route(
            "/webhooks/{webhook_id}",
            get(webhooks_get_v1::handle)
                .patch(webhooks_update_v1::handle)
                .delete(webhooks_remove_v1::handle),
        )
        .route(
            "/webhooks/{webhook_id}/signing-secret/rotate",
            post(webhooks_rotate_secret_v1::handle),
        )
        .route(
            "/webhooks/{webhook_id}/events",
            get(webhooks_events_list_v1::handle),
        )
        .route(
            "/webhooks/{webhook_id}/events/{event_id}",
            get(webhooks_events_get_v1::handle),
        )
        .route(
            "/webhooks/{webhook_id}/events/{event_id}/attempts",
            get(webhooks_events_attempts_v1::handle),
        )
        .route(
            "/webhooks/{webhook_id}/events/{event_id}/replay",
            post(webhooks_events_replay_v1::handle),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    let router = Router::new()
        .nest("/v1", v1)
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
        .merge(ops_routes(ops));
    serve_with_fallbacks(router)
}

/// Only the operational endpoints (the `worker` role, and the health
/// listener).
pub fn ops_app(ops: Arc<OpsContext>) -> impl HttpService {
    serve_with_fallbacks(ops_routes(ops))
}

/// The operational endpoints for a connection taken beyond the cap on
/// connections: every other route answers 503 and closes the connection.
pub fn ops_only_app(ops: Arc<OpsContext>) -> impl HttpService {
    normalized(
        ops_routes(ops)
            .fallback(ops::busy)
            .method_not_allowed_fallback(ops::busy),
    )
}

fn ops_routes(ops: Arc<OpsContext>) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .with_state(ops)
}

/// JSON answers for unknown routes and methods, and path normalization.
fn serve_with_fallbacks(router: Router) -> impl HttpService {
    normalized(
        router
            .fallback(ops::not_found)
            .method_not_allowed_fallback(ops::method_not_allowed),
    )
}

/// `router`, finding `//v1/emails` and `/v1/emails/` too.
fn normalized(router: Router) -> impl HttpService {
    tower::ServiceBuilder::new()
        .map_request(normalize_path)
        .service(router)
}

fn normalize_path(mut req: Request) -> Request {
    let path = req.uri().path();
    if !path.contains("//") && (path.len() <= 1 || !path.ends_with('/')) {
        return req;
    }
    let mut clean = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        clean.push('/');
        clean.push_str(segment);
    }
    if clean.is_empty() {
        clean.push('/');
    }
    if let Some(q) = req.uri().query() {
        clean.push('?');
        clean.push_str(q);
    }
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = clean.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}
