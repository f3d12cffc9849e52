//! AdmissionReview v1 ⇄ the engine's admission entry point. No HTTP here: bytes in, a review or a
//! rejection out, so the decoder can be fuzzed and tested without a server.

use std::time::Instant;

use kube::core::DynamicObject;
use kube::core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, Operation as AdmissionOperation,
};

use crate::api::{self, Kind, Object};
use crate::engine::{Decision, Operation, Requester, Review};
use crate::metrics::{AdmissionLabels, KindLabels, Metrics};
use crate::state::Shared;

/// Requests that get no AdmissionReview back, only a 4xx with the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejection {
    #[error("the body is not an admission.k8s.io/v1 AdmissionReview: {0}")]
    Malformed(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("rolegate does not judge {0}: only the four rolegate.dev kinds")]
    UnknownKind(String),
}

/// Judges one AdmissionReview body.
pub fn handle(
    shared: &Shared,
    metrics: &Metrics,
    body: &[u8],
) -> Result<AdmissionReview<DynamicObject>, Rejection> {
    let started = Instant::now();
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| Rejection::NoRequest)?;
    let kind = (request.kind.group == api::GROUP)
        .then(|| Kind::from_kind(&request.kind.kind))
        .flatten();
    let Some(kind) = kind else {
        return Err(Rejection::UnknownKind(format!(
            "{}/{}",
            request.kind.group, request.kind.kind
        )));
    };
    let (response, outcome) = respond(shared, kind, &request);
    let operation = format!("{:?}", request.operation).to_uppercase();
    let (result, rule) = outcome;
    metrics
        .admissions
        .get_or_create(&AdmissionLabels {
            operation,
            kind: kind.to_string(),
            result: result.into(),
            rule: rule.into(),
        })
        .inc();
    metrics
        .admission_duration
        .get_or_create(&KindLabels {
            kind: kind.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    Ok(response.into_review())
}

/// The response and, for metrics, its result and rule.
fn respond(
    shared: &Shared,
    kind: Kind,
    request: &AdmissionRequest<DynamicObject>,
) -> (AdmissionResponse, (&'static str, &'static str)) {
    let response = AdmissionResponse::from(request);
    if !shared.synced() {
        return (
            response.deny("rolegate caches not synced: refusing to judge against an incomplete index; retry shortly"),
            ("denied", "unsynced"),
        );
    }
    let operation = match request.operation {
        AdmissionOperation::Create => Operation::Create,
        AdmissionOperation::Update => Operation::Update,
        AdmissionOperation::Delete => Operation::Delete,
        AdmissionOperation::Connect => return (response, ("allowed", "")),
    };
    let parse = |o: &Option<DynamicObject>| -> Result<Option<Object>, String> {
        let Some(o) = o else { return Ok(None) };
        let mut value = serde_json::to_value(o).map_err(|e| e.to_string())?;
        if let Some(map) = value.as_object_mut() {
            map.entry("apiVersion")
                .or_insert_with(|| api::API_VERSION.into());
            map.entry("kind").or_insert_with(|| kind.as_str().into());
            if let Some(meta) = map.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.entry("namespace")
                    .or_insert_with(|| request.namespace.clone().unwrap_or_default().into());
                meta.entry("name")
                    .or_insert_with(|| request.name.clone().into());
            }
        }
        Object::from_json(value).map_err(|e| e.to_string())
    };
    let (object, old_object) = match (parse(&request.object), parse(&request.old_object)) {
        (Ok(new), Ok(old)) => (new, old),
        (Err(e), _) | (_, Err(e)) => {
            return (
                response.deny(format!("malformed {kind}: {e}")),
                ("denied", "malformed"),
            );
        }
    };
    let requester = Requester {
        username: request.user_info.username.clone().unwrap_or_default(),
        groups: request.user_info.groups.clone().unwrap_or_default(),
    };
    let review = Review {
        operation,
        object: object.as_ref(),
        old_object: old_object.as_ref(),
        requester: Some(&requester),
    };
    match shared.admit(
        &review,
        request.dry_run,
        k8s_openapi::jiff::Timestamp::now(),
    ) {
        None => (
            response.deny("rolegate index is unavailable"),
            ("denied", "unavailable"),
        ),
        Some(Decision::Allow { warnings }) if warnings.is_empty() => (response, ("allowed", "")),
        Some(Decision::Allow { warnings }) => {
            let rule = warnings.first().map_or("", |w| w.rule.id());
            let mut response = response;
            response.warnings = Some(warnings.into_iter().map(|w| w.message).collect());
            (response, ("warned", rule))
        }
        Some(Decision::Deny(violation)) => {
            let mut response = response.deny(&violation.message);
            response.result.code = 403;
            response.result.reason = violation.reason.as_str().to_owned();
            (response, ("denied", violation.rule.id()))
        }
    }
}
