//! The validating admission webhook: HTTPS (rustls, ring) AdmissionReview v1 at `/validate`, over
//! the same watch-fed index as the controller. Not ready, and denying, until every cache has
//! synced; the certificate is reloaded from disk when it rotates.

pub mod review;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

use crate::metrics::Metrics;
use crate::state::Shared;

/// An AdmissionReview carries the object twice; the API server caps objects at 3 MiB.
pub const MAX_BODY: usize = 7 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("loading the TLS certificate {cert} and key {key}: {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        source: std::io::Error,
    },
    #[error("serving the webhook on {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
}

pub fn router(shared: Arc<Shared>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/validate", post(validate))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(AppState { shared, metrics })
}

async fn validate(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim() == "application/json")
        });
    if !json {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/json",
        )
            .into_response();
    }
    match review::handle(&state.shared, &state.metrics, &body) {
        Ok(review) => axum::Json(review).into_response(),
        Err(rejection) => (StatusCode::BAD_REQUEST, rejection.to_string()).into_response(),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads the certificate when either file changes (a cert-manager or kubelet rotation).
async fn reload_on_rotation(config: RustlsConfig, cert: PathBuf, key: PathBuf) {
    let mut seen = (modified(&cert), modified(&key));
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = (modified(&cert), modified(&key));
        if now == seen {
            continue;
        }
        match config.reload_from_pem_file(&cert, &key).await {
            Ok(()) => {
                tracing::info!(cert = %cert.display(), "reloaded the webhook certificate");
                seen = now;
            }
            // A half-written pair: keep serving the old certificate and try again.
            Err(error) => tracing::warn!(%error, "reloading the webhook certificate failed"),
        }
    }
}

/// How the webhook serves: its certificate pair and how long in-flight reviews may take to
/// finish once shutdown begins.
#[derive(Debug, Clone)]
pub struct Options {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub drain_timeout: Duration,
}

/// Binds `addr` and serves the webhook until `stop` resolves.
pub async fn serve(
    addr: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| Error::Serve { addr, source })?;
    let options = Options {
        cert,
        key,
        drain_timeout: Duration::from_secs(10),
    };
    serve_on(listener, options, shared, metrics, stop).await
}

/// Serves the webhook on a bound (non-blocking) listener until `stop` resolves, then stops
/// accepting and waits at most `drain_timeout` for in-flight reviews. HTTP/1.1 and HTTP/2 (ALPN
/// `h2`, which the API server may use); `TCP_NODELAY` on every connection, or a small response
/// can wait ~40 ms for the client's delayed ACK.
pub async fn serve_on(
    listener: std::net::TcpListener,
    options: Options,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let Options {
        cert,
        key,
        drain_timeout,
    } = options;
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let config = RustlsConfig::from_pem_file(&cert, &key)
        .await
        .map_err(|source| Error::Tls {
            cert: cert.clone(),
            key: key.clone(),
            source,
        })?;
    let reload = tokio::spawn(reload_on_rotation(config.clone(), cert, key));
    let expire = {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                shared.expire_overlay();
            }
        })
    };
    let handle = axum_server::Handle::new();
    let graceful = handle.clone();
    tokio::spawn(async move {
        stop.await;
        graceful.graceful_shutdown(Some(drain_timeout));
    });
    let acceptor = RustlsAcceptor::new(config).acceptor(NoDelayAcceptor::new());
    let served = match axum_server::from_tcp(listener) {
        Ok(server) => {
            server
                .acceptor(acceptor)
                .handle(handle)
                .serve(router(shared, metrics).into_make_service())
                .await
        }
        Err(e) => Err(e),
    }
    .map_err(|source| Error::Serve { addr, source });
    reload.abort();
    expire.abort();
    served
}
