//! The validating admission webhook: HTTPS (rustls, ring) AdmissionReview v1 at `/validate`, over
//! the same reflector-fed index as the controller. Not ready, and denying, until every cache has
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
use axum_server::tls_rustls::RustlsConfig;

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

/// Serves the webhook until `stop` resolves.
pub async fn serve(
    addr: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
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
        graceful.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let served = axum_server::bind_rustls(addr, config)
        .handle(handle)
        .serve(router(shared, metrics).into_make_service())
        .await
        .map_err(|source| Error::Serve { addr, source });
    reload.abort();
    expire.abort();
    served
}
