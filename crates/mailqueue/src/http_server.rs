//! The HTTP listener: hyper's HTTP/1 server, with the limits a reverse
//! proxy would set and `axum::serve` does not:
//! - a deadline for a request's headers (which also closes keep-alive
//!   connections left idle);
//! - a cap on open connections (further clients wait in the listen
//!   backlog), beyond which a few more are taken for the operational
//!   routes only, so `/healthz` and `/readyz` answer while every API
//!   connection is held (other routes answer 503 there);
//! - a cap on connections from one client address, so one client cannot
//!   hold them all (over it, a connection is closed at once);
//! - a graceful shutdown that lets requests in progress finish.
//!
//! Request bodies have their own timeouts where they are read
//! (`mailqueue-api`), and each API key its own cap on requests.

use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// Connections beyond `max_connections` taken for the operational routes.
const OPS_RESERVE: usize = 16;

#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// For a request's headers to arrive, and for an idle connection.
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// Most connections from one client address; `None` for no limit.
    pub max_connections_per_client: Option<usize>,
}

/// Open connections by client address.
#[derive(Default)]
struct PerClient {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a client; counted until dropped.
struct ClientSlot {
    clients: Arc<PerClient>,
    address: IpAddr,
}

impl PerClient {
    fn enter(self: &Arc<Self>, address: IpAddr, limit: Option<usize>) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(address).or_insert(0);
        if limit.is_some_and(|limit| *count >= limit) {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            clients: self.clone(),
            address,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// What a connection may use: the whole service, or the operational
/// routes only (a connection taken beyond the cap).
enum Slot {
    Full(OwnedSemaphorePermit),
    OpsOnly(OwnedSemaphorePermit),
}

/// Serves `service` until `shutdown` resolves, then waits for the requests
/// in progress (idle connections are closed at once). `ops` serves the
/// connections taken beyond the cap.
pub async fn serve<S, O>(
    listener: TcpListener,
    service: S,
    ops: O,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    O: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    O::Future: Send,
{
    let full = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let reserve = Arc::new(Semaphore::new(OPS_RESERVE));
    let clients = Arc::new(PerClient::default());
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            permit = full.clone().acquire_owned() => match permit {
                Ok(p) => Slot::Full(p),
                Err(_) => break,
            },
            permit = reserve.clone().acquire_owned() => match permit {
                Ok(p) => Slot::OpsOnly(p),
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(client) = clients.enter(peer.ip(), limits.max_connections_per_client) else {
            tracing::debug!(client = %peer.ip(), "closing a connection over the client's limit");
            continue;
        };
        let _ = stream.set_nodelay(true);
        // A whole slot may have come free while this one waited to accept.
        let slot = match slot {
            Slot::OpsOnly(p) => match full.clone().try_acquire_owned() {
                Ok(whole) => Slot::Full(whole),
                Err(_) => Slot::OpsOnly(p),
            },
            whole => whole,
        };
        match slot {
            Slot::Full(permit) => {
                spawn_connection(&http, &graceful, stream, service.clone(), (permit, client))
            }
            Slot::OpsOnly(permit) => {
                spawn_connection(&http, &graceful, stream, ops.clone(), (permit, client))
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Serves one connection; `held` is released when it ends.
fn spawn_connection<S>(
    http: &hyper::server::conn::http1::Builder,
    graceful: &GracefulShutdown,
    stream: TcpStream,
    service: S,
    held: impl Send + 'static,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let hyper_service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        service.clone().oneshot(req.map(axum::body::Body::new))
    });
    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), hyper_service));
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "an HTTP connection ended with an error");
        }
        drop(held);
    });
}
