//! The HTTP listener: hyper's HTTP/1 server, with the limits a reverse
//! proxy would set and `axum::serve` does not: a deadline for a request's
//! headers (which also closes keep-alive connections left idle), a cap on
//! open connections (further clients wait in the listen backlog), and a
//! graceful shutdown that lets requests in progress finish. Request bodies
//! have their own idle timeout where they are read (`mailqueue-api`).

use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// For a request's headers to arrive, and for an idle connection.
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `service` until `shutdown` resolves, then waits for the requests
/// in progress (idle connections are closed at once).
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let hyper_service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            service.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), hyper_service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "an HTTP connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
