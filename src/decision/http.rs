//! The decision API's HTTP surface: each request is authenticated (401), parsed (400),
//! authorized for every namespace it asks about (403), held until the caches are synced and as
//! fresh as it asks (503 with `Retry-After`), then answered from the shared state. Errors are
//! `metav1.Status` objects, as the API server writes them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::de::DeserializeOwned;

use super::answer::{self, BatchAnswer, BatchRequest, CheckRequest, MAX_BATCH, Refusal};
use super::delegate::{self, Caller, Delegate};
use crate::engine::Timestamp;
use crate::metrics::{DecisionLabels, EndpointLabels, Metrics};
use crate::state::Shared;
use crate::state::revision;

/// A batch of [`MAX_BATCH`] checks is about 200 KB.
pub const MAX_BODY: usize = 1024 * 1024;

/// What `Retry-After` says on a 503, in seconds.
const RETRY_AFTER: &str = "1";

#[derive(Clone)]
pub struct AppState {
    pub shared: Arc<Shared>,
    pub metrics: Arc<Metrics>,
    pub delegate: Arc<Delegate>,
    /// How long a request waits for its `minResourceVersion` before a 503.
    pub freshness_timeout: Duration,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/check", post(check))
        .route("/v1/check:batch", post(batch))
        .route("/v1/lookup/subjects", post(subjects))
        .route("/v1/lookup/permissions", post(permissions))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// A refusal with its metric label.
struct Failure {
    status: StatusCode,
    reason: &'static str,
    message: String,
    label: &'static str,
}

impl Failure {
    fn new(status: StatusCode, reason: &'static str, label: &'static str, message: String) -> Self {
        Self {
            status,
            reason,
            message,
            label,
        }
    }

    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.status.as_u16(),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"rolegate\""),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
            }
            _ => {}
        }
        response
    }
}

fn bad_request(message: String) -> Failure {
    Failure::new(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        "bad_request",
        message,
    )
}

fn unavailable(label: &'static str, message: String) -> Failure {
    Failure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        label,
        message,
    )
}

fn delegate_failed(error: &delegate::Error) -> Failure {
    tracing::warn!(%error, "decision API: delegated authentication or authorization failed");
    unavailable("error", error.to_string())
}

/// The bearer token's caller, or 401.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, Failure> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let unauthorized = || {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "unauthorized",
            "Unauthorized".to_owned(),
        )
    };
    let Some(token) = token else {
        return Err(unauthorized());
    };
    match state.delegate.authenticate(token, &state.metrics).await {
        Ok(Some(caller)) => Ok(caller),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(delegate_failed(&e)),
    }
}

/// 403 unless the caller may `create` `resource` in every namespace asked about.
async fn authorize(
    state: &AppState,
    caller: &Caller,
    namespaces: BTreeSet<&str>,
    resource: &'static str,
) -> Result<(), Failure> {
    for namespace in namespaces {
        match state
            .delegate
            .authorize(caller, namespace, resource, &state.metrics)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                return Err(Failure::new(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "forbidden",
                    format!(
                        "{} cannot create resource \"{resource}\" in API group \"{}\" in the namespace \"{namespace}\"",
                        caller.username,
                        crate::api::GROUP
                    ),
                ));
            }
            Err(e) => return Err(delegate_failed(&e)),
        }
    }
    Ok(())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("the body does not decode: {e}")))
}

fn min_version(text: Option<&str>) -> Result<Option<u64>, Failure> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            revision::parse(t).ok_or_else(|| {
                bad_request(format!(
                    "minResourceVersion {t:?} is not a resourceVersion the API server returned (a decimal number)"
                ))
            })
        })
        .transpose()
}

