//! The decision API: the platform's own services ask "may bob do this?" over HTTPS (its own
//! listener, `--api-addr`) and get the answer rolegate's index holds, with the resourceVersion of
//! the state it was computed on.
//!
//! - `answer.rs`: the JSON questions and answers over the shared state (no HTTP, no API server);
//!   the decision itself is the engine's (`engine::decide`, `engine::explain`).
//! - `delegate.rs`: TokenReview and SubjectAccessReview, cached (who may ask).
//! - `http.rs`: the routes, the order of refusals (401, 400, 403, 503) and the metrics.
//!
//! Freshness (`minResourceVersion`) reads `state::revision`, which the watches feed.

pub mod answer;
pub mod delegate;
pub mod http;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kube::Client;

use crate::metrics::Metrics;
use crate::state::Shared;

/// How long a request waits for its `minResourceVersion` by default: the API server's own
/// consistent reads from its watch cache wait 3 s before failing.
pub const FRESHNESS_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Https(#[from] crate::https::Error),
}

/// How the decision API serves.
#[derive(Debug, Clone)]
pub struct Options {
    pub https: crate::https::Options,
    pub freshness_timeout: Duration,
}

/// Serves the decision API on a bound (non-blocking) listener until `stop` resolves; `client`
/// asks the API server the TokenReviews and SubjectAccessReviews. `serving` is set while it
/// accepts (readiness covers it).
pub async fn serve_on(
    listener: std::net::TcpListener,
    options: Options,
    client: Client,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    serving: Option<Arc<AtomicBool>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let state = http::AppState {
        shared,
        metrics,
        delegate: Arc::new(delegate::Delegate::new(client)),
        freshness_timeout: options.freshness_timeout,
    };
    crate::https::serve_on(
        "decision API",
        listener,
        options.https,
        http::router(state),
        serving,
        stop,
    )
    .await?;
    Ok(())
}
