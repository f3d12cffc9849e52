//! `/healthz` (the process is up), `/readyz` (every cache has synced) and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::Error;
use crate::metrics::Metrics;
use crate::state::Shared;

#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    draining: Arc<AtomicBool>,
}

/// `draining` set (on SIGTERM) fails readiness first, so the Service stops routing reviews here.
pub fn router(shared: Arc<Shared>, metrics: Arc<Metrics>, draining: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState {
            shared,
            metrics,
            draining,
        })
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if state.shared.synced() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Serves on an already bound listener until `stop` resolves.
pub async fn serve_on(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    draining: Arc<AtomicBool>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|source| Error::Serve { addr, source })?;
    axum::serve(listener, router(shared, metrics, draining))
        .with_graceful_shutdown(stop)
        .await
        .map_err(|source| Error::Serve { addr, source })
}