/// Waits for the caches: synced, and holding the write at `min` (at most the freshness timeout).
/// Returns the revision the answer is computed on.
async fn fresh(state: &AppState, min: Option<u64>) -> Result<u64, Failure> {
    if !state.shared.synced() {
        return Err(unavailable(
            "unsynced",
            "rolegate's caches have not synced yet; retry shortly".to_owned(),
        ));
    }
    if let Some(min) = min
        && !state
            .shared
            .revisions
            .until_reached(min, state.freshness_timeout)
            .await
    {
        return Err(unavailable(
            "stale",
            format!(
                "rolegate's caches have not seen resourceVersion {min} within {:?}; retry shortly",
                state.freshness_timeout
            ),
        ));
    }
    Ok(state.shared.revisions.latest())
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn record(state: &AppState, endpoint: &str, result: &str, started: Instant) {
    state
        .metrics
        .decision_requests
        .get_or_create(&DecisionLabels {
            endpoint: endpoint.to_owned(),
            result: result.to_owned(),
        })
        .inc();
    state
        .metrics
        .decision_duration
        .get_or_create(&EndpointLabels {
            endpoint: endpoint.to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
}

/// Runs one endpoint's handler and records its result and latency.
async fn serve<F>(state: &AppState, endpoint: &'static str, handler: F) -> Response
where
    F: std::future::Future<Output = Result<(Response, &'static str), Failure>>,
{
    let started = Instant::now();
    let (response, label) = match handler.await {
        Ok(answered) => answered,
        Err(failure) => {
            let label = failure.label;
            (failure.into_response(), label)
        }
    };
    record(state, endpoint, label, started);
    response
}

async fn check(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&state, "check", async {
        let caller = authenticate(&state, &headers).await?;
        let request: CheckRequest = parse(&body)?;
        request.validate().map_err(|e| bad_request(e.to_string()))?;
        let min = min_version(request.min_resource_version.as_deref())?;
        authorize(
            &state,
            &caller,
            BTreeSet::from([request.namespace.as_str()]),
            delegate::CHECKS,
        )
        .await?;
        let rv = fresh(&state, min).await?;
        let answer = answer::check(&state.shared, &request, rv, now());
        let label = if answer.allowed { "allowed" } else { "denied" };
        Ok((axum::Json(answer).into_response(), label))
    })
    .await
}

async fn batch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&state, "check:batch", async {
        let caller = authenticate(&state, &headers).await?;
        let request: BatchRequest = parse(&body)?;
        if request.checks.len() > MAX_BATCH {
            return Err(bad_request(format!(
                "a batch holds at most {MAX_BATCH} checks, not {}",
                request.checks.len()
            )));
        }
        let mut min = min_version(request.min_resource_version.as_deref())?;
        for (i, item) in request.checks.iter().enumerate() {
            item.validate()
                .map_err(|e| bad_request(format!("checks[{i}]: {e}")))?;
            min = min.max(min_version(item.min_resource_version.as_deref())?);
        }
        let namespaces = request
            .checks
            .iter()
            .map(|c| c.namespace.as_str())
            .collect();
        authorize(&state, &caller, namespaces, delegate::CHECKS).await?;
        let rv = fresh(&state, min).await?;
        let at = now();
        let results = request
            .checks
            .iter()
            .map(|c| answer::check(&state.shared, c, rv, at))
            .collect();
        let answer = BatchAnswer {
            resource_version: rv.to_string(),
            results,
        };
        Ok((axum::Json(answer).into_response(), "ok"))
    })
    .await
}

fn not_found(refusal: Refusal) -> Failure {
    match refusal {
        Refusal::Subject => bad_request(refusal.to_string()),
        Refusal::NotFound(message) => {
            Failure::new(StatusCode::NOT_FOUND, "NotFound", "not_found", message)
        }
    }
}

async fn subjects(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&state, "lookup/subjects", async {
        let caller = authenticate(&state, &headers).await?;
        let request: answer::SubjectsRequest = parse(&body)?;
        let min = min_version(request.min_resource_version.as_deref())?;
        authorize(
            &state,
            &caller,
            BTreeSet::from([request.namespace.as_str()]),
            delegate::LOOKUPS,
        )
        .await?;
        let rv = fresh(&state, min).await?;
        let value = answer::subjects(&state.shared, &request, rv, now()).map_err(not_found)?;
        Ok((axum::Json(value).into_response(), "ok"))
    })
    .await
}

async fn permissions(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    serve(&state, "lookup/permissions", async {
        let caller = authenticate(&state, &headers).await?;
        let request: answer::PermissionsRequest = parse(&body)?;
        let min = min_version(request.min_resource_version.as_deref())?;
        authorize(
            &state,
            &caller,
            BTreeSet::from([request.namespace.as_str()]),
            delegate::LOOKUPS,
        )
        .await?;
        let rv = fresh(&state, min).await?;
        let value = answer::permissions(&state.shared, &request, rv, now()).map_err(not_found)?;
        Ok((axum::Json(value).into_response(), "ok"))
    })
    .await
}
