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
    /// Listeners that must be serving for readiness (the decision API's, when enabled).
    gates: Vec<(&'static str, Arc<AtomicBool>)>,
}

/// `draining` set (on SIGTERM) fails readiness first, so the Service stops routing reviews here.
pub fn router(shared: Arc<Shared>, metrics: Arc<Metrics>, draining: Arc<AtomicBool>) -> Router {
    gated_router(shared, metrics, draining, Vec::new())
}

/// [`router`], ready only while every gate is set (a listener serving).
pub fn gated_router(
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    draining: Arc<AtomicBool>,
    gates: Vec<(&'static str, Arc<AtomicBool>)>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState {
            shared,
            metrics,
            draining,
            gates,
        })
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let closed = state
        .gates
        .iter()
        .find(|(_, open)| !open.load(Ordering::SeqCst));
    if state.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down".to_owned())
    } else if let Some((name, _)) = closed {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{name} not serving"),
        )
    } else if state.shared.synced() {
        (StatusCode::OK, "ok".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "caches not synced".to_owned(),
        )
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
    gates: Vec<(&'static str, Arc<AtomicBool>)>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|source| Error::Serve { addr, source })?;
    axum::serve(listener, gated_router(shared, metrics, draining, gates))
        .with_graceful_shutdown(stop)
        .await
        .map_err(|source| Error::Serve { addr, source })
}
