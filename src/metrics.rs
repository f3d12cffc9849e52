//! Prometheus metrics, prefixed `rolegate_`, served on `/metrics`. Below the adapters: the state,
//! the controller and the webhook all record here, and `runtime` only serves the text.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::engine::AccountKey;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub kind: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    pub operation: String,
    pub kind: String,
    pub result: String,
    pub rule: String,
}

/// The decision API's requests: endpoint (`check`, `check:batch`, `lookup/subjects`,
/// `lookup/permissions`) and result (`allowed`, `denied`, `ok`, or the refusal).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub endpoint: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

/// The decision API's TokenReview and SubjectAccessReview caches: `hit` or `miss`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DelegateCacheLabels {
    pub cache: String,
    pub result: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub status_writes: Family<KindLabels, Counter>,
    pub conflicts: Family<RuleLabels, Gauge>,
    pub admissions: Family<AdmissionLabels, Counter>,
    pub admission_duration: Family<KindLabels, Histogram>,
    /// Account evaluations, by why the controller asked (one per account per change is the aim).
    pub evaluations: Counter,
    /// Evaluations a reconcile found already made for the account's current content.
    pub evaluations_reused: Counter,
    /// Reconcile requests that found their kind's channel full and waited in the overflow set.
    pub trigger_overflows: Family<KindLabels, Counter>,
    /// Watched objects that failed to decode (the rest of the list still syncs).
    pub undecodable_objects: Family<KindLabels, Counter>,
    /// Decision API requests by endpoint and result.
    pub decision_requests: Family<DecisionLabels, Counter>,
    /// Decision API latency by endpoint, from the request's arrival to its answer (the caller's
    /// authentication and authorization included).
    pub decision_duration: Family<EndpointLabels, Histogram>,
    /// Decision API authentication and authorization cache lookups.
    pub decision_cache: Family<DelegateCacheLabels, Counter>,
    /// Conflicts per account and rule, so the gauge is a sum that each account reconcile corrects.
    by_account: Mutex<HashMap<AccountKey, BTreeMap<String, i64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rolegate");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let status_writes = Family::<KindLabels, Counter>::default();
        let conflicts = Family::<RuleLabels, Gauge>::default();
        let admissions = Family::<AdmissionLabels, Counter>::default();
        let admission_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00001, 2.0, 16))
        });
        let evaluations = Counter::default();
        let evaluations_reused = Counter::default();
        let trigger_overflows = Family::<KindLabels, Counter>::default();
        let undecodable_objects = Family::<KindLabels, Counter>::default();
        registry.register(
            "account_evaluations",
            "Account evaluations the controller made",
            evaluations.clone(),
        );
        registry.register(
            "account_evaluations_reused",
            "Reconciles served by an evaluation already made for the account's content",
            evaluations_reused.clone(),
        );
        registry.register(
            "trigger_overflows",
            "Reconcile requests that found their channel full (kept, not dropped), by kind",
            trigger_overflows.clone(),
        );
        registry.register(
            "undecodable_objects",
            "Watched objects that failed to decode and were left out of the caches, by kind",
            undecodable_objects.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time to reconcile one object",
            reconcile_duration.clone(),
        );
        registry.register(
            "status_writes",
            "Status patches written, by kind",
            status_writes.clone(),
        );
        registry.register(
            "conflicts",
            "Bindings not accepted, by rule",
            conflicts.clone(),
        );
        registry.register(
            "admission_decisions",
            "Admission decisions by operation, kind, result and rule",
            admissions.clone(),
        );
        registry.register(
            "admission_duration_seconds",
            "Time to judge one admission request",
            admission_duration.clone(),
        );
        // The decision API.
        let decision_requests = Family::<DecisionLabels, Counter>::default();
        let decision_duration = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_005, 2.0, 20))
        });
        let decision_cache = Family::<DelegateCacheLabels, Counter>::default();
        registry.register(
            "decision_requests",
            "Decision API requests by endpoint and result",
            decision_requests.clone(),
        );
        registry.register(
            "decision_request_duration_seconds",
            "Decision API time from a request's arrival to its answer, by endpoint",
            decision_duration.clone(),
        );
        registry.register(
            "decision_delegate_cache",
            "Decision API TokenReview and SubjectAccessReview cache lookups, by cache and result",
            decision_cache.clone(),
        );
        Self {
            registry,
            decision_requests,
            decision_duration,
            decision_cache,
            reconciles,
            reconcile_duration,
            status_writes,
            conflicts,
            admissions,
            admission_duration,
            evaluations,
            evaluations_reused,
            trigger_overflows,
            undecodable_objects,
            by_account: Mutex::default(),
        }
    }
}

impl Metrics {
    /// Records an account's current conflicts by rule, replacing what it had before.
    pub fn set_conflicts(&self, key: &AccountKey, by_rule: BTreeMap<String, i64>) {
        let Ok(mut all) = self.by_account.lock() else {
            return;
        };
        let old = all.remove(key).unwrap_or_default();
        for (rule, n) in &old {
            self.conflicts
                .get_or_create(&RuleLabels { rule: rule.clone() })
                .dec_by(*n);
        }
        for (rule, n) in &by_rule {
            self.conflicts
                .get_or_create(&RuleLabels { rule: rule.clone() })
                .inc_by(*n);
        }
        if !by_rule.is_empty() {
            all.insert(key.clone(), by_rule);
        }
    }

    /// Drops a deleted account's conflicts from the gauge: no reconcile of it will come again.
    pub fn forget_account(&self, key: &AccountKey) {
        self.set_conflicts(key, BTreeMap::new());
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn a_deleted_account_leaves_the_conflicts_gauge() {
        let metrics = Metrics::default();
        let (a, b) = (AccountKey::new("team", "a"), AccountKey::new("team", "b"));
        metrics.set_conflicts(&a, BTreeMap::from([("R4".to_owned(), 2)]));
        metrics.set_conflicts(&b, BTreeMap::from([("R4".to_owned(), 1)]));
        assert_eq!(
            line(&metrics.encode(), "rolegate_conflicts{"),
            Some(r#"rolegate_conflicts{rule="R4"} 3"#)
        );
        metrics.forget_account(&a);
        assert_eq!(
            line(&metrics.encode(), "rolegate_conflicts{"),
            Some(r#"rolegate_conflicts{rule="R4"} 1"#)
        );
        // Forgetting twice changes nothing.
        metrics.forget_account(&a);
        metrics.forget_account(&b);
        assert_eq!(
            line(&metrics.encode(), "rolegate_conflicts{"),
            Some(r#"rolegate_conflicts{rule="R4"} 0"#)
        );
    }
}
