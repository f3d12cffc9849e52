//! The validating admission webhook: HTTPS (rustls, ring) AdmissionReview v1 at `/validate`, over
//! the same watch-fed index as the controller. Not ready, and denying, until every cache has
//! synced; the certificate is reloaded from disk when it rotates.

pub mod review;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::metrics::Metrics;
use crate::state::Shared;

/// An AdmissionReview carries the object twice; the API server caps objects at 3 MiB.
pub const MAX_BODY: usize = 7 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Https(#[from] crate::https::Error),
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

/// How the webhook serves (see [`crate::https`]).
pub type Options = crate::https::Options;

/// Binds `addr` and serves the webhook until `stop` resolves.
pub async fn serve(
    addr: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let listener = crate::https::bind("webhook", addr)?;
    let options = Options {
        cert,
        key,
        drain_timeout: Duration::from_secs(10),
    };
    serve_on(listener, options, shared, metrics, stop).await
}

/// Serves the webhook on a bound (non-blocking) listener until `stop` resolves, then stops
/// accepting and waits at most `drain_timeout` for in-flight reviews. HTTP/1.1 and HTTP/2 (ALPN
/// `h2`, which the API server may use); see [`crate::https::serve_on`].
pub async fn serve_on(
    listener: std::net::TcpListener,
    options: Options,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let expire = {
        let shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                shared.expire_overlay();
            }
        })
    };
    let served = crate::https::serve_on(
        "webhook",
        listener,
        options,
        router(shared, metrics),
        None,
        stop,
    )
    .await;
    expire.abort();
    Ok(served?)
}
